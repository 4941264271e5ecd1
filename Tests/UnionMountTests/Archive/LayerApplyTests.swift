import CUnionMountShim
import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// Runs `/usr/bin/tar` (GNU tar: the oracle and the fixture maker of these tests, never a dependency of the
/// library) and fails the test when it fails.
func gnuTar(_ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
    process.arguments = arguments
    let errors = Pipe()
    process.standardError = errors
    try process.run()
    process.waitUntilExit()
    let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    #expect(process.terminationStatus == 0, "tar \(arguments.joined(separator: " ")): \(message)")
}

/// The SHA-256 of a file, as an ``ImageDigest``.
func fileDigest(_ path: FilePath) throws -> ImageDigest {
    SHA256.digest(of: try [UInt8](Data(contentsOf: URL(fileURLWithPath: path.string))))
}

func lstatBlocks(_ path: FilePath) -> Int {
    var info = stat()
    guard path.withPlatformString({ lstat($0, &info) }) == 0 else { return -1 }
    return Int(info.st_blocks)
}

/// Layer application from tar streams: what is written, compared with GNU tar's extraction and with the
/// store's own directory import as oracles.
@Suite(.serialized) struct LayerApplyTests {
    /// Every kind of entry a real layer has, crafted exactly.
    static func everyKind() -> [TestArchive.Entry] {
        var entries: [TestArchive.Entry] = [
            .directory("./", mode: 0o755),
            .directory("./etc", mode: 0o755),
            .file("./etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
            .directory("./bin", mode: 0o755),
            .file("./bin/su", "#!setuid\n", mode: 0o4755),
            .file("./bin/sg", "#!setgid\n", mode: 0o2711),
            .hardlink("./bin/su2", to: "./bin/su"),
            .symlink("./bin/sh", to: "/bin/busybox"),
            .symlink("./lib64", to: "lib"),
            .directory("./tmp", mode: 0o1777),
            .directory("./ro", mode: 0o555),
            .file("./ro/inside", "read-only parent"),
        ]
        var owned = TestArchive.Entry.file("./home/user/notes", "mine")
        owned.uid = 1000
        owned.gid = 1000
        owned.modification = (1_600_000_000, 987_654_321)
        owned.access = (1_500_000_000, 111_111_111)
        entries.append(.directory("./home", mode: 0o755))
        entries.append(.directory("./home/user", mode: 0o700))
        entries[entries.count - 1].uid = 1000
        entries[entries.count - 1].gid = 1000
        entries.append(owned)
        var setuidOwned = TestArchive.Entry.file("./home/user/tool", "tool", mode: 0o6755)
        setuidOwned.uid = 1000
        setuidOwned.gid = 1000
        entries.append(setuidOwned)
        var capable = TestArchive.Entry.file("./bin/ping", "ping", mode: 0o755)
        // VFS_CAP_REVISION_2, cap_net_raw (bit 13) permitted + effective.
        capable.xattrs = [
            ("security.capability", [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("user.note", Array("hello".utf8)),
        ]
        entries.append(capable)
        var trustedOverlay = TestArchive.Entry.file("./sneaky", "overlay's own name")
        trustedOverlay.xattrs = [("trusted.overlay.redirect", Array("/etc".utf8))]
        entries.append(trustedOverlay)
        entries.append(TestArchive.Entry(path: Array("./run".utf8), kind: .directory, permissions: 0o755))
        entries.append(TestArchive.Entry(path: Array("./run/fifo".utf8), kind: .fifo, permissions: 0o600))
        var device = TestArchive.Entry(path: Array("./dev-null".utf8), kind: .characterDevice, permissions: 0o666)
        device.device = (1, 3)
        entries.append(device)
        var block = TestArchive.Entry(path: Array("./dev-loop".utf8), kind: .blockDevice, permissions: 0o660)
        block.device = (7, 0)
        entries.append(block)
        entries.append(TestArchive.Entry(path: Array("./caf".utf8) + [0xE9], contents: Array("latin-1".utf8)))
        entries.append(.directory("./" + String(repeating: "n", count: 200)))
        entries.append(
            .file("./" + String(repeating: "n", count: 200) + "/" + String(repeating: "m", count: 100), "long"))
        return entries
    }

    @Test("every kind of entry is applied as GNU tar extracts it (aufs form: entries as they are)")
    func matchesGnuTar() throws {
        try #require(TestEnvironment.isRoot, "devices, owners and security.capability need root")
        let scratch = try Scratch("apply-gnu")
        let archive = scratch.path.appending("layer.tar.gz")
        try TestArchive(Self.everyKind(), compression: .gzip).write(to: archive)
        let ours = try scratch.directory("ours")
        let theirs = try scratch.directory("theirs")
        let applier = LayerApplier(whiteoutFormat: .aufs, rootless: false)
        let summary = try applier.apply(archive: archive, into: ours)
        try gnuTar([
            "--xattrs", "--xattrs-include=*", "--same-owner", "-p", "-xzf", archive.string, "-C", theirs.string,
        ])
        // GNU tar cannot restore trusted.overlay.redirect verbatim either way, so compare with overlay's names
        // left out and check the escaping apart.
        let options = TreeManifest.Options.ignoringUnionXattrs
        let expected = try TreeManifest.read(theirs, options: options)
        let applied = try TreeManifest.read(ours, options: options)
        #expect(applied.differences(from: expected) == [], "\(applied.differences(from: expected))")
        #expect(summary.entries == Self.everyKind().count)
        #expect(summary.hardLinks == 1 && summary.symbolicLinks == 2 && summary.specialFiles == 3)
        #expect(summary.compression == "gzip")
        // The diff id is the digest of the decompressed tar, the digest that of the blob.
        #expect(summary.digest == (try fileDigest(archive)))
        #expect(summary.size == Int64(try FileSystem.status(archive).size))
        let plain = SHA256.digest(of: TestArchive(Self.everyKind()).bytes())
        #expect(summary.diffID == plain)

        let su = try FileSystem.status(ours.appending("bin/su"))
        #expect(su.permissions == 0o4755)
        let tool = try FileSystem.status(ours.appending("home/user/tool"))
        #expect(tool.permissions == 0o6755 && tool.uid == 1000 && tool.gid == 1000, "setuid kept after chown")
        let notes = try FileSystem.status(ours.appending("home/user/notes"))
        #expect(notes.modificationTime == FileTime(seconds: 1_600_000_000, nanoseconds: 987_654_321))
        #expect(notes.accessTime == FileTime(seconds: 1_500_000_000, nanoseconds: 111_111_111))
        let ro = try FileSystem.status(ours.appending("ro"))
        #expect(ro.permissions == 0o555)
        #expect(ro.modificationTime == FileTime(seconds: 1_700_000_000, nanoseconds: 123_456_789))
        #expect(try FileSystem.status(ours.appending("dev-null")).specialDeviceNumbers == (1, 3))
        #expect(try FileSystem.status(ours.appending("bin/su2")).inode == su.inode)
        #expect(try FileSystem.linkTarget(ours.appending("bin/sh")) == Array("/bin/busybox".utf8))
        #expect(try FileSystem.extendedAttribute(ours.appending("bin/ping"), "security.capability")?.count == 20)
        // The aufs form has no overlay attributes of its own: the name is kept as it is.
        #expect(
            try FileSystem.extendedAttribute(ours.appending("sneaky"), "trusted.overlay.redirect") == Array("/etc".utf8)
        )
        #expect(FileSystem.exists(FilePath(bytes: ours.bytes + Array("/caf".utf8) + [0xE9])))
    }

    @Test("overlay forms: whiteouts become 0/0 devices, opaque markers xattrs, as WhiteoutConversion writes them")
    func overlayWhiteoutsMatchTheConverter() throws {
        try #require(TestEnvironment.isRoot, "trusted.overlay.* needs root")
        var marker = TestArchive.Entry.file("./opt/app/.wh..wh..opq")
        marker.access = (1_700_000_001, 5)
        var gone = TestArchive.Entry.file("./etc/.wh.hostname", mode: 0o600)
        gone.access = (1_700_000_002, 6)
        var sneaky = TestArchive.Entry.file("./sneaky", "overlay's own names")
        sneaky.xattrs = [("trusted.overlay.redirect", Array("/etc".utf8)), ("user.overlay.opaque", [0x79])]
        let entries: [TestArchive.Entry] = [
            .directory("./"), .directory("./etc"), gone, .directory("./opt"), .directory("./opt/app"), marker,
            .file("./opt/app/c", "c"), .directory("./.wh..wh.plnk"), .file("./.wh..wh.plnk/123.456"),
            .file("./.wh.var"), sneaky,
        ]
        for format in [WhiteoutFormat.overlayTrusted, .overlayUser] {
            let scratch = try Scratch("apply-wh")
            let archive = scratch.path.appending("layer.tar")
            try TestArchive(entries).write(to: archive)
            let ours = try scratch.directory("ours")
            let theirs = try scratch.directory("theirs")
            let summary = try LayerApplier(whiteoutFormat: format, rootless: false).apply(archive: archive, into: ours)
            #expect(summary.whiteouts == 2 && summary.opaqueDirectories == 1 && summary.skippedEntries == 2)
            try gnuTar(["-p", "--same-owner", "-xf", archive.string, "-C", theirs.string])
            try WhiteoutConversion.convert(theirs, from: .aufs, to: format)
            let options = TreeManifest.Options.ignoringUnionXattrs
            let applied = try TreeManifest.read(ours, options: options)
            let converted = try TreeManifest.read(theirs, options: options)
            #expect(applied.differences(from: converted) == [], "\(format): \(applied.differences(from: converted))")
            guard case .overlay(let prefix) = format else { continue }
            #expect(try FileSystem.status(ours.appending("etc/hostname")).isWhiteoutDevice)
            #expect(try FileSystem.status(ours.appending("var")).isWhiteoutDevice)
            #expect(try FileSystem.extendedAttribute(ours.appending("opt/app"), prefix + "overlay.opaque") == [0x79])
            #expect(!FileSystem.exists(ours.appending(".wh..wh.plnk")))
            // An archive cannot set overlay's own attributes: they are stored escaped, as overlay shows them.
            let escaped = prefix + "overlay.overlay." + (prefix == "trusted." ? "redirect" : "opaque")
            #expect(try FileSystem.extendedAttribute(ours.appending("sneaky"), escaped) != nil)
            #expect(try FileSystem.extendedAttribute(ours.appending("sneaky"), prefix + "overlay.redirect") == nil)
            #expect(try FileSystem.extendedAttribute(ours.appending("sneaky"), prefix + "overlay.opaque") == nil)
            // Back to the aufs form: the marker comes back from its record.
            try WhiteoutConversion.convert(ours, from: format, to: .aufs)
            #expect(FileSystem.exists(ours.appending("opt/app/.wh..wh..opq")))
            #expect(FileSystem.exists(ours.appending("etc/.wh.hostname")))
        }
    }

    @Test("the image fixture through GNU tar: applyLayer gives the layers importLayer gives")
    func storeApplyMatchesImport() throws {
        try #require(TestEnvironment.isRoot, "the overlay store's whiteouts need root")
        let scratch = try Scratch("apply-store")
        let image = try ImageFixture(in: scratch.directory("image"))
        let applied = try LayerStore.create(
            at: scratch.path.appending("applied"), features: StoreBackendTests.features())
        let imported = try LayerStore.create(
            at: scratch.path.appending("imported"), features: StoreBackendTests.features())
        var parent: String?
        for (index, layer) in image.layers.enumerated() {
            let id = "l\(index + 1)"
            let tarball = scratch.path.appending("\(id).tar.gz")
            try gnuTar(["--xattrs", "--format=pax", "-czf", tarball.string, "-C", layer.string, "."])
            let result = try applied.applyLayer(archive: tarball, id: id, parent: parent)
            try imported.importLayer(id, parent: parent, from: layer, format: .aufs)
            let options = TreeManifest.Options.ignoringUnionXattrs
            let ours = try TreeManifest.read(result.layer.directory, options: options)
            let theirs = try TreeManifest.read(try imported.layer(id).directory, options: options)
            #expect(ours.differences(from: theirs) == [], "\(id): \(ours.differences(from: theirs))")
            #expect(result.archive.digest == (try fileDigest(tarball)))
            parent = id
        }
        #expect(try applied.layers().map(\.id) == ["l1", "l2", "l3", "l4", "l5"])
        #expect(try FileSystem.names(in: applied.root.appending("staging")).isEmpty)
    }

    @Test("a sparse file keeps its holes; zstd and plain streams are read")
    func sparseAndZstd() throws {
        let scratch = try Scratch("apply-sparse")
        let tree = try scratch.directory("tree")
        let sparse = tree.appending("sparse")
        let fd = try FileDescriptor.open(sparse, .writeOnly, options: [.create], permissions: .ownerReadWrite)
        _ = try fd.writeAll(toAbsoluteOffset: 4096 * 256, Array("middle".utf8))
        _ = try fd.writeAll(toAbsoluteOffset: 64 << 20, Array("end".utf8))
        try fd.close()
        let archive = scratch.path.appending("sparse.tar")
        try gnuTar(["--sparse", "--format=pax", "-cf", archive.string, "-C", tree.string, "sparse"])
        let out = try scratch.directory("out")
        _ = try LayerApplier(whiteoutFormat: .aufs).apply(archive: archive, into: out)
        let applied = out.appending("sparse")
        #expect(try FileSystem.status(applied).size == (64 << 20) + 3)
        #expect(lstatBlocks(applied) < 64, "holes are kept: \(lstatBlocks(applied)) blocks of 512 bytes")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: applied.string)))
        #expect(Array(bytes[(4096 * 256)..<(4096 * 256 + 6)]) == Array("middle".utf8))
        #expect(Array(bytes.suffix(3)) == Array("end".utf8))

        for compression in [TestArchive.Compression.zstd, .none] {
            let layer = scratch.path.appending("small.tar")
            let test = TestArchive(
                [.file("a", "alpha"), .directory("d"), .file("d/b", "beta")], compression: compression)
            try test.write(to: layer)
            let target = try scratch.directory("small-\(compression)")
            let summary = try LayerApplier(whiteoutFormat: .aufs).apply(archive: layer, into: target)
            #expect(summary.compression == (compression == .zstd ? "zstd" : "none"))
            #expect(summary.diffID == SHA256.digest(of: TestArchive(test.entries).bytes()))
            #expect(readFile(target.appending("d/b")) == "beta")
        }
    }

    @Test("rootless: only the attributes an unprivileged user may set; caller ownership skips chown")
    func rootlessAndCallerOwnership() throws {
        let scratch = try Scratch("apply-rootless")
        var file = TestArchive.Entry.file("f", "x", mode: 0o4755)
        file.uid = 1234
        file.gid = 4321
        file.xattrs = [("trusted.secret", [1]), ("security.selinux", Array("x".utf8)), ("user.kept", [2])]
        let archive = scratch.path.appending("layer.tar")
        try TestArchive([file]).write(to: archive)
        let out = try scratch.directory("out")
        let applier = LayerApplier(whiteoutFormat: .overlayUser, ownership: .caller, rootless: true)
        let summary = try applier.apply(archive: archive, into: out)
        #expect(summary.droppedXattrs == 2)
        let info = try FileSystem.status(out.appending("f"))
        #expect(info.uid == ProcessFacts.effectiveUserID && info.permissions == 0o4755)
        #expect(try FileSystem.extendedAttribute(out.appending("f"), "user.kept") == [2])
        #expect(try FileSystem.extendedAttribute(out.appending("f"), "trusted.secret") == nil)
    }
}
