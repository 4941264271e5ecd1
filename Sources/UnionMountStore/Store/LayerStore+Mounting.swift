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
            let container = try container(id)
            let merged = container.mergedDirectory
            if MountTable.isMountPoint(merged) {
                try StoreMountState(count: container.mountCount + 1).write(to: mountsFile(id))
                return merged
            }
            try StoreMountState(count: 0, pending: .mount).write(to: mountsFile(id))
            StoreFaultInjection.point("mount.pending")
            try mountUnion(container, lowers: lowerDirectories(container))
            StoreFaultInjection.point("mount.mounted")
            try StoreMountState(count: 1).write(to: mountsFile(id))
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
            let container = try container(id)
            let mounted = MountTable.isMountPoint(container.mergedDirectory)
            guard container.mountCount > 0, mounted else {
                if container.mountCount > 0 { try StoreMountState(count: 0).write(to: mountsFile(id)) }
                throw UnionMountError(
                    code: .notMounted, message: "the container \(id) is not mounted", input: id)
            }
            if container.mountCount > 1 {
                try StoreMountState(count: container.mountCount - 1).write(to: mountsFile(id))
                return false
            }
            try StoreMountState(count: 1, pending: .unmount).write(to: mountsFile(id))
            StoreFaultInjection.point("unmount.pending")
            do throws(UnionMountError) {
                try unmountUnion(container, lazy: lazy)
            } catch {
                try StoreMountState(count: 1).write(to: mountsFile(id))
                throw error
            }
            StoreFaultInjection.point("unmount.unmounted")
            try StoreMountState(count: 0).write(to: mountsFile(id))
            StoreFaultInjection.point("unmount.counted")
            return true
        }
    }

    /// The spec ``mount(container:)`` mounts for the container: its writable layer over its chain, with the
    /// backend's options (reads the container's and layers' records).
    public func unionSpec(container id: String) throws(UnionMountError) -> UnionSpec {
        let container = try container(id)
        return unionSpec(container, lowers: lowerDirectories(container))
    }

    // MARK: Implementation

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
                    source: backend == .fuseOverlayfs ? "fuse-overlayfs" : "unionmount"))
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
        var options = UnmountOptions()
        options.detachWhenBusy = lazy
        _ = try mounter.unmount(container.mergedDirectory, options: options)
    }
}
