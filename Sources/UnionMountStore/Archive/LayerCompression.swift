/// How a layer's tar stream is compressed.
public enum LayerCompression: String, Sendable, Hashable, Codable {
    /// A plain tar.
    case none
    /// gzip (RFC 1952).
    case gzip
    /// Zstandard (RFC 8878).
    case zstd
}
