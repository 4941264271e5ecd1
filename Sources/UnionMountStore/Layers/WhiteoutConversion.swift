import SystemPackage
import UnionMount

/// Converts a layer directory in place between the whiteout forms of ``WhiteoutFormat``.
///
///     try WhiteoutConversion.convert("/layers/app", from: .aufs, to: .overlayTrusted)
///
/// aufs/OCI form → overlay form (prefix `P`, `trusted.` or `user.`):
/// - `.wh.<name>` (an empty regular file) becomes a character device 0/0 `<name>` with the same permission
///   bits, owner, group, access and modification times and extended attributes; whiteouts that are hard links
///   of each other stay hard links of each other.
/// - `.wh..wh..opq` becomes `P overlay.opaque=y` on its directory; the marker's own mode, owner and times are
///   kept in `P overlay.unionmount.opaque-marker` (see `OpaqueMarkerRecord`), with the path of another name
///   when the marker was a hard link, so that converting back restores it exactly.
/// - aufs' bookkeeping names (`.wh..wh.aufs`, `.wh..wh.plnk`, `.wh..wh.orph`, any other `.wh..wh.*`) are
///   removed with everything below them: they belong to a live aufs branch, not to a layer.
/// - An ordinary attribute named `P overlay.<key>` is stored escaped as `P overlay.overlay.<key>`, as overlay
///   itself shows such names, so that it cannot be mistaken for overlay's own.
///
/// overlay form → aufs/OCI form: the reverse. A character device 0/0 becomes `.wh.<name>`; a zero-size file
/// carrying `P overlay.whiteout` in a directory marked `P overlay.opaque=x` becomes `.wh.<name>` too; an
/// opaque directory gets `.wh..wh..opq` from its record, or, without one, a marker with the directory's
/// permission bits (special bits cleared), owner, group and times. overlay's bookkeeping (`origin`, `impure`,
/// `uuid`, `nlink`) is dropped.
///
/// overlay form → the other overlay prefix: every `P overlay.*` attribute is renamed to the other prefix (escaped
/// names included); ordinary attributes that the other prefix would claim are escaped.
///
/// Directory access and modification times are left as they were. Nothing is changed when a check fails: the
/// whole tree is examined before the first change.
public enum WhiteoutConversion {
    /// Converts the layer at `directory` in place from the whiteout form `from` to `to` (nothing to do when they are
    /// equal).
    ///
    /// Wraps lstat(2), opendir(3)/readdir(3), mknod(2), open(2), link(2), unlink(2), rename(2), lchown(2),
    /// chmod(2), utimensat(2), llistxattr(2), lgetxattr(2), lsetxattr(2) and lremovexattr(2).
    ///
    /// - Throws: `UnionMountError.Code.invalidArgument` when `directory` is not a directory or an overlay prefix is
    ///   neither `trusted.` nor `user.`; `UnionMountError.Code.unsupported` naming the entry
    ///   (`UnionMountError.input`) when it cannot be expressed in the target form: a `.wh.` file that is not an
    ///   empty regular file, holds attributes a device cannot hold (`user.*`) or is a hard link of an ordinary
    ///   file; a whiteout next to the name it whites out; a name starting with `.wh.` in the overlay form;
    ///   `redirect`/`metacopy` or another unknown overlay attribute going to the aufs form;
    ///   `UnionMountError.Code.malformedInput` for an `opaque` value other than `y`/`x`, a bare `.wh.` name or a
    ///   record that cannot be read; `UnionMountError.Code.systemCallFailed` naming the path otherwise.
    public static func convert(_ directory: FilePath, from: WhiteoutFormat, to: WhiteoutFormat)
        throws(UnionMountError)
    {
        for format in [from, to] {
            if case .overlay(let prefix) = format, !OverlayXattrs.prefixes.contains(prefix) {
                throw UnionMountError.invalidArgument(
                    "an overlay xattr prefix is \"trusted.\" or \"user.\", not \"\(prefix)\"", input: "xattrPrefix")
            }
        }
        guard from != to else { return }
        let root = (directory)
        let info = try LayerIO.status(root)
        guard info.type == .directory else {
            throw UnionMountError.invalidArgument("\(root.readable) is not a directory", input: root.readable)
        }
        var checker = WhiteoutConverter(root: root, from: from, to: to, apply: false)
        try checker.run()
        var converter = WhiteoutConverter(root: root, from: from, to: to, apply: true)
        converter.anchors = checker.anchors
        try converter.run()
    }
}
