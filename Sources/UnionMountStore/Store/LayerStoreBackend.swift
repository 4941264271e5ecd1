import UnionMount

/// How a ``LayerStore`` mounts its containers; chosen once, by probing, when the store is created, and kept.
public enum LayerStoreBackend: String, Sendable, Hashable, Codable, CaseIterable {
    /// Kernel overlayfs, mounted by root in the initial user namespace (`trusted.overlay.*` xattrs).
    case overlay
    /// Kernel overlayfs with `userxattr`, as in a user namespace (rootless; `user.overlay.*` xattrs).
    case overlayUserXattr = "overlay-userxattr"
    /// The `fuse-overlayfs` program over FUSE, for where kernel overlay cannot serve.
    case fuseOverlayfs = "fuse-overlayfs"
    /// aufs, where the kernel has it.
    case aufs

    /// The whiteout format of the store's layers for this backend.
    ///
    /// fuse-overlayfs understands char 0/0 whiteouts and reads `trusted.overlay.opaque` when it runs as root in
    /// the initial user namespace and `user.overlay.opaque` otherwise, so its layers use the kernel's overlay
    /// format for the namespace the store was created in.
    public func whiteoutFormat(initialUserNamespace: Bool) -> WhiteoutFormat {
        switch self {
        case .overlay: .overlayTrusted
        case .overlayUserXattr: .overlayUser
        case .fuseOverlayfs: initialUserNamespace ? .overlayTrusted : .overlayUser
        case .aufs: .aufs
        }
    }

    /// Why this process cannot use the backend on this kernel, nil when it can.
    public func unavailability(on features: KernelFeatures) -> String? {
        switch self {
        case .overlay:
            if !features.overlay { return "the kernel has no overlay filesystem" }
            if !features.initialUserNamespace {
                return "this process is in a user namespace, where trusted.overlay.* xattrs cannot be used"
            }
            return nil
        case .overlayUserXattr:
            if !features.overlay { return "the kernel has no overlay filesystem" }
            // Before Linux 6.5 the probe cannot know (``OverlayOptionSupport/unknown``); overlay mounts in a user
            // namespace came with `userxattr` (5.11), so a kernel without it refuses the first mount, saying why.
            if !features.userXattr.mayWork { return "the kernel's overlay has no userxattr option (Linux 5.11+)" }
            return nil
        case .fuseOverlayfs:
            if !features.fuse { return "the kernel has no FUSE" }
            if features.fuseOverlayfsProgram == nil { return "the fuse-overlayfs program is not in PATH" }
            return nil
        case .aufs:
            return features.aufs ? nil : "aufs is not available on this kernel"
        }
    }

    /// The first backend of the ladder this process can use: kernel overlay (with `userxattr` outside the
    /// initial user namespace), then fuse-overlayfs, then aufs; nil when none.
    public static func probe(_ features: KernelFeatures = .current) -> LayerStoreBackend? {
        let ladder: [LayerStoreBackend] =
            features.initialUserNamespace
            ? [.overlay, .fuseOverlayfs, .aufs] : [.overlayUserXattr, .fuseOverlayfs, .aufs]
        return ladder.first { $0.unavailability(on: features) == nil }
    }
}

extension WhiteoutFormat {
    /// The name recorded in a store's `store.conf`.
    var storeName: String {
        switch self {
        case .aufs: "aufs"
        case .overlay(let prefix): prefix == "user." ? "overlay-user" : "overlay-trusted"
        }
    }

    init?(storeName: String) {
        switch storeName {
        case "aufs": self = .aufs
        case "overlay-user": self = .overlayUser
        case "overlay-trusted": self = .overlayTrusted
        default: return nil
        }
    }
}
