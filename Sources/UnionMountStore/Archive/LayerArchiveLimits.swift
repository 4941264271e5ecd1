import UnionMount

/// How much a layer archive may hold before its application is refused as a tar bomb (each over → a
/// `UnionMountError.Code.malformedInput` naming the layer and the entry, and nothing applied is kept).
public struct LayerArchiveLimits: Sendable, Hashable {
    /// The most entries (headers) the tar may have.
    public var maximumEntries: Int
    /// The most bytes the decompressed tar stream may have: counted while decompressing, so a gzip or zstd bomb
    /// stops at the limit whatever its headers declare.
    public var maximumUncompressedBytes: Int64
    /// The largest size one entry may declare (a sparse file's logical size counts).
    public var maximumEntrySize: Int64
    /// The longest entry name, symbolic link target or hard link target, in bytes.
    public var maximumPathLength: Int

    /// Limits of your choice; the defaults are far above any real image layer (a million entries, 64 GiB
    /// decompressed, 16 GiB per file, 4096-byte names: `PATH_MAX`).
    public init(
        maximumEntries: Int = 1_000_000, maximumUncompressedBytes: Int64 = 64 << 30,
        maximumEntrySize: Int64 = 16 << 30, maximumPathLength: Int = 4096
    ) {
        self.maximumEntries = maximumEntries
        self.maximumUncompressedBytes = maximumUncompressedBytes
        self.maximumEntrySize = maximumEntrySize
        self.maximumPathLength = maximumPathLength
    }
}
