import SystemPackage

/// Mounts and unmounts union filesystems: plans the system calls for this kernel, runs them, and explains
/// failures.
///
///     let mounter = Mounter()
///     let spec = OverlaySpec(lowerDirectories: ["/l1", "/l2"], upperDirectory: "/u", workDirectory: "/w")
///     let plan = try mounter.mount(.overlay(spec), at: "/merged")
///     print(plan.strategy)            // new-mount-api on Linux 6.8+
///     try mounter.unmount("/merged")
///
/// Where the kernel has no overlay but has FUSE and the `fuse-overlayfs` program (rootless setups, some
/// sandboxes), overlay specs are mounted by that program instead (``MountStrategy/fuseOverlayfs``): it is
/// spawned with posix_spawn(3), no shell and a fixed environment, and the mount exists once its parent process
/// exits 0. The same strategy can be forced anywhere FUSE and the program exist. It carries lower, upper and work
/// directories and a few options; what it cannot carry exactly (a `:` in a lower or upper path, data-only
/// layers, kernel-only options such as `index=on`, `metacopy=on`) is refused with a typed error rather than
/// dropped — see ``MountPlan/fuseOverlayfs(_:target:flags:program:pageSize:argumentLimit:)``.
/// ``unmount(_:options:)`` unmounts such a mount with umount2(2), or with `fusermount3 -u` where umount2(2) is
/// not permitted (a mount made without root).
///
/// A `Mounter` holds no state beyond the kernel features it plans for; it is safe to share.
public struct Mounter: Sendable {
    /// The kernel features plans are made for; ``KernelFeatures/current`` unless a test says otherwise.
    public var features: KernelFeatures
    /// Where plans of idmapped layers attach their trees on kernels that need them attached
    /// (``IDMappedLayerRung/attachedTrees``): each plan makes a directory of its own in it (mode 0700, missing
    /// parents too) and removes it once the union is mounted.
    public var attachmentDirectory: FilePath

    /// `/run/unionmount/idmapped`.
    public static let defaultAttachmentDirectory: FilePath = OverlayPlanner.defaultAttachments

    /// Creates a mounter for the given features (default: probed once from the running kernel).
    ///
    /// - Parameters:
    ///   - features: the kernel features plans are made for.
    ///   - attachmentDirectory: where idmapped layers' trees are attached when the kernel needs them attached.
    public init(features: KernelFeatures = .current, attachmentDirectory: FilePath = Mounter.defaultAttachmentDirectory)
    {
        self.features = features
        self.attachmentDirectory = attachmentDirectory
    }

    /// Plans the system calls that would mount `spec` at `target`, without running any.
    ///
    /// - Parameters:
    ///   - spec: what to mount; it is validated first.
    ///   - target: the mount point.
    ///   - flags: per-mount flags (`MS_*` / `MOUNT_ATTR_*`).
    ///   - strategy: force one strategy instead of the first that fits; a forced strategy that cannot carry
    ///     the spec throws (for example ``MountStrategy/legacy`` with options over 4095 bytes, or
    ///     ``MountStrategy/fuseOverlayfs`` with a `:` in a lower path or without the program). Unforced, an
    ///     overlay spec goes to fuse-overlayfs only when the kernel has no overlay but has FUSE and the program.
    /// - Returns: the plan, each system call with its arguments.
    /// - Throws: ``UnionMountError`` with code ``UnionMountError/Code/invalidSpec``,
    ///   ``UnionMountError/Code/optionsTooLong`` or ``UnionMountError/Code/unsupported``.
    public func plan(
        _ spec: UnionSpec, at target: FilePath, flags: MountFlags = [], strategy: MountStrategy? = nil
    ) throws(UnionMountError) -> MountPlan {
        switch spec {
        case .overlay(let overlay):
            return try OverlayPlanner(features: features, attachments: attachmentDirectory).plan(
                overlay, target: target, flags: flags, strategy: strategy)
        case .aufs(let aufs):
            if let strategy, strategy != .aufs {
                throw UnionMountError(
                    code: .invalidSpec, message: "aufs mounts only with the aufs strategy", input: "strategy",
                    spec: spec)
            }
            return try MountPlan.aufs(aufs, target: absolute(target), flags: flags, pageSize: features.pageSize)
        }
    }

    /// Mounts `spec` at `target` with the first strategy that fits (or the one forced).
    ///
    /// - Returns: the plan that was run.
    /// - Throws: ``UnionMountError``: planning errors as in ``plan(_:at:flags:strategy:)``; a refused system
    ///   call with its errno, the kernel's messages and the diagnoses; nothing stays mounted after a throw.
    ///
    /// The system calls are fsopen(2), fsconfig(2), fsmount(2) and move_mount(2), or mount(2); or, for
    /// ``MountStrategy/fuseOverlayfs``, posix_spawn(3) and waitpid(2) of the `fuse-overlayfs` program.
    @discardableResult
    public func mount(
        _ spec: UnionSpec, at target: FilePath, flags: MountFlags = [], strategy: MountStrategy? = nil
    ) throws(UnionMountError) -> MountPlan {
        let plan = try plan(spec, at: target, flags: flags, strategy: strategy)
        try execute(plan)
        return plan
    }

    /// Runs a plan: one made by ``plan(_:at:flags:strategy:)`` (perhaps shown to a person first), decoded from
    /// its JSON, or written by hand. Exactly its steps are run, in order; failures are diagnosed against its
    /// ``MountPlan/spec``, and nothing stays mounted after a throw.
    ///
    /// - Parameter plan: the system calls to make.
    /// - Throws: ``UnionMountError`` for the first refused call, with its errno and the kernel's messages.
    public func execute(_ plan: MountPlan) throws(UnionMountError) {
        try MountExecutor(plan: plan, features: features).run()
    }
}
