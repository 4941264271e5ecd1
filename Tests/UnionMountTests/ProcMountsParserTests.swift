import CLibMount
import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

@Suite("ProcMounts parser")
struct ProcMountsParserTests {
    typealias Support = MountTableTestSupport

    private func parse(_ text: String) throws(UnionMountError) -> [MountEntry] {
        try MountTable.parse(Support.bytes(text), format: .mounts)
    }

    @Test func procMountsFixture() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("proc-mounts.txt"), format: .mounts))
        #expect(entries.count == 6)
        for entry in entries {
            #expect(entry.origin == .mounts)
            #expect(entry.mountID == -1 && entry.parentID == -1)
            #expect(entry.major == 0 && entry.minor == 0)
            #expect(entry.root == "/")
            #expect(entry.rootBytes == Support.bytes("/"))
            #expect(entry.optionalFields.isEmpty)
            // One merged options field serves both properties.
            #expect(entry.mountOptions == entry.superOptions)
        }
        #expect(entries[0].source == "proc")
        #expect(entries[0].mountPoint == "/proc")
        #expect(entries[0].filesystemType == "proc")
        #expect(entries[0].mountOptions == ["rw", "relatime"])
        #expect(!entries[0].isReadOnly)
        #expect(entries[2].isReadOnly)
        #expect(
            entries[3].superOptions == [
                "rw", "relatime", #"lowerdir=/srv/ovl/t/sp ace:/srv/ovl/t/com\,ma"#, "upperdir=/srv/ovl/t/u",
                "workdir=/srv/ovl/t/w", "uuid=on",
            ])
        #expect(entries[4].isReadOnly)
        #expect(entries[5].source == #"my src,x\y"#)
        #expect(entries[5].mountPointBytes == Support.bytes("/srv/ovl/t/m p\tt"))
        #expect(entries[5].description.hasPrefix("-1 -1 0:0 / /srv/ovl/t/m\\040p\\011t rw,nosuid,relatime - tmpfs"))
    }

    @Test func fstabShapedFile() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("fstab.txt"), format: .mounts))
        #expect(entries.map(\.mountPoint) == ["/", "/data", "/tmp", "/proc", "/merged", "/mnt/with space", "/fuse"])
        #expect(entries[0].source == "UUID=1234-abcd")
        #expect(entries[0].mountOptions == ["errors=remount-ro"])
        // Tabs separate fields like spaces.
        #expect(entries[1].source == "/dev/sdb1")
        #expect(entries[1].filesystemType == "xfs")
        #expect(entries[1].mountOptions == ["defaults", "noatime"])
        // Missing freq and passno, missing options.
        #expect(entries[2].mountOptions == ["defaults"])
        #expect(entries[3].mountOptions.isEmpty)
        #expect(entries[3].superOptions.isEmpty)
        // CRLF line end.
        #expect(entries[5].superOptions == ["defaults"])
        #expect(entries[6].filesystemType == "fuse.fuse-overlayfs")
    }

    @Test func commentsAndBlankLinesAreNotEntries() throws {
        #expect(try parse("# only a comment\n\n   \t\n  # indented\n#\n").isEmpty)
        #expect(try parse("").isEmpty)
        // A '#' after the first field is data.
        let entry = try parse("src /m#x tmpfs rw,a#b 0 0")
        #expect(entry.count == 1)
        #expect(entry[0].mountPoint == "/m#x")
        #expect(entry[0].superOptions == ["rw", "a#b"])
    }

    @Test func escapesAreDecodedAfterSplitting() throws {
        let entry = try parse(#"my\040src /a\040b\011c\012d\134e tmpfs rw,o=x\054y\054z,p 0 0"#)
        #expect(entry[0].sourceBytes == Support.bytes("my src"))
        #expect(entry[0].mountPointBytes == Support.bytes("/a b\tc\nd\\e"))
        #expect(entry[0].superOptions == ["rw", "o=x,y,z", "p"])
    }

    @Test(arguments: [
        ("src /m", "fewer than 3 fields"),
        ("src", "fewer than 3 fields"),
        ("src /m tmpfs rw 0 0 extra", "more than 6 fields"),
        ("src /m tmpfs rw x 0", "dump frequency"),
        ("src /m tmpfs rw 0 y", "fsck pass number"),
        ("src /m tmpfs rw -1 0", "dump frequency"),
        ("src /m tmpfs rw 0 99999999999999999999999", "fsck pass number"),
    ])
    func malformedLine(line: String, reason: String) {
        do {
            _ = try MountTable.parse(Support.bytes("# header\n" + line), format: .mounts, inputName: "fstab")
            Issue.record("expected \(line) to be malformed")
        } catch {
            #expect(error.code == .malformedInput)
            #expect(error.input == "fstab")
            #expect(error.line == 2)
            #expect(error.message.contains(reason), "\(error.message)")
        }
        let result = parseSkippingMalformed(Support.bytes(line + "\nok /ok tmpfs rw 0 0\n"), format: .mounts)
        #expect(result.entries.map(\.mountPoint) == ["/ok"])
        #expect(result.skipped.map(\.line) == [1])
    }

    @Test func skipPolicyKeepsTheGoodLines() throws {
        let text = "a /a tmpfs rw 0 0\nbad\nb /b tmpfs rw 0 0 0\nc /c tmpfs rw\n"
        #expect(throws: UnionMountError.self) { try MountTable.parse(Support.bytes(text), format: .mounts) }
        let kept = try MountTable.parse(Support.bytes(text), format: .mounts, malformedLines: .skip)
        #expect(kept.map(\.mountPoint) == ["/a", "/c"])
        try Support.withTemporaryFile(named: "mounts", contents: Support.bytes(text)) { path in
            let reported = try readSkippingMalformed(path, format: .mounts)
            #expect(reported.entries == kept)
            #expect(reported.skipped.map(\.line) == [2, 3])
            #expect(reported.skipped.allSatisfy { $0.input == path.string })
        }
    }

    @Test func readsTheLiveTable() throws {
        let entries = try MountTable.entries(source: .file("/proc/self/mounts", format: .mounts))
        #expect(entries.contains { $0.mountPoint == "/" })
        // The same mounts as mountinfo, in the same order (a snapshot each; compare what both saw).
        let info = try MountTable.entries(source: .mountinfo)
        if info.count == entries.count {
            #expect(info.map(\.mountPointBytes) == entries.map(\.mountPointBytes))
            #expect(info.map(\.filesystemType) == entries.map(\.filesystemType))
        }
    }

    @Test func readErrorsNameTheFile() {
        #expect {
            _ = try MountTable.entries(source: .file("/nonexistent/mounts", format: .mounts))
        } throws: { error in
            guard let error = error as? UnionMountError else { return false }
            return error.errno == .noSuchFileOrDirectory && error.input == "/nonexistent/mounts"
                && error.systemCall == "open"
        }
    }

    // MARK: Differential against libmount

    /// Compares with libmount's fstab/mtab parser: source, target, type and the options string.
    private func expectSameAsLibMount(_ path: FilePath) throws {
        let ours = try MountTable.entries(source: .file(path, format: .mounts))
        let theirs = try LibMountOracle.parse(path)
        #expect(ours.count == theirs.count)
        for (entry, record) in zip(ours, theirs) {
            #expect(entry.sourceBytes == record.source, "\(entry)")
            #expect(entry.mountPointBytes == record.target, "\(entry)")
            #expect(Support.bytes(entry.filesystemType) == record.fstype, "\(entry)")
            // libmount decodes the whole options string before splitting; compare re-joined.
            #expect(LibMountOracle.joined(entry.superOptions.bytes) == (record.options ?? []), "\(entry)")
        }
    }

    @Test(arguments: ["proc-mounts.txt", "fstab.txt"])
    func fixtureMatchesLibMount(name: String) throws {
        try expectSameAsLibMount(Support.fixturePath(name))
    }

    @Test func liveTableMatchesLibMount() throws {
        let snapshot = try FileContents.readAll(FilePath("/proc/self/mounts"))
        try Support.withTemporaryFile(named: "mounts", contents: snapshot) { try expectSameAsLibMount($0) }
    }
}
