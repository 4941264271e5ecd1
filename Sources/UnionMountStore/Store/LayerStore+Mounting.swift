import SystemPackage
import UnionMount

extension LayerStore {
    /// Mounts the container `id` and returns its root filesystem (its `merged` directory), or, when it is
    /// mounted already, takes one more reference to that mount.
    ///
    /// The union is the container's writable layer over its init layer and image chain, mounted with the
    /// store's backend through `Mounter` (so chains of up to 500 layers work: by the new mount API where the
    /// kernel has `lowerdir+`, by mount(2) naming the layers by descriptor number, `mount-fd`, where it does not;
    /// the mount table's reports then show the layers' real paths through the mount record `Mounter` writes). overlay mounts get `index=off,metacopy=off,redirect_dir=nofollow` (plus `userxattr` for the
    /// rootless backend), so the writable layer stays a plain layer whose changes can be listed and exported.
    ///
    /// The mount is bracketed by the container's `mounts` record (`StoreMountState`): if the process dies
    /// between the mount(2) and the new count, the next open unmounts again, so a count never lags the mount table.
    ///
    /// - Throws: `UnionMountError.Code.notFound`; the mounter's errors (with the plan and the kernel's words).
    @discardableResult
    public func mount(container id: String) throws(UnionMountError) -> FilePath {
        try locked { () throws(UnionMountError) -> FilePath in
            let entry = try containerRecord(id)
            var mounts = try StoreMountRecordFile(entry.paths.mounts)
            let merged = entry.container.mergedDirectory
            // A mount the store left uncounted (a killed process's) is counted rather than stacked on; only a record
            // that is damaged, counted or pending can have one, so a clean count of 0 skips the statx(2) (1.4 µs of a
            // 1-layer cycle, Benchmarks/README.md).
            if !mounts.isCleanlyUnmounted && MountTable.isMountPoint(merged) {
                try mounts.write(StoreMountState(count: mounts.count + 1))
                return merged
            }
            try mounts.write(StoreMountState(count: 0, pending: .mount))
            StoreFaultInjection.point("mount.pending")
            try mountUnion(entry.container, lowers: entry.lowers)
            StoreFaultInjection.point("mount.mounted")
            try mounts.write(StoreMountState(count: 1))
            StoreFaultInjection.point("mount.counted")
            return merged
        }
    }

    /// Drops one reference to the container's mount; the last one unmounts it (umount2(2), retried on `EBUSY`).
    ///
    /// - Parameters:
    ///   - id: the container's id.
    ///   - lazy: detach the mount even when it stays busy (`MNT_DETACH`) instead of failing.
    /// - Returns: whether the mount was unmounted (false: other references remain).
    /// - Throws: `UnionMountError.Code.notMounted` when the store holds no reference;
    ///   `UnionMountError.Code.busy` when the mount stays busy (the reference is kept).
    @discardableResult
    public func unmount(container id: String, lazy: Bool = false) throws(UnionMountError) -> Bool {
        try locked { () throws(UnionMountError) -> Bool in
            // Dropping a reference needs only the `mounts` record and the mount point, whose paths follow from
            // the id: `container.conf` is not read (it exists whenever `mounts` does; see `containerPaths`).
            try StoreIdentifier.validate(id, input: "container id")
            let paths = containerPaths(id)
            var mounts = try StoreMountRecordFile(paths.mounts)
            if !mounts.exists { _ = try containerRecord(id) }  // notFound, unless only the mount record is gone
            let count = mounts.count
            func notMounted() throws(UnionMountError) -> UnionMountError {
                if count > 0 { try mounts.write(StoreMountState(count: 0)) }
                return UnionMountError(code: .notMounted, message: "the container \(id) is not mounted", input: id)
            }
            guard count > 0 else { throw try notMounted() }
            if count > 1 {
                guard MountTable.isMountPoint(paths.merged) else { throw try notMounted() }
                try mounts.write(StoreMountState(count: count - 1))
                return false
            }
            // The last reference: umount2(2) first, then the count. A process killed between the two leaves
            // count 1 on an unmounted container, which the next open resets to 0 (the unmount is finished, as a
            // `pending=unmount` record made it before, one pwrite(2) more); an unmount that fails (busy) leaves the
            // count as it was.
            guard try unmountUnion(at: paths.merged, lazy: lazy) != .notMounted else { throw try notMounted() }
            StoreFaultInjection.point("unmount.unmounted")
            try mounts.write(StoreMountState(count: 0))
            StoreFaultInjection.point("unmount.counted")
            return true
        }
    }

    /// The spec ``mount(container:)`` mounts for the container: its writable layer over its chain, with the
    /// backend's options (reads the container's and layers' records).
    public func unionSpec(container id: String) throws(UnionMountError) -> UnionSpec {
        let entry = try containerRecord(id)
        return unionSpec(entry.container, lowers: entry.lowers)
    }

    // MARK: Implementation

    /// The container `id`'s record (see ``readContainerRecord(_:)``).
    ///
    /// - Throws: `UnionMountError.Code.invalidArgument` for a bad id, `UnionMountError.Code.notFound`.
    private func containerRecord(_ id: String) throws(UnionMountError) -> ContainerRecordCache.Entry {
        try StoreIdentifier.validate(id, input: "container id")
        guard let entry = try readContainerRecord(id) else {
            throw UnionMountError(code: .notFound, message: "the store has no container \(id)", input: id)
        }
        return entry
    }

    /// The spec the backend mounts for `container` over `lowers` (top first).
    func unionSpec(_ container: StoreContainer, lowers: [FilePath]) -> UnionSpec {
        switch backend {
        case .overlay, .overlayUserXattr, .fuseOverlayfs:
            var options = OverlayOptions()
            if backend != .fuseOverlayfs {
                options.index = false
                options.metacopy = false
                // Never create redirects (renamed directories are copied instead, so changes stay exportable).
                // `nofollow`, not `off`: with `userxattr` the kernel refuses any other value (EINVAL).
                options.redirectDirectory = .nofollow
                options.userXattr = backend == .overlayUserXattr ? true : nil
            }
            return .overlay(
                OverlaySpec(
                    lowerDirectories: lowers, upperDirectory: container.upperDirectory,
                    workDirectory: container.workDirectory, options: options,
                    source: backend == .fuseOverlayfs ? "fuse-overlayfs" : "unionmount", idMapping: container.idMapping)
            )
        case .aufs:
            let branches =
                [AufsBranch(container.upperDirectory, .readWrite)]
                + lowers.map { AufsBranch($0, .readOnly, attributes: [.whiteout]) }
            return .aufs(AufsSpec(branches: branches))
        }
    }

    private func mountUnion(_ container: StoreContainer, lowers: [FilePath]) throws(UnionMountError) {
        let spec = unionSpec(container, lowers: lowers)
        try mounter.mount(
            spec, at: container.mergedDirectory, strategy: backend == .fuseOverlayfs ? .fuseOverlayfs : nil)
    }

    func unmountUnion(_ container: StoreContainer, lazy: Bool) throws(UnionMountError) {
        _ = try unmountUnion(at: container.mergedDirectory, lazy: lazy)
    }

    private func unmountUnion(at merged: FilePath, lazy: Bool) throws(UnionMountError) -> UnmountOutcome {
        var options = UnmountOptions()
        options.detachWhenBusy = lazy
        return try mounter.unmount(merged, options: options)
    }
}
