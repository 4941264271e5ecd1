import UnionMount

/// What an image says a layer blob is: checked against the digests computed while the blob is applied; any
/// mismatch is a `UnionMountError.Code.malformedInput` and the applied layer is discarded.
public struct LayerArchiveExpectation: Sendable, Hashable {
    /// The blob's digest as stored (compressed), the manifest's `layers[i].digest`.
    public var digest: ImageDigest?
    /// The blob's size in bytes as stored, the manifest's `layers[i].size`; a longer blob is refused as soon as it
    /// passes it.
    public var size: Int64?
    /// The digest of the decompressed tar, the config's `rootfs.diff_ids[i]`.
    public var diffID: ImageDigest?

    /// The expectations given (nil: not checked).
    public init(digest: ImageDigest? = nil, size: Int64? = nil, diffID: ImageDigest? = nil) {
        self.digest = digest
        self.size = size
        self.diffID = diffID
    }
}
