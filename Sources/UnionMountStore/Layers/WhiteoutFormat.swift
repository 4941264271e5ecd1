import UnionMount

/// How a union's branches mark deleted names and opaque directories.
public enum WhiteoutFormat: Sendable, Hashable {
    /// overlayfs: a whiteout is a character device 0/0, or a zero-size regular file with the xattr
    /// `<prefix>overlay.whiteout` inside a directory whose `<prefix>overlay.opaque` is `x`; a directory whose
    /// `<prefix>overlay.opaque` is `y` is opaque. `xattrPrefix` is `"trusted."` (the default for a mount by
    /// root) or `"user."` (a mount with `userxattr`, as in a user namespace); overlay reads only its own prefix.
    case overlay(xattrPrefix: String)
    /// aufs (and the OCI layer format): `.wh.<name>` whites out `<name>`, `.wh..wh..opq` makes its directory
    /// opaque; every other name starting with `.wh..wh.` is aufs' bookkeeping (`.wh..wh.aufs`,
    /// `.wh..wh.plnk`, `.wh..wh.orph`, …).
    case aufs

    /// overlay with `trusted.overlay.*` xattrs, as a mount by root in the initial user namespace writes them.
    public static let overlayTrusted = WhiteoutFormat.overlay(xattrPrefix: "trusted.")
    /// overlay with `user.overlay.*` xattrs, as a `userxattr` mount (rootless, in a user namespace) writes them.
    public static let overlayUser = WhiteoutFormat.overlay(xattrPrefix: "user.")
}
