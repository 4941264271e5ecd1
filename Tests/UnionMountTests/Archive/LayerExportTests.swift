import CUnionMountShim
import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// The layer tar writer on crafted layer directories: both store forms written as the same OCI tar, read back by
/// the applier (the same tree) and by GNU tar, deterministic, clamped, refusing what a tar cannot say.
@Suite(.serialized) struct LayerExportTests {
    /// What the whiteout tests add to ``LayerApplyTests/everyKind()``: whiteouts (one a hard link of another, as
    /// aufs-era layers have them), an opaque directory with a marker of its own metadata, and aufs bookkeeping.
    static func withWhiteouts() -> [TestArchive.Entry] {
        var entries = LayerApplyTests.everyKind()
        entries.append(.file("./etc/.wh.hostname"))
        var marker = TestArchive.Entry.file("./etc/.wh..wh..opq", mode: 0o600)
        marker.modification = (1_650_000_000, 5)
        entries.append(marker)
        entries.append(.directory("./var", mode: 0o755))
        entries.append(.file("./var/.wh.log"))
        entries.append(.hardlink("./var/.wh.cache", to: "./var/.wh.log"))
        entries.append(.directory("./opt", mode: 0o755))
        entries.append(.directory("./opt/app", mode: 0o750))
        entries.append(.file("./opt/app/.wh..wh..opq"))
        entries.append(.file("./opt/app/c", "c"))
        entries.append(.file("./caf\u{E9}-utf8", "UTF-8"))
        return entries
    }

    /// The archive applied into a new directory `name` of `scratch` in `format`.
    func applied(_ entries: [TestArchive.Entry], _ scratch: Scratch, _ name: String, _ format: WhiteoutFormat)
        throws -> FilePath
    {
        let archive = scratch.path.appending(name + ".tar")
        try TestArchive(entries).write(to: archive)
        let directory = try scratch.directory(name)
        _ = try LayerApplier(whiteoutFormat: format, rootless: false).apply(archive: archive, into: directory)
        return directory
    }

    /// The entries of a layer tar, as the applier's reader sees them.
    func entries(of file: FilePath) throws -> [TarEntry] {
        let fd = try FileDescriptor.open(file, .readOnly)
        defer { try? fd.close() }
        let stream = try TarStream(reading: fd, maximumUncompressedBytes: 1 << 30)
        var entries: [TarEntry] = []
        while let entry = try stream.next() { entries.append(entry) }
        return entries
    }

    func bytes(_ file: FilePath) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: file.string))) }

    @Test("aufs form: written, applied back, the same tree; GNU tar extracts the same tree")
    func aufsRoundTrip() throws {
        try #require(TestEnvironment.isRoot, "devices, owners and security.capability need root")
        let scratch = try Scratch("export-aufs")
        let layer = try applied(Self.withWhiteouts(), scratch, "layer", .aufs)
        let rootTimes = try FileSystem.status(layer)
        try makeDirectories(layer.appending(".wh..wh.plnk"))  // aufs' bookkeeping: left out
        try writeFile(layer.appending(".wh..wh.plnk/1.2"), "x")
        try FileSystem.setTimes(layer, access: rootTimes.accessTime, modification: rootTimes.modificationTime)
        let file = scratch.path.appending("export.tar.gz")
        let exported = try LayerArchiveWriter(whiteoutFormat: .aufs).write(layer: layer, to: file)
        removeTree(layer.appending(".wh..wh.plnk"))
        try FileSystem.setTimes(layer, access: rootTimes.accessTime, modification: rootTimes.modificationTime)

        let back = try scratch.directory("back")
        let summary = try LayerApplier(whiteoutFormat: .aufs, rootless: false).apply(archive: file, into: back)
        #expect(summary.diffID == exported.diffID && summary.digest == exported.digest)
        #expect(summary.size == exported.size && summary.compression == "gzip")
        #expect(exported.digest == (try fileDigest(file)))
        #expect(exported.size == Int64(try FileSystem.status(file).size))
        let original = try TreeManifest.read(layer)
        let reapplied = try TreeManifest.read(back)
        #expect(reapplied.differences(from: original) == [], "\(reapplied.differences(from: original))")

        let gnu = try scratch.directory("gnu")
        try gnuTar([
            "--xattrs", "--xattrs-include=*", "--same-owner", "-p", "-xzf", file.string, "-C", gnu.string,
        ])
        let extracted = try TreeManifest.read(gnu)
        #expect(extracted.differences(from: original) == [], "\(extracted.differences(from: original))")
        // The diff id is the digest of what gzip -dc makes of the blob.
        let plain = scratch.path.appending("export.tar")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "gzip -dc '\(file.string)' > '\(plain.string)'"]
        try process.run()
        process.waitUntilExit()
        #expect(try fileDigest(plain) == exported.diffID)
        #expect(exported.uncompressedSize == Int64(try FileSystem.status(plain).size))
    }

    @Test("overlay form: the same tar as the aufs form of the same layer; applied back, the same tree")
    func overlayFormAgrees() throws {
        try #require(TestEnvironment.isRoot, "trusted.overlay.* and whiteout devices need root")
        let scratch = try Scratch("export-overlay")
        let aufs = try applied(Self.withWhiteouts(), scratch, "aufs", .aufs)
        let overlay = try applied(Self.withWhiteouts(), scratch, "overlay", .overlayTrusted)
        #expect(try FileSystem.status(overlay.appending("etc/hostname")).isWhiteoutDevice)
        let options = LayerExportOptions(compression: .none)
        let fromAufs = scratch.path.appending("from-aufs.tar")
        let fromOverlay = scratch.path.appending("from-overlay.tar")
        let a = try LayerArchiveWriter(whiteoutFormat: .aufs, options: options).write(layer: aufs, to: fromAufs)
        let o = try LayerArchiveWriter(whiteoutFormat: .overlayTrusted, options: options).write(
            layer: overlay, to: fromOverlay)
        #expect(a == o)
        #expect(try bytes(fromAufs) == (try bytes(fromOverlay)), "both forms give byte-identical tars")
        #expect(a.diffID == a.digest && a.size == a.uncompressedSize)

        let back = try scratch.directory("back")
        _ = try LayerApplier(whiteoutFormat: .overlayTrusted, rootless: false).apply(archive: fromOverlay, into: back)
        let original = try TreeManifest.read(overlay)
        let reapplied = try TreeManifest.read(back)
        #expect(reapplied.differences(from: original) == [], "\(reapplied.differences(from: original))")
        // The xattr form of overlay whiteouts (in a directory marked opaque=x) is written as `.wh.` too.
        let xattrForm = try scratch.directory("xattr-form")
        try writeFile(xattrForm.appending("gone"), "")
        try FileSystem.setExtendedAttribute(xattrForm.appending("gone"), "trusted.overlay.whiteout", [])
        try FileSystem.setExtendedAttribute(xattrForm, "trusted.overlay.opaque", Array("x".utf8))
        let xattrFile = scratch.path.appending("xattr.tar")
        _ = try LayerArchiveWriter(whiteoutFormat: .overlayTrusted, options: options).write(
            layer: xattrForm, to: xattrFile)
        let names = try entries(of: xattrFile).map { String(decoding: $0.path, as: UTF8.self) }
        #expect(names == ["./", ".wh.gone"])
    }

    @Test("entries: a fixed order, OCI whiteouts, hard links, SCHILY xattrs only, modes, nanosecond times")
    func entriesWritten() throws {
        try #require(TestEnvironment.isRoot, "devices, owners and trusted.overlay.* need root")
        let scratch = try Scratch("export-entries")
        let overlay = try applied(Self.withWhiteouts(), scratch, "overlay", .overlayTrusted)
        let file = scratch.path.appending("layer.tar")
        let exported = try LayerArchiveWriter(
            whiteoutFormat: .overlayTrusted, options: LayerExportOptions(compression: .none)
        ).write(layer: overlay, to: file)
        let written = try entries(of: file)
        #expect(exported.entries == written.count)
        #expect(exported.entries == Self.withWhiteouts().count)
        let names = written.map(\.path)
        #expect(names.first == Array("./".utf8))
        // Depth first, each directory's names sorted by bytes, each directory before its contents.
        func parent(_ name: [UInt8]) -> [UInt8] {
            var trimmed = name
            if trimmed.last == UInt8(ascii: "/") { trimmed.removeLast() }
            guard let slash = trimmed.lastIndex(of: UInt8(ascii: "/")) else { return [] }
            return Array(trimmed[...slash])
        }
        for (index, name) in names.enumerated().dropFirst() {
            let directory = parent(name)
            if !directory.isEmpty { #expect(names[..<index].contains(directory), "\(name.readable) after its parent") }
        }
        let etc = names.filter { $0.starts(with: Array("etc/".utf8)) }.map { String(decoding: $0, as: UTF8.self) }
        #expect(etc == ["etc/", "etc/.wh..wh..opq", "etc/.wh.hostname", "etc/passwd"])
        let byName = Dictionary(written.map { (String(decoding: $0.path, as: UTF8.self), $0) }) { a, _ in a }
        let marker = try #require(byName["etc/.wh..wh..opq"])
        #expect(marker.kind == .regular && marker.size == 0 && marker.permissions == 0o600)
        #expect(marker.modificationTime == FileTime(seconds: 1_650_000_000, nanoseconds: 5))
        #expect(byName["var/.wh.log"]?.kind == .regular || byName["var/.wh.cache"]?.kind == .regular)
        let linked = [byName["var/.wh.cache"], byName["var/.wh.log"]].compactMap { $0 }
        #expect(linked.map(\.kind).sorted { "\($0)" < "\($1)" } == [.hardLink, .regular])
        #expect(byName["bin/su2"]?.kind == .hardLink && byName["bin/su2"]?.linkTarget == Array("bin/su".utf8))
        #expect(byName["bin/su"]?.permissions == 0o4755 && byName["home/user/tool"]?.permissions == 0o6755)
        #expect(byName["tmp/"]?.permissions == 0o1777)
        #expect(byName["home/user/notes"]?.uid == 1000)
        #expect(
            byName["home/user/notes"]?.modificationTime == FileTime(seconds: 1_600_000_000, nanoseconds: 987_654_321))
        #expect(byName["home/user/notes"]?.accessTime == nil, "access times are not written")
        #expect(byName["dev-null"]?.kind == .characterDevice && byName["dev-null"]?.deviceMinor == 3)
        #expect(byName["run/fifo"]?.kind == .fifo)
        #expect(byName["lib64"]?.linkTarget == Array("lib".utf8))
        let ping = try #require(byName["bin/ping"])
        #expect(ping.xattrs.map { String(decoding: $0.name, as: UTF8.self) } == ["security.capability", "user.note"])
        // An attribute the overlay form stores escaped is written under its own name again.
        #expect(byName["sneaky"]?.xattrs.map(\.name) == [Array("trusted.overlay.redirect".utf8)])
        #expect(byName["opt/app/"]?.xattrs.isEmpty == true, "overlay's own attributes are not written")
        let raw = try bytes(file)
        #expect(raw.firstRange(of: Array("SCHILY.xattr.user.note".utf8)) != nil)
        #expect(raw.firstRange(of: Array("LIBARCHIVE.xattr".utf8)) == nil, "one record per attribute")
        #expect(names.contains(Array("caf".utf8) + [0xE9]), "a non-UTF-8 name is written as its bytes")
        #expect(names.contains(Array("caf\u{E9}-utf8".utf8)))
        // Only the name that is not UTF-8 needs hdrcharset=BINARY; the UTF-8 one is a plain pax path record.
        var count = 0
        var rest = raw[...]
        while let range = rest.firstRange(of: Array("hdrcharset=BINARY".utf8)) {
            count += 1
            rest = rest[range.upperBound...]
        }
        #expect(count == 1)
        #expect(raw.firstRange(of: Array("path=caf\u{E9}-utf8".utf8)) != nil)
        #expect(names.contains { $0.count > 300 }, "a long name is written whole")
    }

    @Test("the same layer gives the same bytes, gzip and zstd; the zstd blob applies")
    func deterministic() throws {
        let scratch = try Scratch("export-same")
        let layer = try scratch.directory("layer")
        try makeDirectories(layer.appending("a/b"))
        try writeFile(layer.appending("a/b/file"), String(repeating: "contents ", count: 10_000))
        try writeFile(layer.appending("a/.wh.gone"), "")
        try writeFile(layer.appending(name: Array("odd\u{1}name\\".utf8) + [0xFF]), "odd")
        for compression in [LayerCompression.gzip, .zstd, .none] {
            let options = LayerExportOptions(compression: compression)
            let first = scratch.path.appending("first-\(compression.rawValue)")
            let second = scratch.path.appending("second-\(compression.rawValue)")
            let one = try LayerArchiveWriter(whiteoutFormat: .aufs, options: options).write(layer: layer, to: first)
            usleep(20_000)
            let two = try LayerArchiveWriter(whiteoutFormat: .aufs, options: options).write(layer: layer, to: second)
            #expect(one == two)
            #expect(try bytes(first) == (try bytes(second)))
            #expect(one.compression == compression)
            let back = try scratch.directory("back-\(compression.rawValue)")
            let summary = try LayerApplier(whiteoutFormat: .aufs, ownership: .caller).apply(archive: first, into: back)
            #expect(summary.compression == compression.rawValue)
            #expect(summary.diffID == one.diffID && summary.digest == one.digest)
            let reapplied = try TreeManifest.read(back)
            #expect(reapplied.differences(from: try TreeManifest.read(layer)) == [])
        }
    }

    @Test("clamped times: later ones become the clamp, earlier ones stay")
    func clamped() throws {
        let scratch = try Scratch("export-clamp")
        let layer = try scratch.directory("layer")
        try writeFile(layer.appending("new"), "new")
        try writeFile(layer.appending("old"), "old")
        try FileSystem.setTimes(
            layer.appending("old"), access: FileTime(seconds: 1, nanoseconds: 0),
            modification: FileTime(seconds: 500_000, nanoseconds: 7))
        let file = scratch.path.appending("layer.tar")
        _ = try LayerArchiveWriter(
            whiteoutFormat: .aufs, options: LayerExportOptions(compression: .none, clampTimes: 1_000_000)
        ).write(layer: layer, to: file)
        let times = Dictionary(
            try entries(of: file).map { (String(decoding: $0.path, as: UTF8.self), $0.modificationTime) }
        ) { a, _ in a }
        #expect(times["./"] == FileTime(seconds: 1_000_000, nanoseconds: 0))
        #expect(times["new"] == FileTime(seconds: 1_000_000, nanoseconds: 0))
        #expect(times["old"] == FileTime(seconds: 500_000, nanoseconds: 7))
    }

    @Test("refused: a .wh. name in the overlay form, overlay's redirect, a symbolic link as the layer; nothing left")
    func refusals() throws {
        let scratch = try Scratch("export-refused")
        let layer = try scratch.directory("layer")
        try writeFile(layer.appending(".wh.ambiguous"), "")
        let file = scratch.path.appending("layer.tar")
        let ambiguous = thrown { try LayerArchiveWriter(whiteoutFormat: .overlayTrusted).write(layer: layer, to: file) }
        #expect(ambiguous?.code == .unsupported && ambiguous?.input == ".wh.ambiguous")
        #expect(!fileExists(file), "the half-written tar is removed")

        symlink(layer.string, scratch.path.appending("link").string)
        let linked = thrown {
            try LayerArchiveWriter(whiteoutFormat: .aufs).write(layer: scratch.path.appending("link"), to: file)
        }
        // O_DIRECTORY | O_NOFOLLOW on a symbolic link: ENOTDIR (ELOOP without O_DIRECTORY).
        #expect(
            linked?.code == .systemCallFailed && [.notDirectory, .tooManySymbolicLinkLevels].contains(linked?.errno))
        #expect(!fileExists(file))

        if TestEnvironment.isRoot {
            let redirected = try scratch.directory("redirected")
            try makeDirectories(redirected.appending("moved"))
            try FileSystem.setExtendedAttribute(
                redirected.appending("moved"), "trusted.overlay.redirect", Array("/x".utf8))
            let refused = thrown {
                try LayerArchiveWriter(whiteoutFormat: .overlayTrusted).write(layer: redirected, to: file)
            }
            #expect(refused?.code == .unsupported && refused?.input == "moved")
            #expect(refused?.message.contains("redirect") == true)
        }
        // An existing output file is not overwritten.
        try writeFile(file, "mine")
        let exists = thrown {
            try LayerArchiveWriter(whiteoutFormat: .aufs).write(layer: scratch.directory("empty"), to: file)
        }
        #expect(exists?.errno == .fileExists && readFile(file) == "mine")
    }
}
