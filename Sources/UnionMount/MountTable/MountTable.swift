import SystemPackage

/// The mount table: every way to read it, in one namespace. Every call here only reads; nothing mounts or
/// unmounts (that is ``Mounter``).
///
/// The live table is answered from statmount(2)/listmount(2) where the kernel has them (Linux 6.13+) and from
/// `/proc/self/mountinfo` otherwise; a captured or another process's table is read from its file
/// (``Source/file(_:format:)``). Both live sources give the same ``MountEntry`` for the same mount (the
/// statmount record is rebuilt into the mountinfo line), so every answer, and every ``UnionMountReport`` built
/// from it, is the same whichever source served it. Each call is one snapshot of its own; the table can change
/// between two calls.
///
/// How ``Source/automatic`` chooses (measured; see `Benchmarks/README.md`): a statmount(2) of the superblock
/// numbers alone costs less per mount than mountinfo does per line, a full one two to four lines. So one mount
/// (``entry(at:source:)``, ``entry(containing:source:)``) is statx(2) for the mount id and one statmount(2),
/// whatever the number of mounts; the whole table and ``entries(under:source:)`` are mountinfo; union mounts
/// (``unionMounts(source:)``) are listmount(2) plus a magic-only statmount(2) per mount, then a full statmount(2)
/// for the few that pass, or mountinfo filtered by type when most mounts pass. ``Source/automatic`` uses
/// statmount(2) only when the calling thread sees the process's mount namespace and root (the view
/// `/proc/self/mountinfo` shows).
public enum MountTable {
    /// Where answers come from. New sources may be added: switch with an `@unknown default`.
    public enum Source: Sendable, Hashable {
        /// The live table: statmount(2) where it describes mounts fully and is cheaper (see ``MountTable``), else
        /// `/proc/self/mountinfo`.
        case automatic
        /// The live table from statmount(2)/listmount(2) only; ``UnionMountError/Code/unsupported`` on kernels
        /// before 6.13.
        case statmount
        /// The live table from `/proc/self/mountinfo` only.
        case mountinfo
        /// A mount table file: a saved copy, another process's `/proc/<pid>/mountinfo`, `/proc/mounts` or an
        /// fstab-shaped file. Lookups by path compare paths lexically (the file may describe another namespace,
        /// so the path is not looked up here).
        case file(FilePath, format: Format = .mountinfo)
    }

    /// The two mount table formats.
    public enum Format: Sendable, Hashable {
        /// `/proc/<pid>/mountinfo` (proc(5); `fs/proc_namespace.c` `show_mountinfo`): see
        /// ``parse(_:format:malformedLines:inputName:)``.
        case mountinfo
        /// `/proc/mounts`, `/proc/<pid>/mounts` (`show_vfsmnt`) or an fstab-shaped file (fstab(5)): entries have
        /// ``MountEntry/Origin-swift.enum/mounts`` origin.
        case mounts
    }

    /// The mountinfo file of the calling process, which ``Source/mountinfo`` reads.
    public static let processMountinfo: FilePath = "/proc/self/mountinfo"

    // MARK: Parsing

    /// Parses the contents of a mount table file.
    ///
    /// The bytes are read as bytes, not text. mountinfo lines are split on `\n` with no length limit (a 300-layer
    /// overlay line is about 18 KB), fields on single spaces (so an empty source field, printed as two spaces,
    /// survives), the optional fields run up to the first field equal to `-` after field 6, and exactly three
    /// fields follow it; empty lines are ignored. A mountinfo line is malformed when it has fewer than 10 fields,
    /// no `-` separator, other than 3 fields after it, an ID or device number that is not a plain decimal number
    /// of its type (no sign, no overflow), or an empty root, mount point or filesystem type.
    ///
    /// A mounts line is `source mountPoint type [options [freq [passno]]]`, fields separated by runs of spaces and
    /// tabs; blank lines and `#` comments are skipped, a trailing `\r` is dropped, `freq` and `passno` must be
    /// decimal numbers when present. The kernel prints an empty source as an empty field, which blank-run
    /// splitting cannot see (libmount has the same limit); prefer mountinfo.
    ///
    /// `\ooo` escapes are decoded per field after splitting, and option fields are split on raw commas first
    /// (see ``MountEntry``).
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - format: Its format.
    ///   - malformedLines: What a malformed line does: throw (the default), or is left out (and reported).
    ///   - inputName: The file's name for error messages; by default the format's file name.
    /// - Returns: The entries, in file order.
    /// - Throws: ``UnionMountError/Code/malformedInput`` for the first malformed line, with
    ///   ``UnionMountError/line`` set, unless `malformedLines` skips.
    public static func parse(
        _ bytes: some Collection<UInt8>, format: Format = .mountinfo,
        malformedLines: MalformedLinePolicy = .throw, inputName: String? = nil
    ) throws(UnionMountError) -> [MountEntry] {
        try MountTableParser.run(
            contiguousArray(bytes), format: format, inputName: inputName ?? format.defaultInputName,
            policy: malformedLines)
    }

    // MARK: Whole table

    /// Every mount of the table, in mount id order for the live table (file order for a file).
    ///
    /// ``Source/automatic`` reads mountinfo: for the whole table it is cheaper than a full statmount(2) per mount.
    /// A file (and `/proc/self/mountinfo`) is read whole with read(2), one snapshot as far as the kernel allows.
    ///
    /// - Parameters:
    ///   - source: Where to read.
    ///   - malformedLines: What a malformed line of a mountinfo or mounts file does.
    /// - Returns: The entries.
    /// - Throws: ``UnionMountError/Code/systemCallFailed`` naming the file or system call that failed;
    ///   ``UnionMountError/Code/malformedInput`` as ``parse(_:format:malformedLines:inputName:)`` does.
    ///
    /// The corresponding files and system calls are `/proc/self/mountinfo` (or the given file), or
    /// `listmount(2)` and `statmount(2)`.
    public static func entries(
        source: Source = .automatic, malformedLines: MalformedLinePolicy = .throw
    ) throws(UnionMountError) -> [MountEntry] {
        switch try resolve(source, statmountWhenAutomatic: false) {
        case .statmount:
            return try StatmountReader().entries(Statmount.listMountIDs())
        case .liveMountinfo:
            return try read(processMountinfo, format: .mountinfo, malformedLines: malformedLines)
        case .file(let path, let format):
            return try read(path, format: format, malformedLines: malformedLines)
        }
    }

    // MARK: One mount

    /// The mount that holds `path`: the one a lookup of `path` ends in (symlinks followed), i.e. the topmost
    /// mount there.
    ///
    /// statx(2) gives the mount's unique id (`STATX_MNT_ID_UNIQUE`) and one statmount(2) its fields, so the time
    /// does not depend on the number of mounts. Without statmount(2), the mountinfo entry with statx(2)'s
    /// `STATX_MNT_ID` is taken; before Linux 5.8 (no mount id from statx), and for a ``Source/file(_:format:)``,
    /// the entry whose mount point is the longest prefix, by components, of the path (canonical when it exists
    /// here, else made absolute and normalized lexically; the last in the table among equals).
    ///
    /// - Parameters:
    ///   - path: Any file or directory.
    ///   - source: Where to read.
    /// - Returns: The mount's entry.
    /// - Throws: ``UnionMountError/Code/systemCallFailed`` when `path` cannot be looked up (statx(2)'s errno) or
    ///   the table cannot be read; ``UnionMountError/Code/notMounted`` if the mount vanished meanwhile (or no
    ///   entry of a file holds it).
    ///
    /// The corresponding system calls are `statx(2)` and `statmount(2)` (or `/proc/self/mountinfo`).
    public static func entry(containing path: FilePath, source: Source = .automatic) throws(UnionMountError)
        -> MountEntry
    {
        let found: MountEntry?
        switch try resolve(source, statmountWhenAutomatic: true) {
        case .file(let file, let format):
            found = try deepestHolder(of: path, in: read(file, format: format, malformedLines: .throw))
        case let resolved:
            let info = try mountIdentity(path, followSymlinks: true, unique: resolved == .statmount)
            found = try entry(of: info, path: path, statmount: resolved == .statmount)
        }
        guard let found else {
            throw UnionMountError(
                code: .notMounted, message: "the mount holding \(path.readable) is not in the mount table",
                input: path.readable)
        }
        return found
    }

    /// The mount whose root is `path`, the topmost when several are stacked there; nil when `path` is not a mount
    /// point or does not exist. A final symlink is not followed, as in ``isMountPoint(_:)`` and unmounting.
    ///
    /// For a ``Source/file(_:format:)``, `path` is made absolute and normalized lexically (symlinks *not*
    /// resolved, as the table shows mount points) and compared with each mount point; of several mounts there,
    /// the one no other mount there has as its parent is taken (the last in the file if that does not decide).
    ///
    /// - Parameters:
    ///   - path: A directory (or file, for a file bind mount).
    ///   - source: Where to read.
    /// - Returns: The entry, or nil.
    /// - Throws: As ``entry(containing:source:)``, except that a missing path is nil.
    ///
    /// The corresponding system calls are `statx(2)` (`STATX_ATTR_MOUNT_ROOT`) and `statmount(2)`.
    public static func entry(at path: FilePath, source: Source = .automatic) throws(UnionMountError) -> MountEntry? {
        let resolved = try resolve(source, statmountWhenAutomatic: true)
        if case .file(let file, let format) = resolved {
            return topmost(at: path, in: try read(file, format: format, malformedLines: .throw))
        }
        let info: MountIdentity
        do {
            info = try mountIdentity(path, followSymlinks: false, unique: resolved == .statmount)
        } catch  where error.errno == .noSuchFileOrDirectory || error.errno == .notDirectory {
            return nil
        }
        guard isMountRoot(info, path) else { return nil }
        return try entry(of: info, path: path, statmount: resolved == .statmount)
    }

    /// Whether `path` is the root of a mount, from statx(2) alone (no mount table read); symlinks are not
    /// followed. Before Linux 5.8 (no `STATX_ATTR_MOUNT_ROOT`), `path` is a mount root when its mount id or
    /// device differs from that of `path/..`.
    ///
    /// The corresponding system call is `statx(2)` (`STATX_ATTR_MOUNT_ROOT`).
    public static func isMountPoint(_ path: FilePath) -> Bool {
        guard let info = try? mountIdentity(path, followSymlinks: false, unique: false) else { return false }
        return isMountRoot(info, path)
    }

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
    public static func entries(under path: FilePath, source: Source = .automatic) throws(UnionMountError)
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

    // MARK: Implementation

    private enum Resolved: Equatable {
        case statmount
        /// `/proc/self/mountinfo`, looked up by statx(2)'s mount id: ``Source/mountinfo``, and
        /// ``Source/automatic`` where statmount(2) is not used (a kernel before 6.13, or a whole-table query).
        case liveMountinfo
        /// A file, looked up by path.
        case file(FilePath, Format)
    }

    /// The source a query uses: for ``Source/automatic``, statmount when the kernel describes mounts fully, the
    /// calling thread sees the process's view, and `statmountWhenAutomatic`; else the live mountinfo, looked up as
    /// ``Source/mountinfo`` is (so a kernel without statmount answers as ``Source/mountinfo`` does here). A thread
    /// in another mount namespace or root than the process's gets `/proc/self/mountinfo` looked up by path, as a
    /// file: statx(2)'s mount ids there are not the file's.
    private static func resolve(_ source: Source, statmountWhenAutomatic: Bool) throws(UnionMountError) -> Resolved {
        switch source {
        case .mountinfo:
            return .liveMountinfo
        case .file(let path, let format):
            return .file(path, format)
        case .statmount:
            guard Statmount.describesMounts else {
                throw UnionMountError(
                    code: .unsupported,
                    message: "statmount(2) on this kernel does not describe mounts fully (Linux 6.13+ needed)")
            }
            return .statmount
        case .automatic:
            // Whole-table reads are the same file either way; only lookups by mount id depend on the view.
            guard statmountWhenAutomatic else { return .liveMountinfo }
            guard LiveTableView.isProcessView() else { return .file(processMountinfo, .mountinfo) }
            return Statmount.describesMounts ? .statmount : .liveMountinfo
        }
    }

    /// A whole file, parsed.
    private static func read(
        _ path: FilePath, format: Format, malformedLines: MalformedLinePolicy
    ) throws(UnionMountError) -> [MountEntry] {
        try MountTableParser.run(
            try FileContents.readAll(path), format: format, inputName: path.readable, policy: malformedLines)
    }

    /// The mounts that pass `keep` on a cheap statmount(2) of `request` (or `keepEntry` on a file).
    private static func filtered(
        source: Source, statmountWhenAutomatic: Bool, request: Statmount.Request,
        keep: (Statmount.Record) -> Bool, keepEntry: (MountEntry) -> Bool
    ) throws(UnionMountError) -> [MountEntry] {
        let resolved = try resolve(source, statmountWhenAutomatic: statmountWhenAutomatic)
        guard resolved == .statmount else { return try entries(source: source).filter(keepEntry) }
        let reader = StatmountReader()
        let ids = try Statmount.listMountIDs()
        var candidates: [UInt64] = []
        for id in ids {
            guard let record = try reader.record(id, request) else { continue }
            if keep(record) { candidates.append(id) }
        }
        if source == .automatic && !StatmountCost.prefersStatmount(candidates: candidates.count, total: ids.count) {
            return try entries(source: .mountinfo).filter(keepEntry)
        }
        // The full fetch also checks what the cheap pass could not see (a FUSE mount's subtype).
        return try reader.entries(candidates).filter(keepEntry)
    }

    /// The entry of the mount statx(2) named.
    private static func entry(
        of info: MountIdentity, path: FilePath, statmount: Bool
    ) throws(UnionMountError) -> MountEntry? {
        if statmount && info.isUnique {
            return try StatmountReader().entries([info.mountID]).first
        }
        let table = try entries(source: .mountinfo)
        if info.hasMountID && !info.isUnique {
            return table.last { UInt64(clamping: $0.mountID) == info.mountID }
        }
        return deepestHolder(of: path, in: table)
    }

    /// The entry whose mount point is the longest prefix, by components, of `path` (canonical when it exists
    /// here); the last in the table among equals.
    private static func deepestHolder(of path: FilePath, in table: [MountEntry]) -> MountEntry? {
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

    /// The topmost entry mounted exactly at `path` (made absolute, normalized lexically): the one no other mount
    /// there has as its parent, else the last in the table.
    private static func topmost(at path: FilePath, in table: [MountEntry]) -> MountEntry? {
        let target = absolute(path).lexicallyNormalized()
        let stack = table.filter { $0.mountPoint == target }
        let parents = Set(stack.map(\.parentID))
        return stack.last(where: { !parents.contains($0.mountID) }) ?? stack.last
    }

    /// Whether statx(2)'s answer for `path` is the root of a mount: `STATX_ATTR_MOUNT_ROOT` where the kernel
    /// reports it (5.8+), else a different mount id or device than `path/..`'s.
    private static func isMountRoot(_ info: MountIdentity, _ path: FilePath) -> Bool {
        if let isMountRoot = info.isMountRoot { return isMountRoot }
        guard let parent = try? mountIdentity(path.appending(".."), followSymlinks: true, unique: false) else {
            return false
        }
        return parent.mountID != info.mountID || parent.device != info.device
    }

    /// statx(2) of `path` for its mount facts, failing with the path named.
    private static func mountIdentity(
        _ path: FilePath, followSymlinks: Bool, unique: Bool
    ) throws(UnionMountError) -> MountIdentity {
        do {
            return try FileSystem.mountIdentity(path, followingLinks: followSymlinks, unique: unique)
        } catch {
            throw UnionMountError.systemCall(
                "statx", error, message: "cannot look up \(path.readable)", input: path.readable)
        }
    }
}

extension MountTable.Format {
    /// The file name errors give bytes parsed without a name.
    var defaultInputName: String {
        switch self {
        case .mountinfo: "mountinfo"
        case .mounts: "mounts"
        }
    }
}

/// The relative costs behind ``MountTable/Source/automatic``, measured on Linux 6.18 (a 2-core VM, release build,
/// tables of 40 to 1000 tmpfs or overlay mounts); the figures are in `Benchmarks/README.md`.
enum StatmountCost {
    /// A full statmount(2), turned into a ``MountEntry``, costs about this many mountinfo lines.
    static let fullStatmountInLines = 3

    /// Whether fetching `candidates` mounts with a full statmount(2) each is cheaper than reading and parsing a
    /// mountinfo table of `total` lines: `candidates × fullStatmountInLines ≤ total`.
    static func prefersStatmount(candidates: Int, total: Int) -> Bool {
        candidates * fullStatmountInLines <= total
    }
}

/// The bytes of any collection as an array, copied at most once.
private func contiguousArray(_ bytes: some Collection<UInt8>) -> [UInt8] {
    if let array = bytes as? [UInt8] { return array }
    if let copy = bytes.withContiguousStorageIfAvailable({ Array($0) }) { return copy }
    return Array(bytes)
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
