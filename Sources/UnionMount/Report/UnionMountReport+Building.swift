import SystemPackage

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
    /// **Real paths for relative names** — a mount made by ``MountStrategy/legacyRelative`` or
    /// ``MountStrategy/legacyDescriptors`` shows its branches as the kernel was given them (`lowerdir=0:1:…` or
    /// paths relative to the layers' common directory). The report shows the real absolute paths instead, from the
    /// mount record UnionMount wrote for that mount id after mounting (`/run/unionmount/mounts/<id>` as root,
    /// `$XDG_RUNTIME_DIR/unionmount/mounts/<id>` otherwise), used only when its device, mount point and branch names
    /// match the entry; a missing, malformed or mismatched record leaves the names as shown (a stale one is removed).
    ///
    /// **Idmapped layers** — a mount of ``OverlaySpec/idMapping`` layers shows them as the trees overlay was given
    /// (`/` for each detached tree, vanished attachment points otherwise); its mount record gives the real paths and
    /// ``BranchState/idMapping`` of every lower and data-only branch (the upper one is never idmapped). A union
    /// UnionMount did not make whose layers sit on idmapped mounts the table lists (containerd attaches one
    /// idmapped mount of the layers' common parent) gets ``BranchState/isIDMapped`` from each layer's own mount:
    /// statmount(2) `MOUNT_ATTR_IDMAP` with the maps where the kernel gives them (`STATMOUNT_MNT_UIDMAP`, 6.15+),
    /// else mountinfo's `idmapped` flag (one statx(2) per layer, one lookup per mount).
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
    /// mount time): true when it is a directory now. A relative path that no record resolves is never resolved
    /// (the kernel resolved it against the mounter's working directory, which is not known here), so its `exists`
    /// is false.
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
            let (resolved, idMapping) = MountRecords.resolveWithMapping(layout, of: entry)
            self = Self.overlayReport(entry, layout: resolved, idMapping: idMapping, directories: directories)
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
        _ entry: MountEntry, layout: OverlayLayout, idMapping: IDMapping?, directories: DirectoryProbe?
    ) -> UnionMountReport {
        var branches: [BranchState] = []
        branches.reserveCapacity(
            (layout.upperDirectory == nil ? 0 : 1) + layout.lowerDirectories.count + layout.dataDirectories.count)
        // A report made alone gets a probe of its own: the layers of one union share their mounts.
        let probe = directories ?? DirectoryProbe()
        let recorded = idMapping.map { LayerMountProbe.Answer(idmapped: true, mapping: $0) }
        func add(_ path: FilePath, _ role: BranchState.Role, _ permission: AufsBranch.Permission) {
            // The upper layer is never idmapped; a lower one is as its mount record says, or as its own mount does.
            let mount =
                role == .upper || layout.driver != .overlay
                ? LayerMountProbe.Answer.plain : recorded ?? probe.layerMounts.answer(for: path)
            branches.append(
                BranchState(
                    index: branches.count, path: path, role: role, permission: permission,
                    exists: probe.isDirectory(path), isIDMapped: mount.idmapped, idMapping: mount.mapping))
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
            for option in entry.superOptions {
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
        for option in entry.superOptions.bytes {
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

/// Whether branch paths are directories, each distinct path stat(2)ed once: one probe serves one listing, so a
/// layer stacked under many mounts (an image layer shared by many containers) costs one lookup, not one per
/// mount. Not for sharing across listings: a cached answer is as old as the listing.
final class DirectoryProbe {
    private var known: [PathKey: Bool] = [:]
    /// The idmapped state of the mounts layers live on (``LayerMountProbe``).
    let layerMounts = LayerMountProbe()

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

enum UnionMountInspection {
    /// Whether `path` is absolute and stat(2) (following symlinks) finds a directory there.
    static func isDirectory(_ path: FilePath) -> Bool {
        guard path.isAbsolute else { return false }
        return FileSystem.isDirectory(path, followingLinks: true)
    }
}
