import SystemPackage
import UnionMount

/// Writes a layer directory as an OCI layer tar (`application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]`) in one
/// pass, with the diff id, the blob digest and the size computed while writing (see ``ExportedLayer``): the
/// reverse of ``LayerApplier``.
///
///     let writer = LayerArchiveWriter(whiteoutFormat: .overlayTrusted)
///     let layer = try writer.write(layer: "/var/lib/store/layers/abc/diff", to: "/tmp/layer.tar.gz")
///     print(layer.diffID, layer.digest, layer.size)
///
/// The layer is read in either store form and written in the OCI form:
///
/// - overlay form: a 0/0 character device becomes the whiteout `.wh.<name>` (an empty regular file with the
///   device's mode, owner and time); a zero-size file marked `<prefix>overlay.whiteout` in a directory whose
///   `<prefix>overlay.opaque` is `x` likewise; a directory whose `<prefix>overlay.opaque` is `y` gets an opaque
///   marker `.wh..wh..opq` (with the metadata ``LayerApplier`` recorded for it, else the directory's). overlay's
///   own attributes are not written (`opaque`, `whiteout`, the marker record, `origin`, `impure`, `uuid`,
///   `nlink`); escaped ones (`<prefix>overlay.overlay.<key>`) are written unescaped; `redirect` and `metacopy`,
///   which a tar cannot express, are refused. A name starting with `.wh.` is refused (a tar would read it as a
///   whiteout).
/// - aufs form: `.wh.<name>` and `.wh..wh..opq` are written as they are; aufs' other `.wh..wh.*` names
///   (`.wh..wh.plnk`, `.wh..wh.aufs`, …) are its bookkeeping and are left out.
///
/// Entries come in a fixed order: the layer root as `./`, then depth first, the names of each directory sorted
/// by their bytes (after the whiteout renaming, so both forms of a layer give the same order), each directory
/// before what it holds. A file with several names is written once, its later names as tar hard links to the
/// first. Extended attributes are `SCHILY.xattr.<name>` records, except `security.selinux` (the host's label,
/// not the layer's). Modes keep the setuid, setgid and sticky bits; owners are the numeric ids as stat(2) shows
/// them to this process (in a rootless store's user namespace: the container's ids, which is what an image
/// holds; from outside it they would be the host's subordinate ids); modification times keep their nanoseconds
/// (a pax `mtime` record) unless clamped (``LayerExportOptions/clampTimes``). Names are bytes: a valid UTF-8
/// name that is not ASCII gets a pax `path` record, any other name its bytes under `hdrcharset=BINARY`. Sockets
/// are left out and counted. The same tree gives byte-identical output (libarchive runs under the thread locale
/// `C.UTF-8`, whatever the program's locale).
///
/// The tree is read without following any symbolic link: every directory is opened with openat(2) `O_NOFOLLOW |
/// O_DIRECTORY` relative to its parent's descriptor, every name examined with fstatat(2)
/// `AT_SYMLINK_NOFOLLOW`, files opened `O_NOFOLLOW` and checked to be the inode examined, extended attributes
/// read through the descriptor (listxattr(2)/getxattr(2) on `/proc/self/fd/N`, `O_PATH` for links and nodes),
/// link targets with readlinkat(2).
public struct LayerArchiveWriter: Sendable {
    /// The whiteout form of the layer directories this writer reads.
    public var whiteoutFormat: WhiteoutFormat
    /// Compression and time clamping.
    public var options: LayerExportOptions

    /// A writer for layer directories in `whiteoutFormat`.
    public init(whiteoutFormat: WhiteoutFormat, options: LayerExportOptions = LayerExportOptions()) {
        self.whiteoutFormat = whiteoutFormat
        self.options = options
    }

    /// Writes the layer directory `layer` as a tar to the new file `file` (created with `O_EXCL`, mode 0644;
    /// removed again when writing fails).
    ///
    /// - Throws: `UnionMountError.Code.systemCallFailed` naming the file or the entry; `.unsupported` for what a
    ///   tar cannot express (see ``LayerArchiveWriter``); `.malformedInput` for a damaged overlay attribute.
    public func write(layer: FilePath, to file: FilePath) throws(UnionMountError) -> ExportedLayer {
        let output: FileDescriptor
        do {
            output = try FileSystem.open(
                file, .writeOnly, options: [.create, .exclusiveCreate, .noFollow], permissions: 0o644)
        } catch {
            throw UnionMountError.systemCall(
                "open", error, message: "cannot create the layer archive \(file.readable)", input: file.readable)
        }
        do {
            defer { FileSystem.close(output) }
            return try write(layer: layer, to: output)
        } catch {
            try? FileSystem.unlink(file)
            throw error
        }
    }

    /// Writes the layer directory `layer` as a tar to `output` (from its current offset).
    ///
    /// Wraps openat(2), fstatat(2), fstat(2), getdents64(2), read(2), readlinkat(2), listxattr(2) and getxattr(2)
    /// on `/proc/self/fd/N`, and write(2) of the archive; uselocale(3) around libarchive.
    ///
    /// - Throws: as ``write(layer:to:)-(_,FilePath)``.
    public func write(layer: FilePath, to output: FileDescriptor) throws(UnionMountError) -> ExportedLayer {
        // libarchive converts names through the locale's charset: the same one for every program.
        try ProcessFacts.withCharacterLocale("C.UTF-8") { () throws(UnionMountError) -> ExportedLayer in
            try writeTar(layer: layer, to: output)
        }
    }

    private func writeTar(layer: FilePath, to output: FileDescriptor) throws(UnionMountError) -> ExportedLayer {
        let root: FileDescriptor
        do {
            root = try FileSystem.open(layer, .readOnly, options: [.directory, .noFollow])
        } catch {
            throw UnionMountError.systemCall(
                "open", error, message: "cannot open the layer directory \(layer.readable)", input: layer.readable)
        }
        let export: LayerExport
        do {
            export = try LayerExport(writer: self, layer: layer, output: output)
        } catch {
            FileSystem.close(root)
            throw error
        }
        try export.directory(root, path: [], info: nil)
        let digests: TarWriter.Digests
        do {
            digests = try export.tar.finish()
        } catch {
            throw export.failure(error, path: nil)
        }
        return ExportedLayer(
            diffID: digests.tar, digest: digests.blob, size: digests.blobSize, uncompressedSize: digests.tarSize,
            compression: options.compression, entries: export.entries, skippedSockets: export.skippedSockets)
    }
}
