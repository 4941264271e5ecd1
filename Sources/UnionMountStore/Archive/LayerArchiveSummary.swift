import UnionMount

/// What applying a layer archive found and wrote.
public struct LayerArchiveSummary: Sendable, Hashable {
    /// The SHA-256 of the decompressed tar stream: the layer's diff id.
    public var diffID: ImageDigest
    /// The SHA-256 of the blob as read (compressed): its digest in a manifest.
    public var digest: ImageDigest
    /// The blob's size in bytes as read.
    public var size: Int64
    /// The decompressed tar stream's size in bytes.
    public var uncompressedSize: Int64
    /// The compression found: `"gzip"`, `"zstd"` or `"none"`.
    public var compression: String
    /// Tar headers read.
    public var entries: Int = 0
    /// Regular files written (hard links not counted).
    public var regularFiles: Int = 0
    /// Directories written (explicit entries; the layer root included when the tar has `./`).
    public var directories: Int = 0
    /// Symbolic links written.
    public var symbolicLinks: Int = 0
    /// Hard links made.
    public var hardLinks: Int = 0
    /// Device nodes, FIFOs and sockets made (whiteouts not counted).
    public var specialFiles: Int = 0
    /// `.wh.<name>` entries, written in the store's whiteout form.
    public var whiteouts: Int = 0
    /// `.wh..wh..opq` entries, written in the store's whiteout form.
    public var opaqueDirectories: Int = 0
    /// aufs bookkeeping entries (`.wh..wh.plnk`, `.wh..wh.aufs`, …) skipped in an overlay-form layer.
    public var skippedEntries: Int = 0
    /// Extended attributes a rootless application may not set (`trusted.*`, `security.*` but
    /// `security.capability`), not applied.
    public var droppedXattrs: Int = 0

    init(diffID: ImageDigest, digest: ImageDigest, size: Int64, uncompressedSize: Int64, compression: String) {
        self.diffID = diffID
        self.digest = digest
        self.size = size
        self.uncompressedSize = uncompressedSize
        self.compression = compression
    }
}
