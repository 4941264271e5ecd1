import UnionMount

/// How ``LayerArchiveWriter`` writes a layer tar.
public struct LayerExportOptions: Sendable, Hashable, Codable {
    /// The compression of the blob: gzip by default (what registries and `docker` expect), zstd, or a plain tar.
    public var compression: LayerCompression
    /// Seconds since the Unix epoch, like `SOURCE_DATE_EPOCH`: a modification time later than this is written as
    /// exactly this (nanoseconds zero); earlier times are kept. nil keeps every time.
    public var clampTimes: Int64?

    /// Options; by default gzip, times kept.
    public init(compression: LayerCompression = .gzip, clampTimes: Int64? = nil) {
        self.compression = compression
        self.clampTimes = clampTimes
    }
}

/// A layer tar written by ``LayerArchiveWriter``: what an image config and manifest need to name it.
public struct ExportedLayer: Sendable, Hashable, Codable {
    /// The SHA-256 of the tar stream before compression: the layer's diff id (`rootfs.diff_ids`).
    public var diffID: ImageDigest
    /// The SHA-256 of the blob as written (compressed): its digest in a manifest.
    public var digest: ImageDigest
    /// The blob's size in bytes.
    public var size: Int64
    /// The tar stream's size in bytes before compression.
    public var uncompressedSize: Int64
    /// The blob's compression.
    public var compression: LayerCompression
    /// Tar entries written (whiteouts and opaque markers included, the layer root included).
    public var entries: Int
    /// Sockets left out (a tar cannot carry one that means anything; `docker` and `tar` skip them too).
    public var skippedSockets: Int

    /// A description of a written layer.
    public init(
        diffID: ImageDigest, digest: ImageDigest, size: Int64, uncompressedSize: Int64, compression: LayerCompression,
        entries: Int, skippedSockets: Int
    ) {
        self.diffID = diffID
        self.digest = digest
        self.size = size
        self.uncompressedSize = uncompressedSize
        self.compression = compression
        self.entries = entries
        self.skippedSockets = skippedSockets
    }
}
