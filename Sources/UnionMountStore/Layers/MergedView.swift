import SystemPackage
import UnionMount

/// One name of a union's merged view: what it is and which branch it comes from.
public struct MergedEntry: Sendable, Hashable, Codable {
    /// The file type, as lstat(2) sees it in the branch the entry comes from.
    public enum EntryType: String, Sendable, Hashable, Codable, CaseIterable {
        /// A regular file.
        case file
        /// A directory (its contents may come from several branches).
        case directory
        /// A symbolic link (never followed).
        case symlink
        /// A device, FIFO or socket.
        case other
    }

    /// The path relative to the root of the union (`etc/passwd`); never empty, never absolute.
    public var path: FilePath
    /// The type.
    public var type: EntryType
    /// The index of the branch the entry comes from in the branch list given, 0 = top.
    public var branch: Int
    /// The root directory of that branch, as given (the entry lives at `branchPath/path`).
    public var branchPath: FilePath

    /// Creates an entry.
    public init(path: FilePath, type: EntryType, branch: Int, branchPath: FilePath) {
        self.path = path
        self.type = type
        self.branch = branch
        self.branchPath = branchPath
    }

    private enum CodingKeys: String, CodingKey { case path, type, branch, branchPath }

    /// Decodes the JSON form of ``encode(to:)``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        path = try container.decodePath(forKey: .path)
        type = try container.decode(EntryType.self, forKey: .type)
        branch = try container.decode(Int.self, forKey: .branch)
        branchPath = try container.decodePath(forKey: .branchPath)
    }

    /// Encodes `path`, `type` (`file`, `directory`, `symlink` or `other`), `branch` and `branchPath`; a path that
    /// is not UTF-8 is `{"base64": …}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path: path, forKey: .path)
        try container.encode(type, forKey: .type)
        try container.encode(branch, forKey: .branch)
        try container.encode(path: branchPath, forKey: .branchPath)
    }
}

/// The merged view of a union, computed from its branches without mounting anything.
///
///     let entries = try MergedView.entries(
///         branches: ["/containers/c1/upper", "/layers/app", "/layers/base"], format: .overlayTrusted)
///     for entry in entries { print(entry.path, entry.branch) }
///
/// The branches are walked top-down. A name found in a higher branch hides the same name in every lower
/// one; a whiteout hides it and is itself never listed. A directory found in several branches merges their
/// contents, down to the first branch where it is opaque, whited out or not a directory. The root of the union
/// always merges every branch (neither kernel looks at the root's opaque mark).
///
/// What is not modelled: overlay's `redirect_dir` renames and metacopy (an entry comes from the branch where
/// its name is found), and aufs' `ro` branches that are not `+wh` (aufs ignores whiteouts there; here every
/// branch's whiteouts count). overlay honours xattr whiteouts only in lower layers; here they count in every
/// branch, the way they would once the layer is used as a lower one.
public enum MergedView {
    /// The merged view of `branches`, sorted by the bytes of ``MergedEntry/path``.
    ///
    /// Names are bytes: a name that is not UTF-8 is kept exactly. Symbolic links are never followed except for
    /// a branch root itself (the kernel follows it when mounting). Files are examined with lstat(2) and
    /// lgetxattr(2), directories read with opendir(3)/readdir(3).
    ///
    /// - Parameters:
    ///   - branches: the branch roots, top first (overlay: the upper directory, then the lower ones; data-only
    ///     layers are never part of the merged view and must not be given).
    ///   - format: the whiteout format of the branches.
    ///   - fuseOverlayfs: the branches are fuse-overlayfs's (whose mount table entry does not show them): its own
    ///     marks count too — a `.wh..wh..opq` file makes its directory opaque and is not listed, as does
    ///     `user.fuseoverlayfs.opaque`.
    /// - Returns: one entry per visible name, the root of the union excluded.
    /// - Throws: `UnionMountError.Code.invalidArgument` when there are no branches or a branch root is not a
    ///   directory; `UnionMountError.Code.systemCallFailed` when a branch root or a directory in a branch cannot
    ///   be read (`UnionMountError.input` names it).
    public static func entries(
        branches: [FilePath], format: WhiteoutFormat, fuseOverlayfs: Bool = false
    ) throws(UnionMountError) -> [MergedEntry] {
        guard !branches.isEmpty else {
            throw UnionMountError.invalidArgument("a merged view needs at least one branch", input: "branches")
        }
        var roots: [[UInt8]] = []
        for (index, branch) in branches.enumerated() {
            let info: FileStatus
            do {
                info = try FileSystem.status(branch, followingLinks: true)
            } catch {
                throw UnionMountError.systemCall(
                    "stat", error, message: "cannot read branch \(index) \(branch.readable)",
                    input: "branches[\(index)]")
            }
            guard info.type == .directory else {
                throw UnionMountError.invalidArgument(
                    "branch \(index) \(branch.readable) is not a directory", input: "branches[\(index)]")
            }
            var root = branch.bytes
            while root.count > 1 && root.last == UInt8(ascii: "/") { root.removeLast() }
            roots.append(root)
        }
        var walker = MergedViewWalker(roots: roots, branchPaths: branches, format: format)
        walker.fuseOverlayfs = fuseOverlayfs
        try walker.walk(directory: [], branches: Array(branches.indices))
        walker.found.sort { $0.key.lexicographicallyPrecedes($1.key) }
        return walker.found.map(\.entry)
    }
}

/// One pass over the branches; collects the visible entries, keyed by their path bytes.
struct MergedViewWalker {
    /// What one branch holds under one name of a directory being merged.
    private struct Candidate {
        var branch: Int
        /// nil for a whiteout.
        var type: MergedEntry.EntryType?
    }

    let roots: [[UInt8]]
    let branchPaths: [FilePath]
    let format: WhiteoutFormat
    /// Whether fuse-overlayfs's own marks count too (see ``MergedView/entries(branches:format:fuseOverlayfs:)``).
    var fuseOverlayfs = false
    var found: [(key: [UInt8], entry: MergedEntry)] = []

    private static let slash = UInt8(ascii: "/")
    private static let whiteoutPrefix = Array(".wh.".utf8)
    private static let opaqueMarker = Array(".wh..wh..opq".utf8)

    init(roots: [[UInt8]], branchPaths: [FilePath], format: WhiteoutFormat) {
        self.roots = roots
        self.branchPaths = branchPaths
        self.format = format
    }

    /// Merges the directory `relative` (empty: the root) of `branches` (top first, each holding it as a
    /// directory) and descends into every visible directory.
    mutating func walk(directory relative: [UInt8], branches: [Int]) throws(UnionMountError) {
        var candidates: [[UInt8]: [Candidate]] = [:]
        for branch in branches {
            let directory = path(branch, relative)
            // overlay reads xattr whiteouts only in a directory marked `opaque=x` (which is not opaque).
            let xattrWhiteouts = xattr(directory, "overlay.opaque") == [UInt8(ascii: "x")]
            for name in try names(in: directory) {
                guard let (visibleName, candidate) = classify(name, in: directory, branch: branch, xattrWhiteouts)
                else { continue }
                var list = candidates[visibleName, default: []]
                // aufs looks for the whiteout before the name itself: within one branch the whiteout wins.
                if candidate.type == nil, let last = list.last, last.branch == branch {
                    list.insert(candidate, at: list.count - 1)
                } else {
                    list.append(candidate)
                }
                candidates[visibleName] = list
            }
        }
        for (name, list) in candidates {
            guard let top = list.first, let type = top.type else { continue }
            let child = relative.isEmpty ? name : relative + [Self.slash] + name
            let entry = MergedEntry(
                path: FilePath(bytes: child), type: type, branch: top.branch, branchPath: branchPaths[top.branch])
            found.append((child, entry))
            guard type == .directory else { continue }
            var merged = [top.branch]
            if !isOpaque(path(top.branch, child)) {
                for candidate in list.dropFirst() {
                    guard candidate.type == .directory else { break }
                    merged.append(candidate.branch)
                    if isOpaque(path(candidate.branch, child)) { break }
                }
            }
            try walk(directory: child, branches: merged)
        }
    }

    /// The name `name` in `directory` stands for in the merged view, and what it is there: nil for aufs
    /// bookkeeping names and for names that vanished while being read.
    private func classify(_ name: [UInt8], in directory: [UInt8], branch: Int, _ xattrWhiteouts: Bool)
        -> ([UInt8], Candidate)?
    {
        if case .aufs = format, name.starts(with: Self.whiteoutPrefix) {
            let target = Array(name.dropFirst(Self.whiteoutPrefix.count))
            // `.wh..wh.*` is aufs' own (opaque marker, whiteout base, plink and orphan dirs); never a whiteout.
            guard !target.isEmpty, !target.starts(with: Self.whiteoutPrefix) else { return nil }
            return (target, Candidate(branch: branch, type: nil))
        }
        let full = Self.join(directory, name)
        guard let info = try? FileSystem.status(FilePath(bytes: full)) else { return nil }
        let type: MergedEntry.EntryType
        switch info.type {
        case .regular: type = .file
        case .directory: type = .directory
        case .symbolicLink: type = .symlink
        default: type = .other
        }
        if case .overlay = format {
            if fuseOverlayfs && name == Self.opaqueMarker { return nil }
            if info.isWhiteoutDevice {
                return (name, Candidate(branch: branch, type: nil))
            }
            if xattrWhiteouts, type == .file, info.size == 0, xattr(full, "overlay.whiteout") != nil {
                return (name, Candidate(branch: branch, type: nil))
            }
        }
        return (name, Candidate(branch: branch, type: type))
    }

    /// Whether the directory at `directory` (an absolute path's bytes) hides the same directory below it.
    private func isOpaque(_ directory: [UInt8]) -> Bool {
        switch format {
        case .overlay:
            if xattr(directory, "overlay.opaque") == [UInt8(ascii: "y")] { return true }
            guard fuseOverlayfs else { return false }
            return Self.exists(Self.join(directory, Self.opaqueMarker))
                || rawXattr(directory, "user.fuseoverlayfs.opaque") == [UInt8(ascii: "y")]
        case .aufs:
            return Self.exists(Self.join(directory, Self.opaqueMarker))
        }
    }

    /// The value of the overlay xattr `<prefix><name>` of `path` (not following a symlink), nil when it has none
    /// or it cannot be read.
    private func xattr(_ path: [UInt8], _ name: String) -> [UInt8]? {
        guard case .overlay(let prefix) = format else { return nil }
        return rawXattr(path, prefix + name)
    }

    /// The value of the xattr `name` of `path` (not following a symlink), nil when it has none.
    private func rawXattr(_ path: [UInt8], _ name: String) -> [UInt8]? {
        (try? FileSystem.extendedAttribute(FilePath(bytes: path), name)) ?? nil
    }

    /// The names in a directory, `.` and `..` excluded.
    private func names(in directory: [UInt8]) throws(UnionMountError) -> [[UInt8]] {
        let path = FilePath(bytes: directory)
        let stream: DirectoryStream
        do {
            stream = try DirectoryStream(path)
        } catch {
            throw UnionMountError.systemCall(
                "opendir", error, message: "cannot read directory \(directory.readable)", input: directory.readable)
        }
        do {
            return try stream.names()
        } catch {
            throw UnionMountError.systemCall(
                "readdir", error, message: "cannot read directory \(directory.readable)", input: directory.readable)
        }
    }

    /// `relative` below the root of `branch`.
    private func path(_ branch: Int, _ relative: [UInt8]) -> [UInt8] {
        relative.isEmpty ? roots[branch] : Self.join(roots[branch], relative)
    }

    /// `directory/name`, with one slash also when `directory` is `/`.
    private static func join(_ directory: [UInt8], _ name: [UInt8]) -> [UInt8] {
        directory.last == slash ? directory + name : directory + [slash] + name
    }

    /// Whether anything is at the absolute path `bytes` (lstat(2)).
    private static func exists(_ bytes: [UInt8]) -> Bool {
        FileSystem.exists(FilePath(bytes: bytes))
    }
}
