/// The media types of image metadata the store reads: OCI's and Docker's schema 2.
public enum ImageMediaType {
    /// An OCI image index, `application/vnd.oci.image.index.v1+json`.
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    /// A Docker manifest list, `application/vnd.docker.distribution.manifest.list.v2+json` (read as an index).
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    /// An OCI image manifest, `application/vnd.oci.image.manifest.v1+json`.
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    /// A Docker image manifest, schema 2, `application/vnd.docker.distribution.manifest.v2+json`.
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    /// An OCI image config, `application/vnd.oci.image.config.v1+json`.
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    /// A Docker image config, `application/vnd.docker.container.image.v1+json`.
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"

    /// The media types read as an image index.
    public static let indexes: Set<String> = [ociIndex, dockerManifestList]
    /// The media types read as an image manifest.
    public static let manifests: Set<String> = [ociManifest, dockerManifest]
    /// The media types read as an image config.
    public static let configs: Set<String> = [ociConfig, dockerConfig]

    /// Docker's schema 1 manifests (signed or not), which carry no config and no diff ids: refused as unsupported.
    public static let dockerSchema1: Set<String> = [
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ]
}

/// A layer's media type as the store understands it: the tar's compression, and whether the layer is one of the
/// "non-distributable" kinds (OCI's `nondistributable` layers and Docker's `foreign` ones).
///
/// Non-distributable layers are **accepted** when their blob is present (in the layout or the archive) and
/// verifies like any other: they are tar streams like the rest, marked only so that a registry does not push
/// them (Windows base layers, mostly). Their `urls` are never fetched: a missing blob is an error naming them.
/// Encrypted layers (`+encrypted`) and any other type are `UnionMountError.Code.unsupported`.
public struct LayerMediaType: Sendable, Hashable, Codable {
    /// The media type as written.
    public var name: String
    /// The compression of the tar stream.
    public var compression: LayerCompression
    /// Whether the layer is marked non-distributable (or "foreign").
    public var nonDistributable: Bool

    /// The known layer media types, with what they mean.
    public static let known: [String: (LayerCompression, Bool)] = [
        "application/vnd.oci.image.layer.v1.tar": (.none, false),
        "application/vnd.oci.image.layer.v1.tar+gzip": (.gzip, false),
        "application/vnd.oci.image.layer.v1.tar+zstd": (.zstd, false),
        "application/vnd.oci.image.layer.nondistributable.v1.tar": (.none, true),
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": (.gzip, true),
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": (.zstd, true),
        "application/vnd.docker.image.rootfs.diff.tar.gzip": (.gzip, false),
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": (.gzip, true),
    ]

    /// The layer type `name`, nil when it is not a layer type the store reads.
    public init?(_ name: String) {
        guard let (compression, nonDistributable) = Self.known[name] else { return nil }
        self.name = name
        self.compression = compression
        self.nonDistributable = nonDistributable
    }
}
