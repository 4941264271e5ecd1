/// A union mount of either kind.
public enum UnionSpec: Sendable, Hashable, Codable {
    /// An overlayfs mount.
    case overlay(OverlaySpec)
    /// An aufs mount.
    case aufs(AufsSpec)

    /// The filesystem type passed to the kernel: `"overlay"` or `"aufs"`.
    public var filesystemType: String {
        switch self {
        case .overlay: "overlay"
        case .aufs: "aufs"
        }
    }
}
