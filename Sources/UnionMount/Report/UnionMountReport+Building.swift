import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    #error("UnionMount supports Linux only")
#endif

extension UnionMountReport {
    /// The report of one mount table entry (a line of `/proc/self/mountinfo` or `/proc/mounts`), with the aufs
    /// branches read from `/sys/fs/aufs/si_<id>/` through `aufsSysfs`; nil unless the filesystem type is
    /// `overlay`, `fuse.fuse-overlayfs` or `aufs`.
    ///
    /// **overlay, fuse-overlayfs** — from ``MountEntry/overlayLayout``: the upper layer first (index 0, role
    /// `upper`, permission `rw`) when there is one, then the lower layers (`lower`, `ro`) and the data-only
    /// layers (`data`, `ro`), top first; ``workdir`` is `workdir=`. The kernel does not show fuse-overlayfs'
    /// layers in mountinfo, so such an entry has no branches (only an fstab-shaped file names them).
    ///
    /// **aufs** — the superblock id from `si=` in the superblock options, the branches, their ids and the xino
    /// path from ``AufsSysfs/branches(si:)``. When sysfs lists no branches (`br0` missing: a `brs=0` host, a
    /// kernel without sysfs, sysfs not mounted here), the `br:` list that such hosts append to the mount options
    /// is used (``AufsSysfs/branches(inMountOptionsOf:)``); those branches have no ids, and the xino path is
    /// then taken from a `xino=` option if one is shown. When neither names branches, the list is empty.
    /// A `rw` branch has role `upper`, any other `lower`.
    ///
    /// ``options`` holds every superblock option that is neither a branch nor `ro`/`rw`, in mount-table order:
    /// for overlay this is ``OverlayLayout/otherOptions`` *and* ``OverlayLayout/kernelAddedOptions`` (such as
    /// `uuid=on`, `redirect_dir=nofollow`, FUSE's `user_id=`), because a report describes the mount as it is,
    /// not the intent of whoever mounted it (the layout tells the two apart); for aufs, everything except
    /// `si=` and the `br:` list. For an entry from `/proc/mounts`, the generic flags that file merges in
    /// (`nosuid`, `relatime`, …) are left out too.
    ///
    /// ``BranchState/exists`` is stat(2) of the path's bytes (symlinks followed, as the kernel followed them at
    /// mount time): true when it is a directory now. A relative path is never resolved (the kernel resolved it
    /// against the mounter's working directory, which is not known here), so its `exists` is false.
    ///
    /// - Throws: ``UnionMountError/Code/malformedInput`` for an aufs entry without a valid `si=` (it must be
    ///   1 to 16 lowercase hexadecimal digits; anything else, such as `../../etc`, is refused) or with sysfs
    ///   files or a `br:` list that do not parse; ``UnionMountError/Code/busy`` or
    ///   ``UnionMountError/Code/systemCallFailed`` when sysfs cannot be read.
    public init?(entry: MountEntry, aufsSysfs: AufsSysfs = AufsSysfs()) throws(UnionMountError) {
        try self.init(entry: entry, aufsSysfs: aufsSysfs, directories: nil)
    }

    /// The report of one entry, with ``BranchState/exists`` answered through `directories` when given (a caller
    /// building many reports shares one between them: container hosts stack the same image layers many times),
    /// else by a stat(2) per branch.
    init?(entry: MountEntry, aufsSysfs: AufsSysfs, directories: DirectoryProbe?) throws(UnionMountError) {
        guard let kind = UnionFilesystemKind(entry) else { return nil }
        switch kind {
        case .overlay, .fuseOverlayfs:
            guard let layout = entry.overlayLayout else { return nil }
            self = Self.overlayReport(entry, layout: layout, directories: directories)
        case .aufs:
            self = try Self.aufsReport(entry, sysfs: aufsSysfs, directories: directories)
        }
    }

    private static func common(
        _ entry: MountEntry, branches: [BranchState], workdir: FilePath?, options: [String], aufs: Aufs?
    ) -> UnionMountReport {
        UnionMountReport(
            mountID: entry.mountID, parentID: entry.parentID, mountPoint: entry.mountPoint,
            fsType: entry.filesystemType, source: entry.source, readOnly: entry.isReadOnly, branches: branches,
            workdir: workdir, options: options, aufs: aufs)
    }

    private static func overlayReport(
        _ entry: MountEntry, layout: OverlayLayout, directories: DirectoryProbe?
    ) -> UnionMountReport {
        var branches: [BranchState] = []
        branches.reserveCapacity(
            (layout.upperDirectory == nil ? 0 : 1) + layout.lowerDirectories.count + layout.dataDirectories.count)
        func add(_ path: FilePath, _ role: BranchState.Role, _ permission: AufsBranch.Permission) {
            branches.append(
                BranchState(
                    index: branches.count, path: path, role: role, permission: permission,
                    exists: DirectoryProbe.isDirectory(path, using: directories)))
        }
        if let upper = layout.upperDirectory { add(upper, .upper, .readWrite) }
        for lower in layout.lowerDirectories { add(lower, .lower, .readOnly) }
        for data in layout.dataDirectories { add(data, .data, .readOnly) }

        // The layout's two option lists, merged back into the order of the mount table. Each list keeps that
        // order and equal options always land in the same list, so when one list is empty the other is the
        // answer as it stands (the common case: only kernel-added `uuid=on`, or only the user's options).
        let options: [String]
        if layout.kernelAddedOptions.isEmpty {
            options = layout.otherOptions
        } else if layout.otherOptions.isEmpty {
            options = layout.kernelAddedOptions
        } else {
            var remaining: [String: Int] = [:]
            for option in layout.otherOptions + layout.kernelAddedOptions { remaining[option, default: 0] += 1 }
            var merged: [String] = []
            for option in entry.superOptionStrings {
                guard let count = remaining[option], count > 0 else { continue }
                remaining[option] = count - 1
                merged.append(option)
            }
            options = merged
        }
        return common(entry, branches: branches, workdir: layout.workDirectory, options: options, aufs: nil)
    }

    private static func aufsReport(
        _ entry: MountEntry, sysfs: AufsSysfs, directories: DirectoryProbe?
    ) throws(UnionMountError) -> UnionMountReport {
        let fromProcMounts = entry.origin == .mounts
        var si: String?
        var xinoOption: FilePath?
        var options: [String] = []
        for option in entry.superOptions {
            // aufs prints the `br:` list last (brs=0 hosts only); everything from there on is branches.
            if option.starts(with: "br:".utf8) || option.starts(with: "br=".utf8) { break }
            if option.starts(with: "si=".utf8) {
                if si == nil { si = String(decoding: option.dropFirst(3), as: UTF8.self) }
                continue
            }
            if option.elementsEqual("ro".utf8) || option.elementsEqual("rw".utf8) { continue }
            if fromProcMounts && OverlayDecoder.genericFlags.contains(option) { continue }
            if option.starts(with: "xino=".utf8), option.count > 5, !option.contains(0) {
                xinoOption = FilePath(bytes: option.dropFirst(5))
            }
            options.append(option.readable)
        }
        guard let si else {
            throw UnionMountError.malformed(
                "the aufs mount at \(entry.mountPoint.readable) shows no si= option", input: entry.description)
        }
        var (branches, xinoPath) = try sysfs.branches(si: si)
        if branches.isEmpty {
            branches = try AufsSysfs.branches(inMountOptionsOf: entry)
            xinoPath = xinoPath ?? xinoOption
        }
        let states = branches.map { branch in
            BranchState(
                index: branch.index, path: branch.path, role: branch.permission == .readWrite ? .upper : .lower,
                permission: branch.permission, attributes: branch.attributes, id: branch.id,
                exists: DirectoryProbe.isDirectory(branch.path, using: directories))
        }
        return common(
            entry, branches: states, workdir: nil, options: options, aufs: Aufs(si: si, xinoPath: xinoPath))
    }
}

/// The reports of the union mounts in a mount table.
public enum UnionMounts {
    /// The filesystem types a report describes: `overlay`, `fuse.fuse-overlayfs` and `aufs`.
    public static let unionTypes: Set<String> = Set(UnionFilesystemKind.allCases.map(\.rawValue))

    /// Reports every union mount in `mountinfo` (`/proc/self/mountinfo` by default), in file order, aufs
    /// branches read from `aufsSysfs` (`/sys/fs/aufs/si_<id>/` by default).
    ///
    /// Each entry's filesystem type is compared, as raw bytes, before anything else of it is decoded, so the
    /// other mounts cost only the parse of the table. For the default `/proc/self/mountinfo`, read by a thread
    /// that sees the process's mount namespace and root, the entries come from
    /// ``MountQueries/unionMounts(source:)`` with ``MountQueries/Source/automatic`` instead: the same entries in
    /// the same order (mount id order), fetched with statmount(2) when that is cheaper for the table at hand
    /// (few union mounts among many), else from the same file. A branch directory stacked in several mounts is
    /// looked up once per call.
    ///
    /// - Parameters:
    ///   - mountinfo: The mountinfo file to read.
    ///   - aufsSysfs: Where aufs' sysfs files are read.
    ///   - types: Only these filesystem types (a subset of ``unionTypes``); nil for all union types.
    /// - Returns: One report per union mount, stacked mounts included.
    /// - Throws: ``UnionMountError`` when the mount table cannot be read or parsed, or as
    ///   ``UnionMountReport/init(entry:aufsSysfs:)`` throws for one of the mounts.
    public static func list(
        mountinfo: FilePath = MountInfo.defaultPath, aufsSysfs: AufsSysfs = AufsSysfs(), types: Set<String>? = nil
    ) throws(UnionMountError) -> [UnionMountReport] {
        let entries: [MountEntry]
        if mountinfo == MountInfo.defaultPath && LiveTableView.isProcessView() {
            entries = try MountQueries.unionMounts(source: .automatic)
        } else {
            entries = try MountInfo.read(mountinfo)
        }
        var reports: [UnionMountReport] = []
        let directories = DirectoryProbe()
        for entry in entries {
            guard let kind = UnionFilesystemKind(entry), types?.contains(kind.rawValue) ?? true else { continue }
            if let report = try UnionMountReport(entry: entry, aufsSysfs: aufsSysfs, directories: directories) {
                reports.append(report)
            }
        }
        return reports
    }

    /// Reports the mount at exactly `mountPoint`, read from `mountinfo` (`/proc/self/mountinfo` by default),
    /// aufs branches from `aufsSysfs` (`/sys/fs/aufs/si_<id>/` by default).
    ///
    /// `mountPoint` is made absolute against the working directory and normalized lexically (`.` and `..`
    /// removed, symlinks *not* resolved, as the mount table shows mount points). Of several mounts stacked on
    /// that point, the topmost is taken: the one no other mount there has as its parent (the last in the file
    /// if that does not decide).
    ///
    /// - Returns: The report, or nil when nothing is mounted exactly there or the topmost mount there is not a
    ///   union filesystem.
    /// - Throws: As ``list(mountinfo:aufsSysfs:types:)`` does.
    public static func inspect(
        _ mountPoint: FilePath, mountinfo: FilePath = MountInfo.defaultPath, aufsSysfs: AufsSysfs = AufsSysfs()
    ) throws(UnionMountError) -> UnionMountReport? {
        let target = absolute(mountPoint).lexicallyNormalized()
        let stack = try MountInfo.read(mountinfo).filter { $0.mountPoint == target }
        let parents = Set(stack.map(\.parentID))
        guard let top = stack.last(where: { !parents.contains($0.mountID) }) ?? stack.last else { return nil }
        return try UnionMountReport(entry: top, aufsSysfs: aufsSysfs)
    }
}

/// The union filesystem types, recognized from the raw type field without decoding it (none of the names has
/// a byte the mount table escapes, so the raw bytes match exactly when the decoded ones would).
enum UnionFilesystemKind: String, CaseIterable {
    case overlay = "overlay"
    case fuseOverlayfs = "fuse.fuse-overlayfs"
    case aufs = "aufs"

    init?(_ entry: MountEntry) {
        let fields = entry.fields  // computed from the line each time: read once
        let kind: UnionFilesystemKind? = entry.storage.withField(fields.filesystemType, line: fields.lineStart) {
            type in
            if type.elementsEqual("overlay".utf8) { return .overlay }
            if type.elementsEqual("aufs".utf8) { return .aufs }
            if type.elementsEqual("fuse.fuse-overlayfs".utf8) { return .fuseOverlayfs }
            return nil
        }
        guard let kind else { return nil }
        self = kind
    }
}

/// Whether branch paths are directories, each distinct path stat(2)ed once: one probe serves one listing, so a
/// layer stacked under many mounts (an image layer shared by many containers) costs one lookup, not one per
/// mount. Not for sharing across listings: a cached answer is as old as the listing.
final class DirectoryProbe {
    private var known: [PathKey: Bool] = [:]

    /// ``UnionMountInspection/isDirectory(_:)``, remembered per path.
    func isDirectory(_ path: FilePath) -> Bool {
        let key = PathKey(path)
        if let answer = known[key] { return answer }
        let answer = UnionMountInspection.isDirectory(path)
        known[key] = answer
        return answer
    }

    /// `probe`'s answer, or a plain ``UnionMountInspection/isDirectory(_:)`` without one.
    static func isDirectory(_ path: FilePath, using probe: DirectoryProbe?) -> Bool {
        probe?.isDirectory(path) ?? UnionMountInspection.isDirectory(path)
    }
}

/// Whether the calling thread sees the live mount table that `/proc/self/mountinfo` shows: that file belongs to
/// the process (its main thread), while statmount(2) and listmount(2) answer for the calling thread, which may
/// have entered another mount namespace (setns, unshare) or root (chroot after unshare(CLONE_FS)).
enum LiveTableView {
    static func isProcessView() -> Bool {
        if isMainThread() { return true }
        func namespace(_ path: String) -> (UInt64, UInt64)? {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            return (UInt64(info.st_dev), UInt64(info.st_ino))
        }
        func root(_ path: String) -> (UInt64, UInt64)? {
            var info = CUnionMount_statx_result()
            guard CUnionMount_statx_mount(AT_FDCWD, path, 0, 1, &info) == 0 else { return nil }
            return (info.mount_id, info.ino)
        }
        guard let processNamespace = namespace("/proc/self/ns/mnt"),
            let threadNamespace = namespace("/proc/thread-self/ns/mnt"), processNamespace == threadNamespace,
            let processRoot = root("/proc/self/root"), let threadRoot = root("/proc/thread-self/root")
        else { return false }
        return processRoot == threadRoot
    }

    /// Whether the caller is the process's main thread: `/proc/thread-self` links to `<pid>/task/<pid>`.
    private static func isMainThread() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBufferPointer { target in
            target.baseAddress!.withMemoryRebound(to: CChar.self, capacity: target.count) {
                readlink("/proc/thread-self", $0, target.count)
            }
        }
        guard count > 0, count < buffer.count else { return false }
        let pid = String(getpid())
        return buffer[..<count].elementsEqual("\(pid)/task/\(pid)".utf8)
    }
}

enum UnionMountInspection {
    /// Whether `path` is absolute and stat(2) (following symlinks) finds a directory there.
    static func isDirectory(_ path: FilePath) -> Bool {
        guard path.isAbsolute else { return false }
        var info = stat()
        guard withPathCString(path, { stat($0, &info) }) == 0 else { return false }
        return info.st_mode & S_IFMT == S_IFDIR
    }
}
