import CUnionMountShim
import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// Branch trees built for one test under a fresh scratch directory: `branch(i)` is `<scratch>/b<i>`.
struct BranchTrees {
    let scratch: Scratch
    let branches: [FilePath]

    init(count: Int, name: String = "merged") throws {
        let scratch = try Scratch(name)
        self.scratch = scratch
        branches = try (0..<count).map { try scratch.directory("b\($0)") }
    }

    /// `relative` (slash-separated bytes) below branch `index`.
    func path(_ index: Int, _ relative: String) -> FilePath {
        FilePath(bytes: branches[index].bytes + [UInt8(ascii: "/")] + Array(relative.utf8))
    }

    func file(_ index: Int, _ relative: String, _ contents: String = "") throws {
        let path = path(index, relative)
        var parent = path
        parent.removeLastComponent()
        try makeDirectories(parent)
        try writeFile(path, contents)
    }

    func directory(_ index: Int, _ relative: String) throws {
        try makeDirectories(path(index, relative))
    }

    /// overlay's whiteout: a character device 0/0 (root only).
    func characterWhiteout(_ index: Int, _ relative: String) throws {
        let result = path(index, relative).withPlatformString { mknod($0, S_IFCHR | 0o000, 0) }
        guard result == 0 else { throw Errno(rawValue: errno) }
    }

    func setXattr(_ index: Int, _ relative: String, _ name: String, _ value: String) throws {
        try setExtendedAttribute(relative.isEmpty ? branches[index] : path(index, relative), name, value)
    }

    func entries(_ format: WhiteoutFormat) throws -> [MergedEntry] {
        try MergedView.entries(branches: branches, format: format)
    }

    /// `path:branch` for files, `path/:branch` for directories, `path@:branch` for symlinks, `path?:branch` else.
    func summary(_ format: WhiteoutFormat) throws -> [String] {
        try entries(format).map { entry in
            let mark = [MergedEntry.EntryType.file: "", .directory: "/", .symlink: "@", .other: "?"][entry.type] ?? ""
            return "\(entry.path)\(mark):\(entry.branch)"
        }
    }
}

/// lsetxattr(2) through the shim (Swift's Glibc module does not import `<sys/xattr.h>`).
func setExtendedAttribute(_ path: FilePath, _ name: String, _ value: String) throws {
    let bytes = Array(value.utf8)
    let result = path.withPlatformString { cPath in
        bytes.withUnsafeBytes { CUnionMount_lsetxattr(cPath, name, $0.baseAddress, $0.count, 0) }
    }
    guard result == 0 else { throw Errno(rawValue: errno) }
}

@Suite struct MergedViewTests {
    // MARK: Shadowing and merging (no privileges needed)

    @Test("a name in a higher branch hides the same name below; directories merge")
    func shadowingAndMerging() throws {
        let trees = try BranchTrees(count: 3)
        try trees.file(0, "x", "0")
        try trees.file(1, "x", "1")
        try trees.file(2, "x", "2")
        try trees.file(1, "only-1")
        try trees.file(2, "only-2")
        try trees.file(0, "etc/from-0")
        try trees.file(2, "etc/from-2")
        try trees.file(1, "etc/x", "1")
        try trees.file(2, "etc/x", "2")
        try trees.directory(2, "etc/deep/er")
        #expect(
            try trees.summary(.overlayTrusted) == [
                "etc/:0", "etc/deep/:2", "etc/deep/er/:2", "etc/from-0:0", "etc/from-2:2", "etc/x:1", "only-1:1",
                "only-2:2", "x:0",
            ])
        #expect(try trees.summary(.overlayTrusted) == trees.summary(.aufs))
        let entry = try #require(try trees.entries(.aufs).first { $0.path == "etc/x" })
        #expect(entry.branchPath == trees.branches[1])
        #expect(entry.type == .file)
    }

    @Test("a file over a directory hides the directory; a directory stops merging at a non-directory below it")
    func fileAndDirectory() throws {
        let trees = try BranchTrees(count: 3)
        try trees.file(0, "f")
        try trees.file(1, "f/below")
        try trees.file(0, "d/p")
        try trees.file(1, "d")
        try trees.file(2, "d/q")
        #expect(try trees.summary(.overlayTrusted) == ["d/:0", "d/p:0", "f:0"])
        #expect(try trees.summary(.aufs) == ["d/:0", "d/p:0", "f:0"])
    }

    @Test("symlinks are listed, never followed; FIFOs are `other`")
    func symlinksAndOthers() throws {
        let trees = try BranchTrees(count: 2)
        try trees.file(1, "target/inside")
        #expect(symlink("target", trees.path(0, "link").string) == 0)
        #expect(symlink(trees.path(1, "target").string, trees.path(0, "target-too").string) == 0)
        #expect(mkfifo(trees.path(1, "pipe").string, 0o644) == 0)
        #expect(
            try trees.summary(.overlayTrusted) == [
                "link@:0", "pipe?:1", "target/:1", "target-too@:0", "target/inside:1",
            ])
    }

    @Test("names are bytes; entries are sorted by path bytes; non-UTF-8 paths encode as base64")
    func bytesAndOrder() throws {
        let trees = try BranchTrees(count: 2)
        let odd: [UInt8] = [0x66, 0xFF, 0x0A, 0x20]
        try writeFile(FilePath(bytes: trees.branches[1].bytes + [UInt8(ascii: "/")] + odd), "odd")
        try trees.file(0, "a-b")
        try trees.file(0, "a/b")
        try trees.file(1, "a0")
        try trees.file(1, "B")
        let entries = try trees.entries(.overlayTrusted)
        let expected = ["B", "a", "a-b", "a/b", "a0"].map { Array($0.utf8) } + [odd]
        #expect(entries.map(\.path.bytes) == expected)
        let oddEntry = try #require(entries.last)
        #expect(oddEntry.branch == 1)

        let data = try JSONEncoder().encode(oddEntry)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["path", "type", "branch", "branchPath"])
        #expect((object["path"] as? [String: String])?["base64"] == Base64.encode(odd))
        #expect(try JSONDecoder().decode(MergedEntry.self, from: data) == oddEntry)
    }

    @Test("the JSON form: path, type, branch, branchPath")
    func json() throws {
        let entry = MergedEntry(path: "etc/passwd", type: .symlink, branch: 2, branchPath: "/layers/base")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = String(decoding: try encoder.encode(entry), as: UTF8.self)
        #expect(text == #"{"branch":2,"branchPath":"/layers/base","path":"etc/passwd","type":"symlink"}"#)
        #expect(try JSONDecoder().decode(MergedEntry.self, from: Data(text.utf8)) == entry)
        #expect(MergedEntry.EntryType.allCases.map(\.rawValue) == ["file", "directory", "symlink", "other"])
    }

    @Test("errors: no branch, a missing branch, a branch that is a file")
    func errors() throws {
        let none = try #require(throws: UnionMountError.self) {
            try MergedView.entries(branches: [], format: .aufs)
        }
        #expect(none.code == .invalidArgument)
        let trees = try BranchTrees(count: 1)
        try trees.file(0, "file")
        let missing = try #require(throws: UnionMountError.self) {
            try MergedView.entries(branches: [trees.branches[0], trees.path(0, "absent")], format: .aufs)
        }
        #expect(missing.code == .systemCallFailed)
        #expect(missing.errno == .noSuchFileOrDirectory)
        #expect(missing.input == "branches[1]")
        let file = try #require(throws: UnionMountError.self) {
            try MergedView.entries(branches: [trees.path(0, "file")], format: .overlayTrusted)
        }
        #expect(file.code == .invalidArgument)
        #expect(file.input == "branches[0]")
    }

    // MARK: aufs

    @Test("aufs: .wh.<name> whites out, .wh..wh..opq makes opaque, .wh..wh.* is never listed")
    func aufsWhiteouts() throws {
        let trees = try BranchTrees(count: 3)
        try trees.file(0, ".wh.gone")
        try trees.file(1, "gone")
        try trees.file(2, "gone")
        try trees.file(1, ".wh.dir")  // a whiteout hides a whole directory
        try trees.file(2, "dir/inside")
        try trees.file(0, "opq/top")
        try trees.file(0, "opq/.wh..wh..opq")
        try trees.file(1, "opq/hidden")
        try trees.file(1, "mid/.wh..wh..opq")  // opaque in a middle branch: the top one still merges with it
        try trees.file(0, "mid/top")
        try trees.file(1, "mid/middle")
        try trees.file(2, "mid/bottom")
        try trees.file(0, ".wh..wh.aufs")
        try trees.directory(0, ".wh..wh.plnk")
        try trees.directory(0, ".wh..wh.orph")
        try trees.file(0, ".wh.")
        try trees.file(1, "both")
        try trees.file(1, ".wh.both")  // the whiteout wins in its own branch, as aufs looks it up first
        try trees.file(2, "both")
        try trees.file(2, ".wh.bottom-only")
        #expect(
            try trees.summary(.aufs) == ["mid/:0", "mid/middle:1", "mid/top:0", "opq/:0", "opq/top:0"])
    }

    @Test("aufs names are ordinary names in overlay format")
    func aufsNamesInOverlayFormat() throws {
        let trees = try BranchTrees(count: 2)
        try trees.file(0, ".wh.gone")
        try trees.file(1, "gone")
        #expect(try trees.summary(.overlayTrusted) == [".wh.gone:0", "gone:1"])
    }

    // MARK: overlay (root: char 0/0 devices and trusted.* xattrs)

    @Test(
        "overlay: char 0/0 whiteouts hide files and directories, other devices are listed",
        .enabled(if: TestEnvironment.isRoot, "mknod(2) of a character device needs root"))
    func overlayCharacterWhiteouts() throws {
        let trees = try BranchTrees(count: 3)
        try trees.characterWhiteout(0, "gone")
        try trees.file(1, "gone")
        try trees.characterWhiteout(1, "dir")
        try trees.file(2, "dir/inside")
        try trees.file(0, "kept")
        try trees.characterWhiteout(1, "kept")
        try trees.characterWhiteout(2, "lonely")
        let devNull = dev_t(CUnionMount_makedev(1, 3))
        #expect(trees.path(0, "null").withPlatformString { mknod($0, S_IFCHR | 0o644, devNull) } == 0)
        #expect(try trees.summary(.overlayTrusted) == ["kept:0", "null?:0"])
        // In aufs format a character device is just a device: it hides what is below it.
        #expect(try trees.summary(.aufs) == ["dir?:1", "gone?:0", "kept:0", "lonely?:2", "null?:0"])
    }

    @Test(
        "overlay: opaque=y stops the merge below the directory; the prefix must match; the root is never opaque",
        .enabled(if: TestEnvironment.isRoot, "trusted.* xattrs need root"))
    func overlayOpaque() throws {
        let trees = try BranchTrees(count: 3)
        try trees.file(0, "o/top")
        try trees.file(1, "o/middle")
        try trees.file(2, "o/bottom")
        try trees.setXattr(0, "o", "trusted.overlay.opaque", "y")
        try trees.file(0, "m/top")
        try trees.file(1, "m/middle")
        try trees.file(2, "m/bottom")
        try trees.setXattr(1, "m", "trusted.overlay.opaque", "y")
        try trees.file(0, "u/top")
        try trees.file(1, "u/middle")
        try trees.setXattr(0, "u", "user.overlay.opaque", "y")
        try trees.file(1, "root-level")
        try trees.setXattr(0, "", "trusted.overlay.opaque", "y")
        #expect(
            try trees.summary(.overlayTrusted) == [
                "m/:0", "m/middle:1", "m/top:0", "o/:0", "o/top:0", "root-level:1", "u/:0", "u/middle:1", "u/top:0",
            ])
        #expect(
            try trees.summary(.overlayUser) == [
                "m/:0", "m/bottom:2", "m/middle:1", "m/top:0", "o/:0", "o/bottom:2", "o/middle:1", "o/top:0",
                "root-level:1", "u/:0", "u/top:0",
            ])
    }

    @Test(
        "overlay: xattr whiteouts count only in a directory marked opaque=x, which still merges",
        .enabled(if: TestEnvironment.isRoot, "trusted.* xattrs need root"))
    func overlayXattrWhiteouts() throws {
        let trees = try BranchTrees(count: 2)
        try trees.file(0, "x/gone")
        try trees.setXattr(0, "x/gone", "trusted.overlay.whiteout", "")
        try trees.file(0, "x/not-empty", "data")
        try trees.setXattr(0, "x/not-empty", "trusted.overlay.whiteout", "")
        try trees.setXattr(0, "x", "trusted.overlay.opaque", "x")
        try trees.file(1, "x/gone", "lower")
        try trees.file(1, "x/not-empty", "lower")
        try trees.file(1, "x/from-below")
        try trees.file(0, "unmarked/gone")
        try trees.setXattr(0, "unmarked/gone", "trusted.overlay.whiteout", "")
        try trees.file(1, "unmarked/gone", "lower")
        #expect(
            try trees.summary(.overlayTrusted) == [
                "unmarked/:0", "unmarked/gone:0", "x/:0", "x/from-below:1", "x/not-empty:0",
            ])
        #expect(
            try trees.summary(.overlayUser) == [
                "unmarked/:0", "unmarked/gone:0", "x/:0", "x/from-below:1", "x/gone:0", "x/not-empty:0",
            ])
    }

    @Test(
        "user.overlay.* xattrs with the user prefix",
        .enabled(if: TestEnvironment.isRoot, "a character whiteout needs root"))
    func overlayUserPrefix() throws {
        let trees = try BranchTrees(count: 2)
        try trees.file(0, "d/top")
        try trees.file(1, "d/bottom")
        try trees.setXattr(0, "d", "user.overlay.opaque", "y")
        try trees.characterWhiteout(0, "gone")
        try trees.file(1, "gone")
        #expect(try trees.summary(.overlayUser) == ["d/:0", "d/top:0"])
    }

    @Test("whiteoutFormat of a report follows the filesystem type and userxattr; relative branches are refused")
    func reportFormat() throws {
        func report(_ type: String, _ options: [String]) -> UnionMountReport {
            UnionMountReport(
                mountID: 1, parentID: 0, mountPoint: "/m", fsType: type, source: "s", readOnly: false, branches: [],
                workdir: nil, options: options, aufs: nil)
        }
        #expect(report("overlay", ["uuid=on"]).whiteoutFormat == .overlayTrusted)
        #expect(report("overlay", ["redirect_dir=nofollow", "userxattr"]).whiteoutFormat == .overlayUser)
        #expect(report("aufs", []).whiteoutFormat == .aufs)
        #expect(report("ext4", []).whiteoutFormat == nil)
        #expect(throws: UnionMountError.self) { try MergedView.entries(of: report("fuse.fuse-overlayfs", [])) }
        var relative = report("overlay", [])
        relative.branches = [
            BranchState(index: 0, path: "layers/l1", role: .lower, permission: .readOnly, exists: false)
        ]
        let error = try #require(throws: UnionMountError.self) { try MergedView.entries(of: relative) }
        #expect(error.code == .unsupported)
        #expect(error.message.contains("relative path layers/l1"))
    }
}

// MARK: - Against a real overlay mount

extension PrivilegedTests {
    /// ``MergedView`` of a mounted overlay's layers, compared with what the kernel shows through the mount.
    @Suite(.enabled(if: KernelOverlay.available, KernelOverlay.skipReason)) struct MergedViewOfMounts {
        @Test("MergedView of the layers equals a readdir walk of the mount, after deletions and a recreated dir")
        func matchesMountedOverlay() throws {
            let scratch = try Scratch("mergedmount")
            let (top, bottom) = (try scratch.directory("l1"), try scratch.directory("l2"))
            let (upper, work) = (try scratch.directory("u"), try scratch.directory("w"))
            let target = try scratch.directory("m")
            let odd: [UInt8] = [0x6F, 0xFE, 0x64]
            let lowerFiles = [
                "x", "keep/a", "keep/b", "gone-file", "gone-dir/p", "gone-dir/q/r", "again/old", "shared/two",
            ]
            for name in lowerFiles {
                try writeFileMakingParents(bottom, name, "2:\(name)")
            }
            try writeFile(FilePath(bytes: bottom.bytes + [UInt8(ascii: "/")] + odd), "odd")
            for name in ["x", "keep/c", "again/older", "shared/one"] {
                try writeFileMakingParents(top, name, "1:\(name)")
            }
            #expect(symlink("x", top.appending("link").string) == 0)
            try Mounter().mount(
                .overlay(OverlaySpec(lowerDirectories: [top, bottom], upperDirectory: upper, workDirectory: work)),
                at: target)
            defer { _ = try? Mounter().unmount(target) }

            // Through the mount: a lower file deleted, a whole lower dir deleted, a merged dir recreated (opaque).
            #expect(unlink(target.appending("gone-file").string) == 0)
            removeTree(target.appending("gone-dir"))
            removeTree(target.appending("again"))
            #expect(mkdir(target.appending("again").string, 0o755) == 0)
            try writeFile(target.appending("again/new"), "0:again/new")
            try writeFile(target.appending("keep/a"), "0:keep/a")
            try writeFile(target.appending("fresh"), "0:fresh")

            let view = try MergedView.entries(branches: [upper, top, bottom], format: .overlayTrusted)
            let walked = try walk(target)
            #expect(view.map(\.path.bytes) == walked.map(\.0))
            #expect(view.map(\.type) == walked.map(\.1))
            let branches = Dictionary(view.map { ($0.path.string, $0.branch) }, uniquingKeysWith: { first, _ in first })
            #expect(branches["again"] == 0 && branches["again/new"] == 0 && branches["again/old"] == nil)
            #expect(branches["keep"] == 0 && branches["keep/a"] == 0 && branches["keep/b"] == 2)
            #expect(branches["keep/c"] == 1 && branches["x"] == 1 && branches["link"] == 1)
            #expect(branches["shared/one"] == 1 && branches["shared/two"] == 2)
            #expect(branches["gone-file"] == nil && branches["gone-dir"] == nil)
            for entry in view where entry.type == .file {
                let through = FilePath(bytes: target.bytes + [UInt8(ascii: "/")] + entry.path.bytes)
                let inBranch = FilePath(bytes: entry.branchPath.bytes + [UInt8(ascii: "/")] + entry.path.bytes)
                #expect(readFile(through) == readFile(inBranch), "\(entry.path)")
            }
            let report = try #require(try MountTable.report(at: target))
            #expect(try MergedView.entries(of: report) == view)
            #expect(try Mounter().unmount(target) == .unmounted)
        }

        private func writeFileMakingParents(_ root: FilePath, _ relative: String, _ contents: String) throws {
            let path = root.appending(relative)
            var parent = path
            parent.removeLastComponent()
            try makeDirectories(parent)
            try writeFile(path, contents)
        }

        /// Every name below `root` as readdir(3) and lstat(2) see it, sorted by path bytes.
        private func walk(_ root: FilePath) throws -> [([UInt8], MergedEntry.EntryType)] {
            var result: [([UInt8], MergedEntry.EntryType)] = []
            func visit(_ relative: [UInt8]) throws {
                let directory = relative.isEmpty ? root : FilePath(bytes: root.bytes + [UInt8(ascii: "/")] + relative)
                let handle = try #require(directory.withPlatformString { opendir($0) })
                defer { closedir(handle) }
                while let entry = readdir(handle) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
                    if name == Array(".".utf8) || name == Array("..".utf8) { continue }
                    let child = relative.isEmpty ? name : relative + [UInt8(ascii: "/")] + name
                    var info = stat()
                    let path = FilePath(bytes: root.bytes + [UInt8(ascii: "/")] + child)
                    #expect(path.withPlatformString { lstat($0, &info) } == 0, "\(path)")
                    switch info.st_mode & S_IFMT {
                    case S_IFREG: result.append((child, .file))
                    case S_IFDIR:
                        result.append((child, .directory))
                        try visit(child)
                    case S_IFLNK: result.append((child, .symlink))
                    default: result.append((child, .other))
                    }
                }
            }
            try visit([])
            return result.sorted { $0.0.lexicographicallyPrecedes($1.0) }
        }
    }
}
