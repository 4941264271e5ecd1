import UnionMount

/// An OCI content descriptor: what a blob is (`mediaType`), its address (`digest`) and its exact `size`, as an
/// index lists manifests and a manifest lists its config and layers.
public struct ImageDescriptor: Sendable, Hashable, Codable {
    /// The blob's media type.
    public var mediaType: String
    /// The blob's digest; its file in a layout is `blobs/sha256/<hex>`, built from this value only.
    public var digest: ImageDigest
    /// The blob's size in bytes (never negative); a blob of another size is refused.
    public var size: Int64
    /// Where the blob may be fetched from (non-distributable layers); never fetched by the store.
    public var urls: [String]?
    /// The descriptor's annotations (`org.opencontainers.image.ref.name`, the tag, among them).
    public var annotations: [String: String]?
    /// The platform of the manifest it points to (in an index).
    public var platform: ImagePlatform?
    /// The artifact type (OCI 1.1), when given.
    public var artifactType: String?

    /// A descriptor.
    public init(
        mediaType: String, digest: ImageDigest, size: Int64, urls: [String]? = nil,
        annotations: [String: String]? = nil, platform: ImagePlatform? = nil, artifactType: String? = nil
    ) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.urls = urls
        self.annotations = annotations
        self.platform = platform
        self.artifactType = artifactType
    }

    /// The annotation that names an entry of a layout's `index.json` (its tag, or a full reference).
    public static let referenceNameAnnotation = "org.opencontainers.image.ref.name"

    /// The entry's `org.opencontainers.image.ref.name`, when it has one.
    public var referenceName: String? { annotations?[Self.referenceNameAnnotation] }

    /// Reads a descriptor object: `mediaType` (a string), `digest` (`sha256:<hex>`), `size` (an integer ≥ 0),
    /// and the optional `urls`, `annotations`, `platform`, `artifactType`.
    init(json field: JSONField) throws(UnionMountError) {
        let object = try field.object()
        mediaType = try object.required("mediaType").string()
        digest = try object.required("digest").digest()
        let sizeField = try object.required("size")
        size = try sizeField.integer()
        guard size >= 0 else { throw sizeField.malformed("a blob size cannot be negative (\(size))") }
        urls = try object.optional("urls")?.strings()
        annotations = try object.optional("annotations")?.stringMap()
        platform = try object.optional("platform").map { (field) throws(UnionMountError) in
            try ImagePlatform(json: try field.object())
        }
        artifactType = try object.optional("artifactType")?.string()
    }
}
