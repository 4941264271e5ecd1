import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    #error("UnionMount supports Linux only")
#endif

/// The questions container runtimes ask of the mount table, answered from statmount(2)/listmount(2) where the
/// kernel has them (Linux 6.13+, see ``Statmount/describesMounts``) and from `/proc/self/mountinfo` otherwise.
///
/// Both sources give the same ``MountEntry`` for the same mount (``MountEntry/init(statmount:)`` rebuilds the
/// mountinfo line), so every answer, and every ``UnionMountReport`` built from it, is the same whichever source
/// served it. Each call is one snapshot of its own; the table can change between two calls.
///
/// How ``Source/automatic`` chooses, from measurements (``CostModel``): a statmount(2) of the superblock
/// numbers alone costs less per mount than mountinfo does per line; a statmount(2) of the mount point alone
/// costs about as much as a line (it runs `d_path`, as mountinfo does); a full one, turned into a
/// ``MountEntry``, costs two to four lines (it runs `show_options` and `d_path` too, plus a system call). So:
///
/// - one mount (``mount(containing:source:)``, ``mount(at:source:)``): statx(2) for the mount id, then one
///   statmount(2), about 10 µs whatever the number of mounts (mountinfo: 60 µs at 40 mounts, 3 ms at 1000);
/// - the whole table (``mounts(source:)``) and ``mounts(under:source:)``: mountinfo;
/// - union mounts (``unionMounts(source:)``): listmount(2), a statmount(2) of `STATMOUNT_SB_BASIC` per mount to
///   test the magic, then, for the `k` of `n` mounts that pass, one full statmount(2) each when
///   ``CostModel/prefersStatmount(candidates:total:)`` (`3k ≤ n`), else one read of mountinfo filtered by type.
///   At worst (every mount a union mount) this costs a third to a half more than mountinfo alone; with few
///   union mounts, about half as much (1000 tmpfs mounts: 1.5 ms against 2.5–3 ms).
public enum MountQueries {
    /// Where answers come from.
    public enum Source: Sendable, Hashable {
        /// statmount(2) where it describes mounts fully and is cheaper (see ``MountQueries``), else mountinfo.
        case automatic
        /// statmount(2)/listmount(2) only; ``UnionMountError/Code/unsupported`` on kernels before 6.13.
        case statmount
        /// `/proc/self/mountinfo` only.
        case mountinfo
    }

    /// The relative costs behind ``Source/automatic``.
    ///
    /// Measured on Linux 6.18 (a 2-core VM, release build, tables of 40 to 1000 tmpfs or overlay mounts), per
    /// mount: listmount(2) 0.04 µs; statmount(2) of `STATMOUNT_SB_BASIC` 1.1–1.5 µs; of `STATMOUNT_MNT_POINT`
    /// alone 2.7–3.6 µs; a full statmount(2) with ``Statmount/Request/mountEntry`` 3.5–6.5 µs, 5.2–9.2 µs with the
    /// ``MountEntry`` built; reading and parsing `/proc/self/mountinfo` 1.4–2.5 µs per tmpfs line and 2.9–3.3 µs
    /// per overlay line.
    public enum CostModel {
        /// A full statmount(2), turned into a ``MountEntry``, costs about this many mountinfo lines.
        public static let fullStatmountInLines = 3

        /// Whether fetching `candidates` mounts with a full statmount(2) each is cheaper than reading and parsing
        /// a mountinfo table of `total` lines: `candidates × fullStatmountInLines ≤ total`.
        public static func prefersStatmount(candidates: Int, total: Int) -> Bool {
            candidates * fullStatmountInLines <= total
        }
    }

    // MARK: Whole table

    /// Every mount of the caller's namespace that its root can reach, in mount id order.
    ///
    /// ``Source/automatic`` reads mountinfo: for the whole table it is cheaper than a full statmount(2) per mount.
    ///
    /// - Parameter source: Where to read.
    /// - Returns: The entries.
    /// - Throws: ``UnionMountError`` when the table cannot be read.
    ///
    /// The corresponding files and system calls are `/proc/self/mountinfo`, or `listmount(2)` and `statmount(2)`.
    public static func mounts(source: Source = .automatic) throws(UnionMountError) -> [MountEntry] {
        switch try resolve(source, statmountWhenAutomatic: false) {
        case .statmount:
            let reader = StatmountReader()
            return try reader.entries(Statmount.listMountIDs())
        default:
            return try MountInfo.read()
        }
    }

    // MARK: One mount

    /// The mount that holds `path`: the one a lookup of `path` ends in (symlinks followed), i.e. the topmost
    /// mount there.
    ///
    /// statx(2) gives the mount's unique id (`STATX_MNT_ID_UNIQUE`) and one statmount(2) its fields, so the time
    /// does not depend on the number of mounts. Without statmount(2), the mountinfo entry with statx(2)'s
    /// `STATX_MNT_ID` is taken; before Linux 5.8 (no mount id from statx), the entry whose mount point is the
    /// longest prefix, by components, of the canonical path (the last in the table among equals).
    ///
    /// - Parameters:
    ///   - path: Any file or directory.
    ///   - source: Where to read.
    /// - Returns: The mount's entry.
    /// - Throws: ``UnionMountError/Code/systemCallFailed`` when `path` cannot be looked up (statx(2)'s errno) or
    ///   the table cannot be read; ``UnionMountError/Code/notMounted`` if the mount vanished meanwhile.
    ///
    /// The corresponding system calls are `statx(2)` and `statmount(2)` (or `/proc/self/mountinfo`).
    public static func mount(containing path: FilePath, source: Source = .automatic) throws(UnionMountError)
        -> MountEntry
    {
        let useStatmount = try resolve(source, statmountWhenAutomatic: true) == .statmount
        let info = try statx(path, followSymlinks: true, unique: useStatmount)
        guard let entry = try mount(of: info, path: path, statmount: useStatmount) else {
            throw UnionMountError(
                code: .notMounted, message: "the mount holding \(path.readable) is not in the mount table",
                input: path.readable)
        }
        return entry
    }

    /// The mount whose root is `path`, the topmost when several are stacked there; nil when `path` is not a mount
    /// point or does not exist. A final symlink is not followed, as in ``isMountPoint(_:)`` and unmounting.
    ///
    /// - Parameters:
    ///   - path: A directory (or file, for a file bind mount).
    ///   - source: Where to read.
    /// - Returns: The entry, or nil.
    /// - Throws: As ``mount(containing:source:)``, except that a missing path is nil.
    ///
    /// The corresponding system calls are `statx(2)` (`STATX_ATTR_MOUNT_ROOT`) and `statmount(2)`.
    public static func mount(at path: FilePath, source: Source = .automatic) throws(UnionMountError) -> MountEntry? {
        let useStatmount = try resolve(source, statmountWhenAutomatic: true) == .statmount
        let info: CUnionMount_statx_result
        do {
            info = try statx(path, followSymlinks: false, unique: useStatmount)
        } catch  where error.errno == .noSuchFileOrDirectory || error.errno == .notDirectory {
            return nil
        }
        if info.attributes_mask & CUnionMount_STATX_ATTR_MOUNT_ROOT != 0 {
            guard info.attributes & CUnionMount_STATX_ATTR_MOUNT_ROOT != 0 else { return nil }
        } else if !UnionMount.isMountPoint(path) {
            return nil
        }
        return try mount(of: info, path: path, statmount: useStatmount)
    }

    /// Whether `path` is the root of a mount, from statx(2) alone (no mount table read); symlinks are not
    /// followed. The same as the free function ``UnionMount/isMountPoint(_:)``.
    ///
    /// The corresponding system call is `statx(2)` (`STATX_ATTR_MOUNT_ROOT`).
    public static func isMountPoint(_ path: FilePath) -> Bool { UnionMount.isMountPoint(path) }

    // MARK: Filtered lists

    /// Every mount whose mount point is `path` or below it, by components (`/a/b` is below `/a`, `/ab` is not), in
    /// mount id order; stacked and covered mounts included, as in mountinfo.
    ///
    /// `path` is resolved with realpath(3) when it exists (mount points are canonical in the table), else made
    /// absolute and normalized lexically.
    ///
    /// - Parameters:
    ///   - path: The directory.
    ///   - source: Where to read; ``Source/automatic`` reads mountinfo (a statmount(2) of the mount point alone
    ///     costs as much as a mountinfo line); ``Source/statmount`` asks each mount for its mount point only and
    ///     fetches the rest for those below `path`.
    /// - Returns: The entries.
    /// - Throws: ``UnionMountError`` when the table cannot be read.
    ///
    /// The corresponding system calls are `listmount(2)` and `statmount(2)` (or `/proc/self/mountinfo`).
    public static func mounts(under path: FilePath, source: Source = .automatic) throws(UnionMountError)
        -> [MountEntry]
    {
        let root = canonicalPath(path) ?? absolute(path).lexicallyNormalized()
        let rootBytes = root.bytes
        func below(_ mountPoint: [UInt8]) -> Bool {
            guard mountPoint.count >= rootBytes.count, mountPoint.starts(with: rootBytes) else { return false }
            return mountPoint.count == rootBytes.count || rootBytes.last == UInt8(ascii: "/")
                || mountPoint[rootBytes.count] == UInt8(ascii: "/")
        }
        return try filtered(
            source: source, statmountWhenAutomatic: false, request: .mountPoint,
            keep: { $0.mountPoint.map(below) ?? false }, keepEntry: { below($0.mountPointBytes) })
    }

    /// Every union mount (overlay, aufs, fuse-overlayfs), stacked and covered ones included, in mount id order.
    ///
    /// With statmount(2), each mount is first asked only for its superblock magic (`STATMOUNT_SB_BASIC`:
    /// overlay `0x794c7630`, aufs `0x61756673`, FUSE `0x65735546`); strings are fetched only for those that pass
    /// (and a FUSE mount is kept only when its subtype is `fuse-overlayfs`).
    ///
    /// - Parameter source: Where to read.
    /// - Returns: The entries.
    /// - Throws: ``UnionMountError`` when the table cannot be read.
    ///
    /// The corresponding system calls are `listmount(2)` and `statmount(2)` (or `/proc/self/mountinfo`).
    public static func unionMounts(source: Source = .automatic) throws(UnionMountError) -> [MountEntry] {
        let magics: Set<UInt64> = [Statmount.Magic.overlay, Statmount.Magic.aufs, Statmount.Magic.fuse]
        return try filtered(
            source: source, statmountWhenAutomatic: true, request: .superblockBasic,
            keep: { magics.contains($0.magic) }, keepEntry: { UnionFilesystemKind($0) != nil })
    }

    /// The report of every union mount, as ``unionMounts(source:)`` finds them.
    ///
    /// - Parameters:
    ///   - source: Where to read.
    ///   - aufsSysfs: Where aufs branches are read.
    /// - Returns: One report per union mount.
    /// - Throws: As ``unionMounts(source:)`` and ``UnionMountReport/init(entry:aufsSysfs:)``.
    ///
    /// The corresponding system calls are `listmount(2)` and `statmount(2)` (or `/proc/self/mountinfo`).
    public static func unionMountReports(
        source: Source = .automatic, aufsSysfs: AufsSysfs = AufsSysfs()
    ) throws(UnionMountError) -> [UnionMountReport] {
        var reports: [UnionMountReport] = []
        for entry in try unionMounts(source: source) {
            if let report = try UnionMountReport(entry: entry, aufsSysfs: aufsSysfs) { reports.append(report) }
        }
        return reports
    }

    /// The union mounts that use `directory` as a branch (upper, lower or data layer; a work directory is not a
    /// branch): "is this layer in use?".
    ///
    /// A branch matches when its path, normalized lexically, equals the canonical path of `directory`
    /// (realpath(3)), or its own canonical path does, or stat(2) finds the same device and inode at both (so a
    /// bind mount or another alias of the directory matches too). Relative branch paths (a mount made with
    /// relative layers) cannot be resolved from here and never match.
    ///
    /// - Parameters:
    ///   - directory: The directory; it need not exist any more (then only paths are compared).
    ///   - source: Where to read.
    ///   - aufsSysfs: Where aufs branches are read.
    /// - Returns: The reports of the mounts using it, in mount id order.
    /// - Throws: As ``unionMountReports(source:aufsSysfs:)``.
    ///
    /// The corresponding system calls are `listmount(2)`, `statmount(2)` (or `/proc/self/mountinfo`) and `stat(2)`.
    public static func unionMounts(
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
        return try unionMountReports(source: source, aufsSysfs: aufsSysfs).filter { report in
            report.branches.contains { matches($0.path) }
        }
    }

    // MARK: Implementation

    private enum Resolved { case statmount, mountinfo }

    /// The source a query uses: for ``Source/automatic``, statmount when the kernel describes mounts fully and
    /// `statmountWhenAutomatic`.
    private static func resolve(_ source: Source, statmountWhenAutomatic: Bool) throws(UnionMountError) -> Resolved {
        switch source {
        case .mountinfo:
            return .mountinfo
        case .statmount:
            guard Statmount.describesMounts else {
                throw UnionMountError(
                    code: .unsupported,
                    message: "statmount(2) on this kernel does not describe mounts fully (Linux 6.13+ needed)")
            }
            return .statmount
        case .automatic:
            return statmountWhenAutomatic && Statmount.describesMounts ? .statmount : .mountinfo
        }
    }

    /// The mounts that pass `keep` on a cheap statmount(2) of `request` (or `keepEntry` on mountinfo).
    private static func filtered(
        source: Source, statmountWhenAutomatic: Bool, request: Statmount.Request,
        keep: (Statmount.Record) -> Bool, keepEntry: (MountEntry) -> Bool
    ) throws(UnionMountError) -> [MountEntry] {
        guard try resolve(source, statmountWhenAutomatic: statmountWhenAutomatic) == .statmount else {
            return try MountInfo.read().filter(keepEntry)
        }
        let reader = StatmountReader()
        let ids = try Statmount.listMountIDs()
        var candidates: [UInt64] = []
        for id in ids {
            guard let record = try reader.record(id, request) else { continue }
            if keep(record) { candidates.append(id) }
        }
        if source == .automatic && !CostModel.prefersStatmount(candidates: candidates.count, total: ids.count) {
            return try MountInfo.read().filter(keepEntry)
        }
        // The full fetch also checks what the cheap pass could not see (a FUSE mount's subtype).
        return try reader.entries(candidates).filter(keepEntry)
    }

    /// The entry of the mount statx(2) named.
    private static func mount(
        of info: CUnionMount_statx_result, path: FilePath, statmount: Bool
    ) throws(UnionMountError) -> MountEntry? {
        let mask = UInt64(info.mask)
        if statmount && mask & CUnionMount_STATX_MNT_ID_UNIQUE != 0 {
            return try StatmountReader().entries([info.mount_id]).first
        }
        let table = try MountInfo.read()
        if mask & (CUnionMount_STATX_MNT_ID | CUnionMount_STATX_MNT_ID_UNIQUE) == CUnionMount_STATX_MNT_ID {
            return table.last { UInt64(clamping: $0.mountID) == info.mount_id }
        }
        // Linux before 5.8: the deepest mount point that is a prefix of the path.
        let resolved = canonicalPath(path) ?? absolute(path).lexicallyNormalized()
        var best: MountEntry?
        var bestDepth = -1
        for entry in table where resolved.starts(with: entry.mountPoint) {
            let depth = entry.mountPoint.components.count
            if depth >= bestDepth {
                best = entry
                bestDepth = depth
            }
        }
        return best
    }

    private static func statx(
        _ path: FilePath, followSymlinks: Bool, unique: Bool
    ) throws(UnionMountError) -> CUnionMount_statx_result {
        var info = CUnionMount_statx_result()
        let flags: CInt = followSymlinks ? 0 : 0x100  // AT_SYMLINK_NOFOLLOW
        guard withPathCString(path, { CUnionMount_statx_mount(AT_FDCWD, $0, flags, unique ? 1 : 0, &info) }) == 0
        else {
            throw UnionMountError.systemCall(
                "statx", system_errno(), message: "cannot look up \(path.readable)", input: path.readable)
        }
        return info
    }

    /// Device and inode of what `path` names (symlinks followed), or nil.
    private static func fileIdentity(_ path: FilePath) -> [UInt64]? {
        var info = stat()
        guard withPathCString(path, { stat($0, &info) }) == 0 else { return nil }
        return [UInt64(info.st_dev), UInt64(info.st_ino)]
    }
}

/// statmount(2) calls sharing one growing buffer, skipping mounts that vanish between listmount and statmount.
struct StatmountReader {
    let buffer = StatmountBuffer()

    /// The record of one mount, or nil when it is gone (`ENOENT`).
    func record(_ id: UInt64, _ request: Statmount.Request) throws(UnionMountError) -> Statmount.Record? {
        do {
            return try buffer.stat(mountID: id, request: request, namespace: 0)
        } catch  where error.errno == .noSuchFileOrDirectory {
            return nil
        }
    }

    /// The mountinfo-equivalent entries of the mounts, in order; gone or unreachable mounts are left out.
    func entries(_ ids: [UInt64]) throws(UnionMountError) -> [MountEntry] {
        var entries: [MountEntry] = []
        entries.reserveCapacity(ids.count)
        for id in ids {
            if let record = try record(id, .mountEntry), let entry = MountEntry(statmount: record) {
                entries.append(entry)
            }
        }
        return entries
    }
}
