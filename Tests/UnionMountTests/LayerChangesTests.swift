import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// The lower layers every change test starts from (no whiteouts, so any format reads them the same), top first.
func buildChangeLowers(in scratch: Scratch) throws -> [FilePath] {
    let top = try scratch.directory("lower-0")
    let base = try scratch.directory("lower-1")
    let lower = TreeBuilder(root: base)
    try lower.directory("etc")
    try lower.file("etc/config", "v1")
    try lower.file("etc/passwd", "root:x:0:0")
    try lower.file("old.txt", "old")
    try lower.directory("var")
    try lower.directory("var/cache")
    try lower.file("var/cache/a", "a")
    try lower.file("var/cache/b", "b")
    try lower.directory("var/log")
    try lower.file("var/log/l", "l")
    try lower.directory("data")
    try lower.file("data/a", "a")
    try lower.file("data/b", "b")
    try lower.directory("bin")
    try lower.file("bin/ls", "elf", mode: 0o755)
    let upperLayer = TreeBuilder(root: top)
    try upperLayer.directory("etc")
    try upperLayer.file("etc/config", "v2")
    for directory in ["etc", "var", "var/cache", "var/log", "data", "bin"] { try lower.times(directory, 1_600_000_000) }
    try upperLayer.times("etc", 1_600_000_000)
    return [top, base]
}

/// What the change tests do through a mount (or by hand in the upper layer), and the changes listed for it:
/// `var`, whose only change is that `var/cache` was deleted, is not itself listed (directory times are not
/// compared; fuse-overlayfs does not keep them on copy-up).
let expectedChanges = [
    "A added.txt", "C bin", "C data", "D data/a", "D data/b", "A data/new", "C etc/config", "A newdir",
    "A newdir/odd\\xFF", "D old.txt", "D var/cache",
]

/// The merged view of `branches` with what each visible entry is (metadata, contents, attributes other than
/// overlay's), leaving out names a writer keeps for itself (`.wh.*`, which fuse-overlayfs leaves in the directories
/// it makes opaque).
func describedView(_ branches: [FilePath], _ format: WhiteoutFormat) throws -> [String] {
    try MergedView.entries(branches: branches, format: format).compactMap { entry in
        guard !(entry.path.lastComponent?.string.hasPrefix(".wh.") ?? false) else { return nil }
        let source = LayerIO.join(entry.branchPath, entry.path.bytes)
        var described = try TreeManifest.entry(
            at: source, relative: entry.path.bytes, options: .ignoringUnionXattrs)
        if described.type == .directory { described.size = nil }
        return "\(entry.path.readable) \(described)"
    }
}

@Suite("LayerChanges")
struct LayerChangesTests {
    /// An upper layer written by hand in the aufs form with the changes of ``expectedChanges``.
    func aufsUpper(_ scratch: Scratch) throws -> FilePath {
        let root = try scratch.directory("upper")
        let upper = TreeBuilder(root: root)
        try upper.file("added.txt", "new")
        try upper.directory("etc")
        try upper.file("etc/config", "v3")
        try upper.times("etc", 1_600_000_000)
        try upper.file(".wh.old.txt")
        try upper.file(".wh.never-existed")
        try upper.directory("var")
        try upper.file("var/.wh.cache")
        try upper.directory("data")
        try upper.file("data/.wh..wh..opq")
        try upper.file("data/new", "n")
        try upper.directory("newdir")
        try upper.file(Array("newdir/odd".utf8) + [0xFF], Array("odd".utf8))
        try upper.directory("bin", mode: 0o700)
        try upper.times("bin", 1_600_000_000)
        return root
    }

    @Test("an aufs-form upper layer: added, modified, deleted, opaque, stale whiteouts ignored")
    func aufsForm() throws {
        let scratch = try Scratch("changes")
        let lowers = try buildChangeLowers(in: scratch)
        let upper = try aufsUpper(scratch)
        let changes = try LayerChanges.list(upper: upper, lowers: lowers, format: .aufs)
        #expect(changes.map(\.description) == expectedChanges)
    }

    @Test("no lowers: everything is added; an empty upper changes nothing")
    func edges() throws {
        let scratch = try Scratch("changes")
        let upper = try aufsUpper(scratch)
        let all = try LayerChanges.list(upper: upper, lowers: [], format: .aufs)
        #expect(all.allSatisfy { $0.kind == .added })
        #expect(all.map(\.path.string).contains("data/new"))
        #expect(!all.map(\.path.string).contains("old.txt"))
        let empty = try scratch.directory("empty")
        #expect(try LayerChanges.list(upper: empty, lowers: buildChangeLowers(in: scratch), format: .aufs) == [])
        let missing = thrown { try LayerChanges.list(upper: scratch.path.appending("nope"), lowers: [], format: .aufs) }
        #expect(missing?.code == .systemCallFailed)
        #expect(missing?.input?.hasSuffix("/nope") == true)
    }

    @Test("changes encode as JSON with non-UTF-8 paths in base64")
    func coding() throws {
        let changes = [
            LayerChange(path: FilePath(bytes: Array("newdir/odd".utf8) + [0xFF]), kind: .added),
            LayerChange(path: "etc/config", kind: .modified),
        ]
        let json = String(decoding: try JSONEncoder().encode(changes), as: UTF8.self)
        #expect(json.contains(#"{"base64":"bmV3ZGlyL29kZP8="}"#))
        #expect(json.contains(#""kind":"modified""#))
        #expect(try JSONDecoder().decode([LayerChange].self, from: Data(json.utf8)) == changes)
    }

    @Test(
        "export in both forms shows over the lowers what the upper shows",
        .enabled(if: TestEnvironment.isRoot, "whiteout devices need mknod, trusted.* xattrs need root"),
        arguments: [WhiteoutFormat.aufs, .overlayTrusted, .overlayUser])
    func export(as output: WhiteoutFormat) throws {
        let scratch = try Scratch("changes")
        let lowers = try buildChangeLowers(in: scratch)
        let upper = try aufsUpper(scratch)
        let layer = scratch.path.appending("layer")
        try LayerChanges.export(upper: upper, lowers: lowers, format: .aufs, to: layer, as: output)
        #expect(try describedView([layer] + lowers, output) == describedView([upper] + lowers, .aufs))
        // The stale whiteout is gone; the exported layer lists the same changes.
        #expect(!fileExists(layer.appending(".wh.never-existed")) && !fileExists(layer.appending("never-existed")))
        #expect(
            try LayerChanges.list(upper: layer, lowers: lowers, format: output).map(\.description) == expectedChanges)
        let exists = thrown {
            try LayerChanges.export(upper: upper, lowers: lowers, format: .aufs, to: layer, as: output)
        }
        #expect(exists?.code == .alreadyExists)
    }

    @Test(
        "an overlay-form upper: device whiteouts, opaque xattr, bookkeeping xattrs ignored; redirect refused on export",
        .enabled(if: TestEnvironment.isRoot, "whiteout devices need mknod, trusted.* xattrs need root"))
    func overlayForm() throws {
        let scratch = try Scratch("changes")
        let lowers = try buildChangeLowers(in: scratch)
        let upper = try aufsUpper(scratch)
        try WhiteoutConversion.convert(upper, from: .aufs, to: .overlayTrusted)
        let tree = TreeBuilder(root: upper)
        try tree.xattr("etc", "trusted.overlay.origin", "handle")
        try tree.xattr("etc", "trusted.overlay.impure", "y")
        try tree.times("etc", 1_600_000_000)
        try tree.xattr("", "trusted.overlay.uuid", "0123456789abcdef")
        let changes = try LayerChanges.list(upper: upper, lowers: lowers, format: .overlayTrusted)
        #expect(changes.map(\.description) == expectedChanges)
        try tree.xattr("etc/config", "trusted.overlay.redirect", "/elsewhere")
        let error = thrown {
            try LayerChanges.export(
                upper: upper, lowers: lowers, format: .overlayTrusted, to: scratch.path.appending("l"), as: .aufs)
        }
        #expect(error?.code == .unsupported)
        #expect(error?.input?.hasSuffix("/etc/config") == true)
        #expect(!fileExists(scratch.path.appending("l")))
    }
}
