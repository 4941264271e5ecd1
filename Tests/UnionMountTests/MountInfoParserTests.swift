import CLibMount
import CUnionMountShim
import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// MARK: - Shared support for the mount table tests

/// Fixtures, temporary files and the libmount oracle, shared by the mount table test files.
enum MountTableTestSupport {
    /// `Tests/UnionMountTests/Fixtures/mountinfo`.
    static let fixtures: FilePath = fixturesDirectory.appending("mountinfo")

    static func fixturePath(_ name: String) -> FilePath { fixtures.appending(name) }

    static func fixtureBytes(_ name: String) throws -> [UInt8] {
        try FileContents.readAll(fixturePath(name))
    }

    /// The mountinfo fixtures every line of which is well-formed.
    static let wellFormedMountInfoFixtures = [
        "overlay-samples.mountinfo", "propagation-samples.mountinfo", "optional-fields.mountinfo",
        "escapes.mountinfo",
    ]

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Writes `contents` to a new file in a new temporary directory, calls `body` with its path, then removes both.
    static func withTemporaryFile<R>(
        named name: String, contents: [UInt8], _ body: (FilePath) throws -> R
    ) throws -> R {
        var template = Array("/tmp/unionmount-mounttable-XXXXXX".utf8CString)
        let directory = template.withUnsafeMutableBufferPointer { buffer -> FilePath? in
            guard let base = buffer.baseAddress, mkdtemp(base) != nil else { return nil }
            return FilePath(platformString: base)
        }
        guard let directory else { throw Errno(rawValue: errno) }
        let path = directory.appending(name)
        defer {
            _ = path.withPlatformString { unlink($0) }
            _ = directory.withPlatformString { rmdir($0) }
        }
        let descriptor = try FileDescriptor.open(
            path, .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: .ownerReadWrite)
        _ = try descriptor.closeAfter { try descriptor.writeAll(contents) }
        return try body(path)
    }

    /// A path's bytes as the kernel sees them.
    static func pathBytes(_ path: FilePath) -> [UInt8] { path.bytes }

    /// Bytes up to the first NUL: what a C string holds.
    static func cString(_ bytes: [UInt8]) -> [UInt8] { Array(bytes.prefix { $0 != 0 }) }

    /// A synthetic table of `lines` mountinfo lines: plain mounts, escaped mount points, propagation tags and
    /// overlay mounts with escaped commas, as a big container host would have.
    static func syntheticMountInfo(lines: Int) -> [UInt8] {
        var text = ""
        text.reserveCapacity(lines * 160)
        for index in 0..<lines {
            let id = 100 + index
            let parent = index == 0 ? 1 : 100 + index / 2
            switch index % 5 {
            case 0:
                text += "\(id) \(parent) 0:\(index % 4096) / /run/containers/\(index)/shm rw,nosuid,nodev,noexec,"
                text += "relatime shared:\(index % 97) - tmpfs shm rw,size=65536k,inode64\n"
            case 1:
                text += "\(id) \(parent) 0:\(index % 4096) / /var/lib/containers/storage/overlay/\(index)/merged "
                text += "rw,relatime - overlay overlay rw,lowerdir=/var/lib/containers/storage/overlay/l/ABCDEF"
                text += "\(index):/var/lib/containers/storage/overlay/l/GHIJKL\(index),upperdir=/var/lib/containers/"
                text += "storage/overlay/\(index)/diff,workdir=/var/lib/containers/storage/overlay/\(index)/work,"
                text += "uuid=on\n"
            case 2:
                text += "\(id) \(parent) 8:\(index % 16) /volumes/\(index) /mnt/data\\040volume\\040\(index) "
                text += "rw,relatime master:\(index % 13) - ext4 /dev/sda1 rw,errors=remount-ro\n"
            case 3:
                text += "\(id) \(parent) 0:\(index % 4096) / /srv/ovl/\(index)/m rw,relatime - overlay none rw,"
                text += "lowerdir+=/srv/ovl/\(index)/com\\054ma,lowerdir+=/srv/ovl/\(index)/l2,upperdir=/srv/ovl/"
                text += "\(index)/u,workdir=/srv/ovl/\(index)/w\n"
            default:
                text += "\(id) \(parent) 0:\(index % 4096) / /proc/\(index) rw,nosuid,nodev,noexec,relatime - proc "
                text += "proc rw\n"
            }
        }
        return bytes(text)
    }
}

/// What libmount (util-linux) reports for one entry; the reference for the differential tests.
struct LibMountRecord {
    var id: Int
    var parentID: Int
    var devno: UInt64
    var root: [UInt8]?
    var target: [UInt8]?
    var fstype: [UInt8]?
    var source: [UInt8]?
    var options: [UInt8]?
    var vfsOptions: [UInt8]?
    var fsOptions: [UInt8]?
    var optionalFields: [UInt8]?
}

/// libmount as an oracle: `mnt_table_parse_file` and the `mnt_fs_get_*` getters.
enum LibMountOracle {
    private static func bytes(_ pointer: UnsafePointer<CChar>?) -> [UInt8]? {
        guard let pointer else { return nil }
        return Array(UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)))
    }

    /// Parses a file with libmount; malformed lines are skipped as libmount does by default.
    static func parse(_ path: FilePath) throws -> [LibMountRecord] {
        guard let table = mnt_new_table() else { throw Errno.noMemory }
        defer { mnt_unref_table(table) }
        let rc = path.withPlatformString { mnt_table_parse_file(table, $0) }
        guard rc == 0 else { throw Errno(rawValue: -rc) }
        guard let iterator = mnt_new_iter(Int32(MNT_ITER_FORWARD)) else { throw Errno.noMemory }
        defer { mnt_free_iter(iterator) }
        var records: [LibMountRecord] = []
        var fs: OpaquePointer?
        while mnt_table_next_fs(table, iterator, &fs) == 0, let fs {
            records.append(
                LibMountRecord(
                    id: Int(mnt_fs_get_id(fs)), parentID: Int(mnt_fs_get_parent_id(fs)),
                    devno: UInt64(mnt_fs_get_devno(fs)), root: bytes(mnt_fs_get_root(fs)),
                    target: bytes(mnt_fs_get_target(fs)), fstype: bytes(mnt_fs_get_fstype(fs)),
                    source: bytes(mnt_fs_get_source(fs)), options: bytes(mnt_fs_get_options(fs)),
                    vfsOptions: bytes(mnt_fs_get_vfs_options(fs)), fsOptions: bytes(mnt_fs_get_fs_options(fs)),
                    optionalFields: bytes(mnt_fs_get_optional_fields(fs))))
        }
        return records
    }

    /// Joins option lists back with commas, the form libmount keeps them in.
    static func joined(_ options: [[UInt8]]) -> [UInt8] {
        Array(options.joined(separator: [UInt8(ascii: ",")]))
    }

    /// Checks a mountinfo file field by field against libmount.
    ///
    /// libmount is lossy in two ways the comparison allows for: it decodes the whole super-options string
    /// before splitting it (so `\054` inside an overlay value becomes a separator), hence the options are
    /// compared re-joined with commas; and it keeps fields as C strings, so a decoded NUL (`\000`) ends them.
    static func expectSameAsLibMount(_ path: FilePath, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let ours = try MountTable.entries(source: .file(path))
        let theirs = try parse(path)
        #expect(ours.count == theirs.count, "entry count", sourceLocation: sourceLocation)
        for (entry, record) in zip(ours, theirs) {
            let c = MountTableTestSupport.cString
            let context = Comment(rawValue: "\(path): \(entry)")
            #expect(entry.mountID == record.id, context, sourceLocation: sourceLocation)
            #expect(entry.parentID == record.parentID, context, sourceLocation: sourceLocation)
            #expect(
                CUnionMount_makedev(entry.major, entry.minor) == record.devno, context,
                sourceLocation: sourceLocation)
            #expect(c(entry.rootBytes) == record.root, context, sourceLocation: sourceLocation)
            #expect(c(entry.mountPointBytes) == record.target, context, sourceLocation: sourceLocation)
            let type = entry.storage.withBytes(.filesystemType) { Array($0) }
            #expect(c(type) == record.fstype, context, sourceLocation: sourceLocation)
            // libmount rewrites /dev/root to the real device; nothing else is rewritten.
            if entry.sourceBytes != MountTableTestSupport.bytes("/dev/root") {
                #expect(c(entry.sourceBytes) == record.source, context, sourceLocation: sourceLocation)
            }
            let vfs = entry.mountOptions.bytes
            #expect(c(joined(vfs)) == (record.vfsOptions ?? []), context, sourceLocation: sourceLocation)
            #expect(c(joined(entry.superOptions.bytes)) == (record.fsOptions ?? []), context, sourceLocation: sourceLocation)
            let tags = MountTableTestSupport.bytes(entry.optionalFields.map(\.description).joined(separator: " "))
            #expect(tags == (record.optionalFields ?? []), context, sourceLocation: sourceLocation)
        }
    }
}

// MARK: - MountInfo

@Suite("MountInfo parser")
struct MountInfoParserTests {
    typealias Support = MountTableTestSupport

    private func parse(_ text: String) throws(UnionMountError) -> [MountEntry] {
        try MountTable.parse(Support.bytes(text))
    }

    private func single(_ text: String) throws -> MountEntry {
        let entries = try parse(text)
        try #require(entries.count == 1)
        return entries[0]
    }

    // MARK: Reference samples

    @Test func overlaySamplesFromKernelInterfaces() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("overlay-samples.mountinfo")))
        #expect(entries.count == 5)
        let first = entries[0]
        #expect(first.mountID == 73)
        #expect(first.parentID == 63)
        #expect(first.major == 0 && first.minor == 40)
        #expect(first.root == "/")
        #expect(first.mountPoint == "/srv/ovl/t/m")
        #expect(first.mountOptions == ["rw", "relatime"])
        #expect(first.optionalFields.isEmpty)
        #expect(first.filesystemType == "overlay")
        #expect(first.source == "overlay")
        #expect(first.origin == .mountinfo)
        // Split on raw commas first, then decoded: the escaped commas stay inside their options.
        #expect(
            first.superOptions == [
                "rw", #"lowerdir=/srv/ovl/t/sp ace:/srv/ovl/t/com\,ma:/srv/ovl/t/co\:lon"#,
                #"upperdir=/srv/ovl/t/up per\,x\:y"#, "workdir=/srv/ovl/t/w", "uuid=on",
            ])
        #expect(!first.isReadOnly)

        let second = entries[1]
        #expect(second.source == "none")
        #expect(
            second.superOptions == [
                "rw", "lowerdir+=/srv/ovl/t/sp ace", "lowerdir+=/srv/ovl/t/com,ma", "lowerdir+=/srv/ovl/t/co:lon",
                "...", "upperdir=/srv/ovl/t/up per,x:y", "workdir=/srv/ovl/t/w2",
            ])

        // Upper-less: per-mount rw, superblock ro.
        let third = entries[2]
        #expect(third.mountOptions.first == "rw")
        #expect(third.superOptions.first == "ro")
        #expect(third.isReadOnly)
        #expect(third.source == "demo")

        let rootless = entries[4]
        #expect(rootless.mountID == 41432 && rootless.parentID == 41365)
        #expect(rootless.major == 0 && rootless.minor == 13139)
        #expect(rootless.superOptions.last == "userxattr")
    }

    @Test func propagationSamplesFromKernelInterfaces() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("propagation-samples.mountinfo")))
        #expect(
            entries.map(\.optionalFields) == [
                [.shared(1)], [.master(1)], [.shared(2), .master(1)], [.unbindable], [], [],
            ])
        #expect(entries[3].root == "/e")
        #expect(entries[3].mountPoint == "/srv/ovl/t/e")
        let host = entries[4]
        #expect(host.mountID == 27 && host.parentID == 1)
        #expect(host.major == 254 && host.minor == 0)
        #expect(host.mountPoint == "/")
        #expect(host.source == "/dev/vda")
        #expect(host.superOptions == ["rw", "discard", "resv_strict", "resuid=65534", "resgid=65534"])
        let python = entries[5]
        #expect(python.mountOptions == ["ro", "nosuid", "nodev", "relatime"])
        #expect(python.isReadOnly)
        #expect(python.source == "model_tools_unavailable")
    }

    // MARK: Optional fields

    @Test func optionalFieldsOfEveryKind() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("optional-fields.mountinfo")))
        #expect(entries.count == 9)
        #expect(entries[0].optionalFields == [])
        #expect(entries[1].optionalFields == [.shared(1)])
        #expect(entries[2].optionalFields == [.master(1)])
        #expect(entries[3].optionalFields == [.shared(3), .master(1), .propagateFrom(2)])
        #expect(entries[4].optionalFields == [.unbindable])
        #expect(entries[5].optionalFields == [.unknown("future:7"), .shared(4), .unknown("x-new")])
        #expect(
            entries[6].optionalFields == [
                .unknown("shared:abc"), .unknown("master:"), .unknown("propagate_from:99999999999999999999999"),
            ])
        // A mount point or source named "-" is not the separator.
        #expect(entries[7].mountPoint == "/-")
        #expect(entries[7].source == "-")
        #expect(entries[8].optionalFields == [.shared(2_147_483_647)])
        #expect(entries[8].root == "/sub")
    }

    @Test(arguments: [
        ("1 0 8:1 / / rw - ext4 /dev/sda1 rw", [MountEntry.OptionalField]()),
        ("1 0 8:1 / / rw shared:5 - ext4 /dev/sda1 rw", [.shared(5)]),
        ("1 0 8:1 / / rw master:0 - ext4 /dev/sda1 rw", [.master(0)]),
        ("1 0 8:1 / / rw propagate_from:12 - ext4 /dev/sda1 rw", [.propagateFrom(12)]),
        ("1 0 8:1 / / rw unbindable - ext4 /dev/sda1 rw", [.unbindable]),
        ("1 0 8:1 / / rw unbindable:3 shared - ext4 /dev/sda1 rw", [.unknown("unbindable:3"), .unknown("shared")]),
        ("1 0 8:1 / / rw shared:-1 master:+2 - ext4 /dev/sda1 rw", [.unknown("shared:-1"), .unknown("master:+2")]),
    ])
    func optionalFieldTags(line: String, expected: [MountEntry.OptionalField]) throws {
        #expect(try single(line).optionalFields == expected)
    }

    @Test func optionalFieldDescriptionsRoundTrip() {
        let tags: [MountEntry.OptionalField] = [
            .shared(1), .master(22), .propagateFrom(3), .unbindable, .unknown("x:y"),
        ]
        #expect(tags.map(\.description) == ["shared:1", "master:22", "propagate_from:3", "unbindable", "x:y"])
    }

    // MARK: Escapes

    @Test func escapesOfEveryKind() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("escapes.mountinfo")))
        #expect(entries.count == 10)
        // space, comma (unescaped in paths), colon, backslash, newline, tab, '#'
        #expect(entries[0].mountPointBytes == Support.bytes("/srv/ovl/t/m p,c:o\\l\nn\tt#h"))
        #expect(entries[0].mountPoint == FilePath("/srv/ovl/t/m p,c:o\\l\nn\tt#h"))
        #expect(entries[0].source == "my src,x\\y z")
        // '#' is escaped in the source only.
        #expect(entries[1].mountPoint == "/srv/ha#sh")
        #expect(entries[1].source == "src ha#sh")
        // Root field escapes.
        #expect(entries[3].rootBytes == Support.bytes("/sub dir/x\\y"))
        #expect(entries[3].mountPoint == "/mnt/bind target")
        // Two spaces: an empty source field.
        #expect(entries[4].sourceBytes == [])
        #expect(entries[4].source == "")
        #expect(entries[4].superOptions == ["rw"])
        #expect(entries[5].filesystemType == "fuse.sshfs")
        #expect(entries[5].source == "user@host:/home/x")
        // Backslashes that are not followed by three octal digits stay.
        #expect(entries[6].mountPointBytes == Support.bytes(#"/mnt/not\an\12escape\8\"#))
        #expect(entries[6].source == #"t\"#)
        // An escaped comma in a path decodes; in super options it stays inside its option.
        #expect(entries[7].mountPoint == "/mnt/comma,path")
        #expect(entries[7].superOptions == ["rw", "lowerdir=/l/a,b:/l/c", "upperdir=/u", "workdir=/w"])
        #expect(entries[8].filesystemType == "my type")
        // \000 decodes to a NUL byte; a FilePath ends there.
        #expect(entries[9].mountPointBytes == Support.bytes("/mnt/nul") + [0] + Support.bytes("byte"))
        #expect(entries[9].mountPoint == "/mnt/nul")
        #expect(entries[9].superOptions.bytes == [Support.bytes("rw"), Support.bytes("opt") + [0] + Support.bytes("x")])
    }

    @Test func nonUTF8MountPointIsKeptByteForByte() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("escapes.mountinfo")))
        let raw = entries[2]
        let expected: [UInt8] =
            Support.bytes("/mnt/raw") + [0x01, 0x7F, 0xC3, 0xA9, 0xFF, 0xFE] + Support.bytes("-bytes")
        #expect(raw.mountPointBytes == expected)
        #expect(Support.pathBytes(raw.mountPoint) == expected)
        #expect(raw.sourceBytes == [UInt8(ascii: "s"), 0xFF])
        #expect(raw.source == "s\\xFF")
        #expect(raw.description.contains("\\xFF\\xFE-bytes"))
    }

    @Test(arguments: [
        (#"\040"#, [UInt8(ascii: " ")]), (#"\011"#, [UInt8(ascii: "\t")]), (#"\012"#, [UInt8(ascii: "\n")]),
        (#"\134"#, [UInt8(ascii: "\\")]), (#"\043"#, [UInt8(ascii: "#")]), (#"\054"#, [UInt8(ascii: ",")]),
        (#"\377"#, [0xFF]), (#"\000"#, [0]), (#"\101\102"#, Array("AB".utf8)),
        // Not escapes: too few digits, non-octal digits, a value above one byte, a trailing backslash.
        (#"\12"#, Array(#"\12"#.utf8)), (#"\1x2"#, Array(#"\1x2"#.utf8)), (#"\8"#, Array(#"\8"#.utf8)),
        (#"\400"#, Array(#"\400"#.utf8)), (#"\777"#, Array(#"\777"#.utf8)), (#"\"#, Array(#"\"#.utf8)),
        (#"\\040"#, Array("\\ ".utf8)), (#"\1340"#, Array("\\0".utf8)),
    ])
    func octalDecoding(escaped: String, decoded: [UInt8]) throws {
        let entry = try single("1 0 0:1 / /m\(escaped)x rw - tmpfs s\(escaped) rw,o=\(escaped)")
        #expect(entry.mountPointBytes == Support.bytes("/m") + decoded + Support.bytes("x"))
        #expect(entry.sourceBytes == Support.bytes("s") + decoded)
        #expect(entry.superOptions.bytes == [Support.bytes("rw"), Support.bytes("o=") + decoded])
    }

    @Test func superOptionsSplitOnRawCommasOnly() throws {
        let entry = try single(#"1 0 0:1 / /m rw - overlay o rw,lowerdir+=/a\054b,,upperdir=/u\054\054,x"#)
        #expect(entry.superOptions == ["rw", "lowerdir+=/a,b", "upperdir=/u,,", "x"])
    }

    // MARK: Long lines

    @Test func threeHundredLayerOverlayLine() throws {
        var options = "rw"
        for layer in 0..<300 { options += ",lowerdir+=/var/lib/containers/storage/overlay/l/layer\\040\(layer)" }
        options += ",upperdir=/u,workdir=/w,uuid=on"
        let line = "9000 63 0:400 / /srv/merged rw,relatime - overlay none \(options)"
        #expect(line.utf8.count > 17_000)
        let entry = try single(line + "\n")
        #expect(entry.superOptions.count == 304)
        #expect(entry.superOptions[300] == "lowerdir+=/var/lib/containers/storage/overlay/l/layer 299")
        // And the same line read from a file, with no final newline.
        try Support.withTemporaryFile(named: "long.mountinfo", contents: Support.bytes(line)) { path in
            let fromFile = try MountTable.entries(source: .file(path))
            #expect(fromFile == [entry])
            try LibMountOracle.expectSameAsLibMount(path)
        }
    }

    @Test func lineLongerThanTheReadBuffer() throws {
        // 200 KiB in one line: larger than the first 64 KiB read chunk.
        let options = String(repeating: "a", count: 200 * 1024)
        let text = "1 0 0:1 / /m rw - tmpfs s rw,\(options)\n2 1 0:2 / /n rw - tmpfs t rw\n"
        let entries = try Support.withTemporaryFile(named: "wide.mountinfo", contents: Support.bytes(text)) {
            try MountTable.entries(source: .file($0))
        }
        #expect(entries.count == 2)
        #expect(entries[0].superOptions[1].count == 200 * 1024)
        #expect(entries[1].mountPoint == "/n")
    }

    // MARK: Lines and files

    @Test func emptyInputsAndBlankLines() throws {
        #expect(try parse("").isEmpty)
        #expect(try parse("\n\n").isEmpty)
        let entries = try parse("\n1 0 0:1 / /a rw - tmpfs s rw\n\n2 1 0:2 / /b rw - tmpfs s rw")
        #expect(entries.map(\.mountPoint) == ["/a", "/b"])
    }

    @Test func acceptsAnyByteCollection() throws {
        let text = "1 0 0:1 / /a rw - tmpfs s rw\n"
        let array = try MountTable.parse(Support.bytes(text))
        let slice = try MountTable.parse(Support.bytes("xx" + text)[2...])
        let view = try MountTable.parse(text.utf8)
        let lazy = try MountTable.parse(Support.bytes(text).lazy.map { $0 })
        #expect(array == slice && array == view && array == lazy)
        #expect(array.count == 1)
    }

    @Test func readsTheLiveTable() throws {
        let entries = try MountTable.entries(source: .mountinfo)
        #expect(!entries.isEmpty)
        #expect(entries.contains { $0.mountPoint == "/" })
        #expect(entries.allSatisfy { $0.mountID >= 0 && $0.origin == .mountinfo })
        let threadSelf = try MountTable.entries(source: .file("/proc/thread-self/mountinfo"))
        #expect(!threadSelf.isEmpty)
    }

    @Test func readErrorsNameTheFile() {
        do {
            _ = try MountTable.entries(source: .file("/nonexistent/unionmount/mountinfo"))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .systemCallFailed)
            #expect(error.systemCall == "open")
            #expect(error.errno == .noSuchFileOrDirectory)
            #expect(error.input == "/nonexistent/unionmount/mountinfo")
        }
        do {
            _ = try MountTable.entries(source: .file("/proc"))
            Issue.record("expected an error")
        } catch {
            #expect(error.systemCall == "read")
            #expect(error.errno == .isDirectory)
            #expect(error.input == "/proc")
        }
    }

    // MARK: Malformed lines

    @Test(arguments: [
        ("2 1 8:1 / /short rw", "fewer than 10 fields"),
        ("1", "fewer than 10 fields"),
        (" ", "fewer than 10 fields"),
        ("3 1 8:1 / /nosep rw shared:1 ext4 /dev/sda1 rw", "separator"),
        ("x 1 8:1 / /badid rw - ext4 /dev/sda1 rw", "mount ID"),
        ("4 y 8:1 / /badparent rw - ext4 /dev/sda1 rw", "parent ID"),
        ("5 1 8-1 / /baddev rw - ext4 /dev/sda1 rw", "major:minor"),
        ("5 1 8: / /baddev rw - ext4 /dev/sda1 rw", "major:minor"),
        ("5 1 :8 / /baddev rw - ext4 /dev/sda1 rw", "major:minor"),
        ("99999999999999999999999 1 8:1 / /huge rw - ext4 /dev/sda1 rw", "mount ID"),
        ("9223372036854775808 1 8:1 / /huge rw - ext4 /dev/sda1 rw", "mount ID"),
        ("1 18446744073709551616 8:1 / /huge rw - ext4 /dev/sda1 rw", "parent ID"),
        ("6 1 4294967296:0 / /hugemajor rw - ext4 /dev/sda1 rw", "major:minor"),
        ("6 1 0:4294967296 / /hugeminor rw - ext4 /dev/sda1 rw", "major:minor"),
        ("-9 1 8:1 / /negative rw - ext4 /dev/sda1 rw", "mount ID"),
        ("+9 1 8:1 / /plus rw - ext4 /dev/sda1 rw", "mount ID"),
        ("7 1 8:1 / /extra rw - ext4 /dev/sda1 rw extra", "more than 3 fields"),
        ("7 1 8:1 / /trailing rw - ext4 /dev/sda1 rw ", "more than 3 fields"),
        ("8 1 8:1 / /missing rw - ext4 /dev/sda1", "fewer than 3 fields"),
        ("8 1 8:1 / /missing rw -", "fewer than 3 fields"),
        ("10 1 8:1 / /twoseps rw - - ext4 /dev/sda1 rw", "more than 3 fields"),
        ("11 1 8:1  /noroot rw - ext4 /dev/sda1 rw", "empty root"),
        ("11 1 8:1 /  rw - ext4 /dev/sda1 rw", "empty mount point"),
        ("12 1 8:1 / /m rw -  /dev/sda1 rw", "empty filesystem type"),
    ])
    func malformedLine(line: String, reason: String) {
        do {
            _ = try MountTable.parse(
                Support.bytes("1 0 0:1 / / rw - ext4 x rw\n" + line + "\n"), inputName: "test-file")
            Issue.record("expected \(line) to be malformed")
        } catch {
            #expect(error.code == .malformedInput)
            #expect(error.input == "test-file")
            #expect(error.line == 2)
            #expect(error.message.contains(reason), "\(error.message)")
        }
        let skipped = parseSkippingMalformed(Support.bytes(line))
        #expect(skipped.entries.isEmpty)
        #expect(skipped.skipped.count == 1)
        #expect(skipped.skipped.first?.line == 1)
    }

    @Test func malformedFixtureUnderBothPolicies() throws {
        let path = Support.fixturePath("malformed.mountinfo")
        do {
            _ = try MountTable.entries(source: .file(path))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .malformedInput)
            #expect(error.line == 2)
            #expect(error.input == path.string)
            #expect(error.description.contains("line 2"))
        }
        let kept = try MountTable.entries(source: .file(path), malformedLines: .skip)
        #expect(kept.map(\.mountPoint) == ["/", "/good"])

        let reported = try readSkippingMalformed(path)
        #expect(reported.entries == kept)
        #expect(reported.skipped.map(\.line) == Array(2...12))
        #expect(reported.skipped.allSatisfy { $0.code == .malformedInput && $0.input == path.string })

        let bytes = try Support.fixtureBytes("malformed.mountinfo")
        let parsed = parseSkippingMalformed(bytes, inputName: "x")
        #expect(parsed.entries == kept)
        #expect(parsed.skipped.count == 11)
        #expect(try MountTable.parse(bytes, malformedLines: .skip) == kept)
    }

    // MARK: Values

    @Test func valueInitializerMatchesParsedEntry() throws {
        let parsed = try single(
            #"5 4 0:40 /r\040t /m\040p rw,nosuid shared:2 unbindable - fuse.x my\040s rw,a=b\054c,d"#)
        let built = MountEntry(
            mountID: 5, parentID: 4, major: 0, minor: 40, root: "/r t", mountPoint: "/m p",
            mountOptions: ["rw", "nosuid"], optionalFields: [.shared(2), .unbindable], filesystemType: "fuse.x",
            source: "my s", superOptions: ["rw", "a=b,c", "d"])
        #expect(built == parsed)
        #expect(built.hashValue == parsed.hashValue)
        #expect(built.superOptions == ["rw", "a=b,c", "d"])
        #expect(built.description == parsed.description)
        let other = MountEntry(mountPoint: "/m p", filesystemType: "fuse.x", source: "my s")
        #expect(other != parsed)
    }

    @Test func equalityAndHashingCompareDecodedFields() throws {
        // \101 is "A": the same entry written two ways.
        let plain = try single("1 0 0:1 / /mA rw,ro - tmpfs sA rw,oA")
        let escaped = try single(#"1 0 0:1 / /m\101 rw,,ro - tmpfs s\101 rw,o\101,"#)
        #expect(plain == escaped)
        #expect(plain.hashValue == escaped.hashValue)
        #expect(Set([plain, escaped]).count == 1)
        // An escaped comma is not a separator: different option lists.
        let one = try single(#"1 0 0:1 / /m rw - tmpfs s a\054b"#)
        let two = try single("1 0 0:1 / /m rw - tmpfs s a,b")
        #expect(one != two)
        #expect(one.superOptions.bytes == [Support.bytes("a,b")])
        #expect(two.superOptions.bytes == [Support.bytes("a"), Support.bytes("b")])
        let fromMounts = try MountTable.parse(Support.bytes("s /m tmpfs rw 0 0"), format: .mounts)
        #expect(fromMounts[0] != two)
    }

    @Test func entriesOutliveTheirInput() throws {
        var bytes = Support.bytes("1 0 0:1 / /kept rw - tmpfs s rw\n")
        let entries = try MountTable.parse(bytes)
        bytes.replaceSubrange(0..<bytes.count, with: Array(repeating: 0x20, count: bytes.count))
        #expect(entries[0].mountPoint == "/kept")
    }

    // MARK: Robustness

    @Test(arguments: [UInt64(1), 2, 3, 4])
    func garbageNeverTraps(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let seeds = Support.wellFormedMountInfoFixtures.compactMap { try? Support.fixtureBytes($0) }
        let alphabet = Support.bytes(" -:0123456789,=/#") + [0x5C, 0x0A, 0x09, 0x00, 0xFF, 0x80]
        for _ in 0..<400 {
            var input = seeds[Int(random.next() % UInt64(seeds.count))]
            for _ in 0..<(1 + random.next() % 12) where !input.isEmpty {
                let position = Int(random.next() % UInt64(input.count))
                let byte = alphabet[Int(random.next() % UInt64(alphabet.count))]
                switch random.next() % 3 {
                case 0: input[position] = byte
                case 1: input.insert(byte, at: position)
                default: input.remove(at: position)
                }
            }
            for entries in [
                parseSkippingMalformed(input).entries, parseSkippingMalformed(input, format: .mounts).entries,
            ] {
                for entry in entries {
                    _ = (entry.root, entry.mountPoint, entry.mountOptions, entry.optionalFields)
                    _ = (entry.filesystemType, entry.source, entry.superOptions, entry.isReadOnly)
                    _ = (entry.description, entry.hashValue, entry == entry, entry.overlayLayout)
                }
            }
        }
    }

    // MARK: Differential against libmount

    @Test(arguments: MountTableTestSupport.wellFormedMountInfoFixtures)
    func fixtureMatchesLibMount(name: String) throws {
        try LibMountOracle.expectSameAsLibMount(Support.fixturePath(name))
    }

    @Test func liveTableMatchesLibMount() throws {
        // Both parsers read the same snapshot: other tests may mount and unmount while this one runs.
        let snapshot = try FileContents.readAll(MountTable.processMountinfo)
        try Support.withTemporaryFile(named: "mountinfo", contents: snapshot) {
            try LibMountOracle.expectSameAsLibMount($0)
        }
        let live = try MountTable.entries(source: .mountinfo)
        #expect(!live.isEmpty)
    }

    @Test func syntheticTenThousandLinesMatchLibMount() throws {
        let bytes = Support.syntheticMountInfo(lines: 10_000)
        let entries = try MountTable.parse(bytes)
        #expect(entries.count == 10_000)
        #expect(entries[3].superOptions[1] == "lowerdir+=/srv/ovl/3/com,ma")
        #expect(entries[2].mountPoint == "/mnt/data volume 2")
        try Support.withTemporaryFile(named: "synthetic.mountinfo", contents: bytes) {
            try LibMountOracle.expectSameAsLibMount($0)
        }
    }
}
