import SystemPackage

extension MountTable {
    /// The filesystem types a ``UnionMountReport`` describes: `overlay`, `fuse.fuse-overlayfs` and `aufs`.
    public static let unionFilesystemTypes: Set<String> = Set(UnionFilesystemKind.allCases.map(\.rawValue))

    /// The report of every union mount, as ``unionMounts(source:)`` finds them (stacked and covered mounts
    /// included, in mount id order for the live table, file order for a file), aufs branches read from
    /// `aufsSysfs` (`/sys/fs/aufs/si_<id>/` by default).
    ///
    /// Each entry's filesystem type is compared, as raw bytes, before anything else of it is decoded, so the
    /// other mounts cost only the parse of the table. A branch directory stacked in several mounts is looked up
    /// once per call.
    ///
    /// - Parameters:
    ///   - source: Where to read.
    ///   - aufsSysfs: Where aufs' sysfs files are read.
    ///   - types: Only these filesystem types (a subset of ``unionFilesystemTypes``); nil for all.
    /// - Returns: One report per union mount.
    /// - Throws: As ``unionMounts(source:)`` and ``UnionMountReport/init(entry:aufsSysfs:)``.
    ///
    /// The corresponding system calls are `listmount(2)` and `statmount(2)` (or `/proc/self/mountinfo`), and
    /// `stat(2)` per distinct branch.
    public static func reports(
        source: Source = .automatic, aufsSysfs: AufsSysfs = AufsSysfs(), types: Set<String>? = nil
    ) throws(UnionMountError) -> [UnionMountReport] {
        var reports: [UnionMountReport] = []
        let directories = DirectoryProbe()
        for entry in try unionMounts(source: source) {
            guard let kind = UnionFilesystemKind(entry), types?.contains(kind.rawValue) ?? true else { continue }
            if let report = try UnionMountReport(entry: entry, aufsSysfs: aufsSysfs, directories: directories) {
                reports.append(report)
            }
        }
        return reports
    }

    /// The report of the mount at exactly `path` (the topmost there, as ``entry(at:source:)`` finds it).
    ///
    /// - Parameters:
    ///   - path: The mount point.
    ///   - source: Where to read.
    ///   - aufsSysfs: Where aufs' sysfs files are read.
    /// - Returns: The report, or nil when nothing is mounted there or the topmost mount there is not a union
    ///   filesystem.
    /// - Throws: As ``entry(at:source:)`` and ``UnionMountReport/init(entry:aufsSysfs:)``.
    ///
    /// The corresponding system calls are `statx(2)` and `statmount(2)` (or the mountinfo file).
    public static func report(
        at path: FilePath, source: Source = .automatic, aufsSysfs: AufsSysfs = AufsSysfs()
    ) throws(UnionMountError) -> UnionMountReport? {
        guard let entry = try entry(at: path, source: source) else { return nil }
        return try UnionMountReport(entry: entry, aufsSysfs: aufsSysfs)
    }

    /// The reports of the union mounts that use `directory` as a branch (upper, lower or data layer; a work
    /// directory is not a branch): "is this layer in use?".
    ///
    /// A branch matches when its path, normalized lexically, equals the canonical path of `directory`
    /// (realpath(3)), or its own canonical path does, or stat(2) finds the same device and inode at both (so a
    /// bind mount or another alias of the directory matches too). Relative branch paths are matched by the real
    /// paths of their mount record (mount-relative and mount-fd mounts made by UnionMount); without one they
    /// cannot be resolved from here and never match.
    ///
    /// - Parameters:
    ///   - directory: The directory; it need not exist any more (then only paths are compared).
    ///   - source: Where to read.
    ///   - aufsSysfs: Where aufs branches are read.
    /// - Returns: The reports of the mounts using it, in the order of ``reports(source:aufsSysfs:types:)``.
    /// - Throws: As ``reports(source:aufsSysfs:types:)``.
    ///
    /// The corresponding system calls are `listmount(2)`, `statmount(2)` (or `/proc/self/mountinfo`) and `stat(2)`.
    public static func reports(
        usingBranch directory: FilePath, source: Source = .automatic, aufsSysfs: AufsSysfs = AufsSysfs()
    ) throws(UnionMountError) -> [UnionMountReport] {
        let lexical = absolute(directory).lexicallyNormalized()
        let canonical = canonicalPath(directory) ?? lexical
        let identity = fileIdentity(canonical)
        func matches(_ branch: FilePath) -> Bool {
            guard branch.isAbsolute else { return false }
            let normalized = branch.lexicallyNormalized()
            if normalized == canonical || normalized == lexical { return true }
            if let resolved = canonicalPath(branch), resolved == canonical { return true }
            if let identity, let other = fileIdentity(branch) { return identity == other }
            return false
        }
        return try reports(source: source, aufsSysfs: aufsSysfs).filter { report in
            report.branches.contains { matches($0.path) }
        }
    }

    /// Device and inode of what `path` names (symlinks followed), or nil.
    private static func fileIdentity(_ path: FilePath) -> [UInt64]? {
        guard let info = try? FileSystem.status(path, followingLinks: true) else { return nil }
        return [info.device, info.inode]
    }
}
