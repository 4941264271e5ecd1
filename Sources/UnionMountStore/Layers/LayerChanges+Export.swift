import SystemPackage
import UnionMount

extension LayerChanges {
    /// Writes the changes of `upper` over `lowers` as a new layer directory at `destination`, in the whiteout form
    /// `outputFormat`.
    ///
    /// The layer holds every visible entry of the upper layer, copied losslessly as ``LayerTree/copy(from:to:)``
    /// does (hard links between them kept), with overlay's and fuse-overlayfs' own attributes dropped and
    /// ordinary attributes escaped where the output form needs it; a whiteout for each deleted name (with the
    /// upper whiteout's mode, owner and times; whiteouts that were hard links of each other stay so); an opaque
    /// mark on each opaque directory that hides a lower directory (an `.wh..wh..opq` marker taking the upper
    /// marker's metadata, else the directory's permission bits, owner and times; or `<prefix>overlay.opaque=y`).
    /// Whiteouts of names the lowers do not show, fuse-overlayfs' `.wh..opq` devices, aufs' bookkeeping names and
    /// opaque marks of directories that hide nothing are dropped. Placed over `lowers`, the layer shows what the
    /// upper layer shows. See ``list(upper:lowers:format:)`` for how the upper layer is read.
    ///
    /// Wraps what ``list(upper:lowers:format:)`` and ``LayerTree/copy(from:to:)`` use, plus mknod(2) for
    /// whiteout devices.
    ///
    /// - Parameters:
    ///   - upper: the upper (writable) layer whose changes are written.
    ///   - lowers: the layers below it, top first (may be empty).
    ///   - format: the whiteout format of the lowers and of overlay's attributes in the upper layer.
    ///   - destination: a path that must not exist; its parent must.
    ///   - outputFormat: the whiteout form of the layer written (``WhiteoutFormat/aufs`` for OCI/Docker layers).
    /// - Throws: `UnionMountError.Code.alreadyExists` when `destination` exists, `UnionMountError.Code.invalidArgument`
    ///   when a directory given is not one or the xattr prefix is unknown;
    ///   `UnionMountError.Code.unsupported` naming an entry carrying overlay's `redirect` or `metacopy`, which no
    ///   layer can express; `UnionMountError.Code.systemCallFailed` naming the path otherwise. On failure the
    ///   partial layer is removed.
    public static func export(
        upper: FilePath, lowers: [FilePath], format: WhiteoutFormat, to destination: FilePath,
        as outputFormat: WhiteoutFormat
    ) throws(UnionMountError) {
        if case .overlay(let prefix) = outputFormat, !OverlayXattrs.prefixes.contains(prefix) {
            throw UnionMountError.invalidArgument(
                "an overlay xattr prefix is \"trusted.\" or \"user.\", not \"\(prefix)\"", input: "xattrPrefix")
        }
        let root = (destination)
        guard try LayerIO.statusIfPresent(root) == nil else {
            throw UnionMountError(
                code: .alreadyExists, message: "the destination \(root.readable) already exists", input: root.readable)
        }
        var walker = try ChangeWalker(upper: upper, lowers: lowers, format: format)
        walker.output = ChangeWalker.Output(root: root, format: outputFormat)
        do {
            try walker.run()
        } catch {
            try? LayerIO.removeTree(root)
            throw error
        }
    }
}
