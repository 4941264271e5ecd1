import CUnionMountShim
import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// Builds layer trees byte by byte for the layer tests: every file type, owners, modes, times, attributes.
/// Paths are relative to `root` and given as bytes (or strings) so that odd names can be made.
struct TreeBuilder {
    let root: FilePath

    func path(_ relative: [UInt8]) -> [UInt8] { root.bytes + [UInt8(ascii: "/")] + relative }
    func path(_ relative: String) -> [UInt8] { path(Array(relative.utf8)) }

    func directory(_ relative: String, mode: mode_t = 0o755) throws { try directory(Array(relative.utf8), mode: mode) }
    func directory(_ relative: [UInt8], mode: mode_t = 0o755) throws {
        try check(mkdir(cString(path(relative)), 0o700), "mkdir", relative)
        try check(chmod(cString(path(relative)), mode), "chmod", relative)
    }

    func file(_ relative: String, _ contents: String = "", mode: mode_t = 0o644) throws {
        try file(Array(relative.utf8), Array(contents.utf8), mode: mode)
    }
    func file(_ relative: [UInt8], _ contents: [UInt8] = [], mode: mode_t = 0o644) throws {
        let fd = open(cString(path(relative)), O_WRONLY | O_CREAT | O_EXCL, 0o600)
        try check(fd >= 0 ? 0 : -1, "open", relative)
        _ = contents.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        try check(chmod(cString(path(relative)), mode), "chmod", relative)
    }

    func node(_ relative: String, type: mode_t, major: UInt32 = 0, minor: UInt32 = 0, mode: mode_t = 0o644) throws {
        let device = dev_t(CUnionMount_makedev(major, minor))
        try check(mknod(cString(path(relative)), type | 0o600, device), "mknod", Array(relative.utf8))
        try check(chmod(cString(path(relative)), mode), "chmod", Array(relative.utf8))
    }

    func symlink(_ relative: String, to target: [UInt8]) throws {
        try check(
            Glibc.symlink(cString(target), cString(path(relative))), "symlink", Array(relative.utf8))
    }

    func hardLink(_ relative: String, to existing: String) throws {
        try check(link(cString(path(existing)), cString(path(relative))), "link", Array(relative.utf8))
    }

    func xattr(_ relative: String, _ name: String, _ value: String) throws {
        try LayerIO.setXattr(FilePath(bytes: path(relative)), name, Array(value.utf8))
    }

    /// lchown(2), then the mode again (chown clears the set-ID bits).
    func owner(_ relative: String, _ uid: uid_t, _ gid: gid_t) throws {
        let before = try status(relative)
        try check(lchown(cString(path(relative)), uid, gid), "lchown", Array(relative.utf8))
        if before.st_mode & S_IFMT != S_IFLNK {
            try check(chmod(cString(path(relative)), before.st_mode & 0o7777), "chmod", Array(relative.utf8))
        }
    }

    /// Sets the access and modification times (seconds and nanoseconds) without following links; `""` is the root.
    func times(_ relative: String, _ seconds: Int, _ nanoseconds: Int = 0) throws {
        let full = relative.isEmpty ? root.bytes : path(relative)
        let time = FileTime(seconds: seconds, nanoseconds: nanoseconds)
        try LayerIO.setTimes(FilePath(bytes: full), access: time, modification: time)
    }

    func exists(_ relative: String) -> Bool { fileExists(FilePath(bytes: path(relative))) }

    /// lstat(2), as libc's `stat` (the tests compare raw fields).
    func status(_ relative: String) throws -> stat {
        var info = stat()
        try check(lstat(cString(path(relative)), &info), "lstat", Array(relative.utf8))
        return info
    }

    func xattrValue(_ relative: String, _ name: String) throws -> String? {
        try LayerIO.xattr(relative.isEmpty ? root : FilePath(bytes: path(relative)), name).map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    private func check(_ result: Int32, _ call: String, _ relative: [UInt8]) throws {
        if result != 0 { throw UnionMountError.systemCall(call, Errno(rawValue: errno), message: relative.readable) }
    }
}

/// The bytes with a terminating NUL, to pass where C wants a path.
func cString(_ bytes: [UInt8]) -> [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }

/// The names with odd bytes every tree test carries: newline, non-UTF-8, backslash, colon, space.
let oddNames: [[UInt8]] = [
    Array("new\nline".utf8), [0x66, 0xFF, 0xFE, 0x80], Array("back\\slash".utf8), Array("co:lon".utf8),
    Array("sp ace".utf8),
]

/// A tree of every ordinary kind of entry (no whiteouts): contents, modes with special bits, owners, times,
/// attributes in three namespaces, hard links, odd names. Root-only parts are made only as root.
func buildOrdinaryTree(_ tree: TreeBuilder) throws {
    try tree.file("file.txt", "hello\n", mode: 0o640)
    try tree.xattr("file.txt", "user.color", "blue")
    try tree.file("empty", "", mode: 0o600)
    try tree.file("big", String(repeating: "0123456789abcdef", count: 10_000))
    try tree.directory("sub", mode: 0o750)
    try tree.directory("sub/deeper", mode: 0o700)
    try tree.file("sub/deeper/leaf", "leaf")
    try tree.symlink("link", to: Array("../target//with space/".utf8))
    try tree.symlink("sub/dangling", to: Array("nowhere".utf8))
    try tree.node("fifo", type: S_IFIFO, mode: 0o620)
    try tree.file("hard-a", "shared")
    try tree.hardLink("sub/hard-b", to: "hard-a")
    try tree.hardLink("hard-c", to: "hard-a")
    try tree.directory("odd")
    for (index, name) in oddNames.enumerated() {
        try tree.file(Array("odd/".utf8) + name, Array("odd \(index)".utf8))
    }
    try tree.directory(Array("odd/dir-".utf8) + oddNames[1])
    if TestEnvironment.isRoot {
        try tree.file("setuid", "#!/bin/sh\n", mode: 0o4755)
        try tree.owner("setuid", 1000, 100)
        try tree.directory("setgid-dir", mode: 0o2775)
        try tree.owner("setgid-dir", 33, 33)
        try tree.directory("sticky", mode: 0o1777)
        try tree.node("char", type: S_IFCHR, major: 1, minor: 3, mode: 0o666)
        try tree.node("block", type: S_IFBLK, major: 7, minor: 0, mode: 0o660)
        try tree.node("socket", type: S_IFSOCK, mode: 0o755)
        try tree.xattr("file.txt", "trusted.note", "only root sees this")
        try tree.xattr("sub", "trusted.dir", "d")
        try tree.xattr("link", "trusted.link", "on a symlink")
        try tree.xattr("char", "security.label", "dev")
        try tree.owner("link", 12, 34)
    }
    try tree.times("file.txt", 1_600_000_000, 123_456_789)
    try tree.times("link", 1_500_000_000, 1)
    try tree.times("sub/deeper", 1_400_000_000, 999_999_999)
    try tree.times("sub", 1_300_000_000, 5)
    try tree.times("odd", 1_200_000_000, 7)
    try tree.times("", 1_100_000_000, 42)
}

@Suite("LayerTree.copy and TreeManifest")
struct LayerTreeTests {
    @Test("a copy has the same manifest as its source, hard links, odd names, times and xattrs included")
    func copyFidelity() throws {
        let scratch = try Scratch("copy")
        let source = try scratch.directory("source")
        try buildOrdinaryTree(TreeBuilder(root: source))
        let before = try TreeManifest.read(source)
        let destination = scratch.path.appending("copy")
        try LayerTree.copy(from: source, to: destination)
        let copy = try TreeManifest.read(destination)
        #expect(before.differences(from: copy) == [])
        #expect(before == copy)
        // Reading the source did not change it (O_NOATIME aside, contents and times are untouched).
        #expect(try TreeManifest.read(source) == before)
        let links = copy.entries.filter { $0.linkGroup != nil }.map(\.path.string)
        #expect(links == ["hard-a", "hard-c", "sub/hard-b"])
        let target = copy.entries.first { $0.path == "link" }?.symlinkTarget
        #expect(target == Array("../target//with space/".utf8))
        #expect(copy.entries.contains { $0.path.bytes == Array("odd/".utf8) + oddNames[0] })
        if TestEnvironment.isRoot {
            let setuid = try #require(copy.entries.first { $0.path == "setuid" })
            #expect(setuid.mode == 0o4755 && setuid.uid == 1000 && setuid.gid == 100)
            #expect(copy.entries.first { $0.path == "block" }?.device == .init(major: 7, minor: 0))
            #expect(copy.entries.first { $0.path == "socket" }?.type == .socket)
        }
    }

    @Test("copy refuses an existing destination, a file source, and a destination inside the source")
    func copyRefusals() throws {
        let scratch = try Scratch("copy")
        let source = try scratch.directory("source")
        try writeFile(source.appending("f"), "x")
        let existing = try scratch.directory("existing")
        let exists = thrown { try LayerTree.copy(from: source, to: existing) }
        #expect(exists?.code == .alreadyExists)
        #expect(exists?.input == existing.string)
        let notDirectory = thrown { try LayerTree.copy(from: source.appending("f"), to: scratch.path.appending("n")) }
        #expect(notDirectory?.code == .invalidArgument)
        let missing = thrown {
            try LayerTree.copy(from: scratch.path.appending("none"), to: scratch.path.appending("m"))
        }
        #expect(missing?.code == .systemCallFailed)
        #expect(missing?.errno == .noSuchFileOrDirectory)
        #expect(missing?.input?.hasSuffix("/none") == true)
        let inside = thrown { try LayerTree.copy(from: source, to: source.appending("copy")) }
        #expect(inside?.code == .invalidArgument)
        #expect(!fileExists(source.appending("copy")))
    }

    @Test("a file that cannot be read is an error naming it, and the partial copy is removed")
    func unreadable() throws {
        // Needs a user that permissions apply to; root reads everything.
        guard !TestEnvironment.isRoot else { return }
        let scratch = try Scratch("copy")
        let source = try scratch.directory("source")
        try writeFile(source.appending("secret"), "x")
        chmod(source.appending("secret").string, 0)
        let error = thrown { try LayerTree.copy(from: source, to: scratch.path.appending("c")) }
        #expect(error?.input?.hasSuffix("/secret") == true)
        #expect(!fileExists(scratch.path.appending("c")))
    }

    @Test("manifest differences name the path and the field")
    func manifestDifferences() throws {
        let scratch = try Scratch("manifest")
        let one = try scratch.directory("one")
        let two = try scratch.directory("two")
        for root in [one, two] {
            let tree = TreeBuilder(root: root)
            try tree.file("same", "s")
            try tree.file("content", root == one ? "a" : "b")
            try tree.file("mode", "", mode: root == one ? 0o644 : 0o600)
            try tree.xattr("same", "user.x", root == one ? "1" : "2")
            try tree.times("same", 1000)
            try tree.times("content", 1000)
            try tree.times("mode", 1000)
            try tree.times("", 1000)
        }
        try writeFile(one.appending("only-one"), "")
        try TreeBuilder(root: one).times("", 1000)
        let differences = try TreeManifest.read(one).differences(from: TreeManifest.read(two))
        #expect(differences.count == 4, "\(differences)")
        #expect(differences.contains { $0.hasPrefix("content: digest ") })
        #expect(differences.contains("mode: mode 0644 ≠ 0600"))
        #expect(differences.contains("only in this: only-one"))
        #expect(differences.contains("same: xattr user.x \"1\" ≠ \"2\""))
        let loose = TreeManifest.Options(includeModificationTimes: false, ignoredXattrPrefixes: ["user."])
        let looseDifferences = try TreeManifest.read(one, options: loose).differences(
            from: TreeManifest.read(two, options: loose))
        #expect(looseDifferences.count == 3, "\(looseDifferences)")
    }

    @Test("the digest tells contents apart and does not depend on how the bytes arrive")
    func digest() {
        var whole = ContentDigest()
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        whole.update(bytes)
        var pieces = ContentDigest()
        pieces.update(Array(bytes[..<3]))
        pieces.update(Array(bytes[3..<500]))
        pieces.update(Array(bytes[500...]))
        #expect(whole.finish() == pieces.finish())
        #expect(whole.finish().count == 32)
        var empty = ContentDigest()
        empty.update([])
        var zero = ContentDigest()
        zero.update([0])
        #expect(empty.finish() != zero.finish())
        var flipped = bytes
        flipped[999] ^= 1
        var other = ContentDigest()
        other.update(flipped)
        #expect(other.finish() != whole.finish())
    }

    @Test("a manifest survives JSON, odd names and symlink targets included")
    func manifestCoding() throws {
        let scratch = try Scratch("manifest")
        let root = try scratch.directory("tree")
        try buildOrdinaryTree(TreeBuilder(root: root))
        let manifest = try TreeManifest.read(root)
        let data = try JSONEncoder().encode(manifest)
        #expect(try JSONDecoder().decode(TreeManifest.self, from: data) == manifest)
    }
}
