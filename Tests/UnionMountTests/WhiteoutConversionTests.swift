import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// Builds, in the aufs/OCI form, a layer with everything a conversion must keep: the ordinary tree of
/// ``buildOrdinaryTree(_:)``, whiteouts with odd modes, owners, times and names, hard-linked whiteouts, opaque
/// directories whose markers have their own metadata or are hard links, and ordinary attributes named like
/// overlay's own (which the overlay form must escape).
func buildAufsLayer(_ tree: TreeBuilder) throws {
    try buildOrdinaryTree(tree)
    try tree.file(".wh.deleted", mode: 0o600)
    try tree.owner(".wh.deleted", 7, 8)
    try tree.times(".wh.deleted", 1_234_567_890, 987_654_321)
    try tree.file(Array(".wh.".utf8) + oddNames[1])
    try tree.file(Array("odd/.wh.".utf8) + oddNames[0] + Array("-deleted".utf8), mode: 0o4750)
    try tree.file("sub/.wh.gone", mode: 0o640)
    try tree.hardLink(".wh.gone-too", to: "sub/.wh.gone")
    try tree.file(".wh.noted")
    try tree.xattr(".wh.noted", "trusted.note", "a whiteout with an attribute")
    try tree.directory("opaque", mode: 0o711)
    try tree.file("opaque/kept", "k")
    try tree.file("opaque/.wh..wh..opq", mode: 0o604)
    try tree.owner("opaque/.wh..wh..opq", 3, 4)
    try tree.times("opaque/.wh..wh..opq", 1_111_111_111, 111)
    try tree.directory("opaque-linked-1")
    try tree.directory("opaque-linked-2")
    try tree.file("opaque-linked-1/.wh..wh..opq")
    try tree.hardLink("opaque-linked-2/.wh..wh..opq", to: "opaque-linked-1/.wh..wh..opq")
    try tree.directory("opaque-whiteout-linked")
    try tree.file(".wh.linked-to-marker", mode: 0o400)
    try tree.hardLink("opaque-whiteout-linked/.wh..wh..opq", to: ".wh.linked-to-marker")
    try tree.xattr("file.txt", "trusted.overlay.opaque", "plain data named like overlay's")
    try tree.xattr("file.txt", "user.overlay.whiteout", "plain data named like overlay's")
    try tree.xattr("sub", "trusted.overlay.overlay.deep", "escaped twice")
    for directory in ["opaque", "opaque-linked-1", "opaque-linked-2", "opaque-whiteout-linked", "odd", "sub", ""] {
        try tree.times(directory, 1_000_000_000 + directory.utf8.count, 31)
    }
}

/// Conversions touch trusted attributes and create device nodes, so they need root (no mount needed).
@Suite("WhiteoutConversion", .enabled(if: TestEnvironment.isRoot, "mknod and trusted.* xattrs need root"))
struct WhiteoutConversionTests {
    /// The visible names of a layer over nothing, with their types, as MergedView sees them in `format`.
    func view(_ root: FilePath, _ format: WhiteoutFormat) throws -> [String] {
        try MergedView.entries(branches: [root], format: format).map { "\($0.path.readable) \($0.type)" }
    }

    @Test("aufs → overlay → aufs is byte-identical", arguments: [WhiteoutFormat.overlayTrusted, .overlayUser])
    func roundTrip(through overlay: WhiteoutFormat) throws {
        let scratch = try Scratch("convert")
        let root = try scratch.directory("layer")
        let tree = TreeBuilder(root: root)
        try buildAufsLayer(tree)
        let before = try TreeManifest.read(root)
        let aufsView = try view(root, .aufs)

        try WhiteoutConversion.convert(root, from: .aufs, to: overlay)
        guard case .overlay(let prefix) = overlay else { return }
        let deleted = try tree.status("deleted")
        #expect(deleted.st_mode == S_IFCHR | 0o600 && deleted.st_rdev == 0)
        #expect(deleted.st_uid == 7 && deleted.st_gid == 8)
        #expect(deleted.st_mtim.tv_sec == 1_234_567_890 && deleted.st_mtim.tv_nsec == 987_654_321)
        #expect(try tree.status("sub/gone").st_ino == tree.status("gone-too").st_ino)
        #expect(try tree.xattrValue("noted", "trusted.note") == "a whiteout with an attribute")
        #expect(try tree.xattrValue("opaque", prefix + "overlay.opaque") == "y")
        #expect(try tree.xattrValue("opaque", prefix + "overlay.unionmount.opaque-marker") != nil)
        #expect(!tree.exists("opaque/.wh..wh..opq") && !tree.exists(".wh.deleted"))
        #expect(try tree.xattrValue("file.txt", "trusted.overlay.opaque") == nil || prefix != "trusted.")
        #expect(
            try tree.xattrValue("file.txt", prefix + "overlay.overlay." + (prefix == "user." ? "whiteout" : "opaque"))
                != nil)
        // The merged view is the same in both forms.
        #expect(try view(root, overlay) == aufsView)
        // Directory times did not move.
        #expect(
            try TreeManifest.read(root).entries.filter { $0.type == .directory }.map(\.modificationTime)
                == before.entries.filter { $0.type == .directory }.map(\.modificationTime))

        try WhiteoutConversion.convert(root, from: overlay, to: .aufs)
        let after = try TreeManifest.read(root)
        #expect(before.differences(from: after) == [])
        #expect(before == after)
    }

    @Test("overlayTrusted ↔ overlayUser, and back to aufs, is byte-identical")
    func prefixSwitch() throws {
        let scratch = try Scratch("convert")
        let root = try scratch.directory("layer")
        let tree = TreeBuilder(root: root)
        try buildAufsLayer(tree)
        let before = try TreeManifest.read(root)
        try WhiteoutConversion.convert(root, from: .aufs, to: .overlayTrusted)
        let trusted = try TreeManifest.read(root)
        try WhiteoutConversion.convert(root, from: .overlayTrusted, to: .overlayUser)
        #expect(try tree.xattrValue("opaque", "user.overlay.opaque") == "y")
        #expect(try tree.xattrValue("opaque", "trusted.overlay.opaque") == nil)
        // The plain `trusted.overlay.opaque` of file.txt, escaped in the trusted form, is plain again.
        #expect(try tree.xattrValue("file.txt", "trusted.overlay.opaque") == "plain data named like overlay's")
        #expect(try tree.xattrValue("file.txt", "user.overlay.overlay.whiteout") == "plain data named like overlay's")
        try WhiteoutConversion.convert(root, from: .overlayUser, to: .overlayTrusted)
        #expect(try TreeManifest.read(root).differences(from: trusted) == [])
        try WhiteoutConversion.convert(root, from: .overlayTrusted, to: .overlayUser)
        try WhiteoutConversion.convert(root, from: .overlayUser, to: .aufs)
        #expect(try TreeManifest.read(root).differences(from: before) == [])
    }

    @Test("aufs bookkeeping names are removed; whiteouts linked through them stay linked")
    func bookkeeping() throws {
        let scratch = try Scratch("convert")
        let root = try scratch.directory("layer")
        let tree = TreeBuilder(root: root)
        try tree.file(".wh..wh.aufs", mode: 0o444)
        try tree.hardLink(".wh.a", to: ".wh..wh.aufs")
        try tree.hardLink(".wh.b", to: ".wh..wh.aufs")
        try tree.directory(".wh..wh.plnk", mode: 0o700)
        try tree.file(".wh..wh.plnk/123.456", "pseudo link")
        try tree.directory(".wh..wh.orph")
        try tree.directory(".wh..wh.hino")
        try WhiteoutConversion.convert(root, from: .aufs, to: .overlayTrusted)
        let names = try LayerIO.names(in: root).map(\.readable)
        #expect(names == ["a", "b"])
        #expect(try tree.status("a").st_ino == tree.status("b").st_ino)
        #expect(try tree.status("a").st_nlink == 2)
    }

    @Test("overlay → aufs: xattr whiteouts in opaque=x directories, bookkeeping dropped, default marker")
    func fromOverlay() throws {
        let scratch = try Scratch("convert")
        let root = try scratch.directory("upper")
        let tree = TreeBuilder(root: root)
        try tree.directory("x-dir")
        try tree.xattr("x-dir", "trusted.overlay.opaque", "x")
        try tree.file("x-dir/gone", mode: 0o640)
        try tree.xattr("x-dir/gone", "trusted.overlay.whiteout", "")
        try tree.file("x-dir/empty-but-real")
        try tree.directory("y-dir", mode: 0o2750)
        try tree.owner("y-dir", 5, 6)
        try tree.xattr("y-dir", "trusted.overlay.opaque", "y")
        try tree.xattr("y-dir", "trusted.overlay.origin", "handle")
        try tree.xattr("", "trusted.overlay.uuid", "0123456789abcdef")
        try tree.xattr("y-dir", "trusted.overlay.impure", "y")
        try tree.file("copied", "c")
        try tree.xattr("copied", "trusted.overlay.origin", "handle")
        try tree.xattr("copied", "trusted.overlay.nlink", "U+1")
        try tree.node("kernel-whiteout", type: S_IFCHR, mode: 0)
        try tree.times("y-dir", 1_700_000_000, 17)
        try tree.times("", 1_700_000_000, 1)
        try WhiteoutConversion.convert(root, from: .overlayTrusted, to: .aufs)
        #expect(tree.exists("x-dir/.wh.gone") && !tree.exists("x-dir/gone"))
        #expect(try tree.status("x-dir/.wh.gone").st_mode == S_IFREG | 0o640)
        #expect(try LayerIO.xattrNames(FilePath(bytes: tree.path("x-dir/.wh.gone"))) == [])
        #expect(try LayerIO.xattrNames(FilePath(bytes: tree.path("x-dir"))) == [])
        #expect(try tree.status("x-dir/empty-but-real").st_mode & S_IFMT == S_IFREG)
        let marker = try tree.status("y-dir/.wh..wh..opq")
        #expect(marker.st_mode == S_IFREG | 0o750 && marker.st_uid == 5 && marker.st_gid == 6)
        #expect(marker.st_mtim.tv_sec == 1_700_000_000 && marker.st_mtim.tv_nsec == 17)
        #expect(try tree.status("y-dir").st_mtim.tv_nsec == 17)
        #expect(try LayerIO.xattrNames(FilePath(bytes: tree.path("y-dir"))) == [])
        #expect(try LayerIO.xattrNames(FilePath(bytes: tree.path("copied"))) == [])
        #expect(try LayerIO.xattrNames(root) == [])
        let whiteout = try tree.status(".wh.kernel-whiteout")
        #expect(whiteout.st_mode == S_IFREG && whiteout.st_size == 0)
        #expect(try tree.status("").st_mtim.tv_nsec == 1)
    }

    /// Each case builds a small tree, expects the conversion to fail with `code` naming `input` (relative), and
    /// checks that nothing changed.
    func expectRefusal(
        from: WhiteoutFormat, to: WhiteoutFormat, code: UnionMountError.Code, input: String,
        sourceLocation: SourceLocation = #_sourceLocation, _ build: (TreeBuilder) throws -> Void
    ) throws {
        let scratch = try Scratch("refuse")
        let root = try scratch.directory("layer")
        let tree = TreeBuilder(root: root)
        try tree.file("bystander", "b")
        if case .aufs = from { try tree.file(".wh.fine") }
        try build(tree)
        let before = try TreeManifest.read(root)
        let error = thrown { try WhiteoutConversion.convert(root, from: from, to: to) }
        #expect(error?.code == code, "\(String(describing: error))", sourceLocation: sourceLocation)
        #expect(error?.input == FilePath(bytes: tree.path(input)).string, sourceLocation: sourceLocation)
        #expect(try TreeManifest.read(root).differences(from: before) == [], sourceLocation: sourceLocation)
    }

    @Test("aufs → overlay refusals name the entry and change nothing")
    func aufsRefusals() throws {
        try expectRefusal(from: .aufs, to: .overlayTrusted, code: .unsupported, input: "d/.wh.full") {
            try $0.directory("d")
            try $0.file("d/.wh.full", "content")
        }
        try expectRefusal(from: .aufs, to: .overlayTrusted, code: .unsupported, input: ".wh.tagged") {
            try $0.file(".wh.tagged")
            try $0.xattr(".wh.tagged", "user.tag", "a device cannot hold user.*")
        }
        try expectRefusal(from: .aufs, to: .overlayTrusted, code: .unsupported, input: ".wh.both") {
            try $0.file(".wh.both")
            try $0.file("both", "also here")
        }
        try expectRefusal(from: .aufs, to: .overlayTrusted, code: .unsupported, input: ".wh.dir") {
            try $0.directory(".wh.dir")
        }
        try expectRefusal(from: .aufs, to: .overlayTrusted, code: .unsupported, input: ".wh.linked") {
            try $0.file("plain")
            try $0.hardLink(".wh.linked", to: "plain")
        }
        try expectRefusal(from: .aufs, to: .overlayUser, code: .unsupported, input: "o/.wh..wh..opq") {
            try $0.directory("o")
            try $0.file("o/.wh..wh..opq", "not empty")
        }
        try expectRefusal(from: .aufs, to: .overlayUser, code: .unsupported, input: "o/.wh..wh..opq") {
            try $0.directory("o")
            try $0.file("o/.wh..wh..opq")
            try $0.xattr("o/.wh..wh..opq", "user.x", "y")
        }
        try expectRefusal(from: .aufs, to: .overlayTrusted, code: .malformedInput, input: "d/.wh.") {
            try $0.directory("d")
            try $0.file("d/.wh.")
        }
    }

    @Test("overlay → aufs refusals name the entry and change nothing")
    func overlayRefusals() throws {
        for key in ["redirect", "metacopy"] {
            try expectRefusal(from: .overlayTrusted, to: .aufs, code: .unsupported, input: "renamed") {
                try $0.file("renamed")
                try $0.xattr("renamed", "trusted.overlay." + key, "/old")
            }
        }
        try expectRefusal(from: .overlayUser, to: .aufs, code: .unsupported, input: ".wh.fine") {
            try $0.file(".wh.fine")
        }
        try expectRefusal(from: .overlayTrusted, to: .aufs, code: .malformedInput, input: "z") {
            try $0.directory("z")
            try $0.xattr("z", "trusted.overlay.opaque", "z")
        }
        try expectRefusal(from: .overlayTrusted, to: .aufs, code: .malformedInput, input: "r") {
            try $0.directory("r")
            try $0.xattr("r", "trusted.overlay.opaque", "y")
            try $0.xattr("r", "trusted.overlay.unionmount.opaque-marker", "mode=banana")
        }
        try expectRefusal(from: .overlayTrusted, to: .overlayUser, code: .unsupported, input: "symlink") {
            try $0.symlink("symlink", to: Array("t".utf8))
            try $0.xattr("symlink", "trusted.overlay.origin", "handle")
        }
    }

    @Test("bad arguments")
    func arguments() throws {
        let scratch = try Scratch("convert")
        try writeFile(scratch.path.appending("file"), "")
        let notDirectory = thrown {
            try WhiteoutConversion.convert(scratch.path.appending("file"), from: .aufs, to: .overlayTrusted)
        }
        #expect(notDirectory?.code == .invalidArgument)
        let prefix = thrown {
            try WhiteoutConversion.convert(scratch.path, from: .aufs, to: .overlay(xattrPrefix: "security."))
        }
        #expect(prefix?.code == .invalidArgument)
        try WhiteoutConversion.convert(scratch.path, from: .aufs, to: .aufs)
    }
}
