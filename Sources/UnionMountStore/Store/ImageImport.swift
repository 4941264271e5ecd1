import SystemPackage
import UnionMount

/// Where ``LayerStore/importImage(from:name:options:progress:)`` reads an image.
public enum ImageSource: Sendable, Hashable {
    /// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`, as `skopeo copy … oci:DIR`
    /// and `umoci` write it). `reference`: a tag (an `index.json` entry's `org.opencontainers.image.ref.name`) or a
    /// manifest digest `sha256:<hex>`; nil for the only manifest (or the one for the platform).
    case ociLayout(FilePath, reference: String?)
    /// A `docker save` archive (an uncompressed tar; legacy `manifest.json` + `<id>/layer.tar` or the OCI form
    /// Docker 25 writes). `reference`: one of its `RepoTags` (`debian:12`), or a config digest (Docker's image
    /// id) or manifest digest `sha256:<hex>`; nil for the only image.
    case dockerArchive(FilePath, reference: String?)
    /// An OCI layout packed into an uncompressed tar (`oci-archive:` in skopeo); `reference` as for a layout.
    case ociArchive(FilePath, reference: String?)

    /// The directory or archive file.
    public var path: FilePath {
        switch self {
        case .ociLayout(let path, _), .dockerArchive(let path, _), .ociArchive(let path, _): path
        }
    }

    /// The reference given, if any.
    public var reference: String? {
        switch self {
        case .ociLayout(_, let reference), .dockerArchive(_, let reference), .ociArchive(_, let reference):
            reference
        }
    }

    /// The selector the reference means: `sha256:<hex>` a digest, anything else a tag, none the only image.
    func selector() throws(UnionMountError) -> ImageSelector {
        guard let reference else { return .only }
        if reference.hasPrefix("sha256:") {
            do {
                return .digest(try ImageDigest(parsing: reference, input: "reference"))
            } catch {
                throw UnionMountError.invalidArgument(error.message, input: "reference")
            }
        }
        guard !reference.isEmpty else {
            throw UnionMountError.invalidArgument("an image reference cannot be empty", input: "reference")
        }
        return .tag(reference)
    }
}

/// How ``LayerStore/importImage(from:name:options:progress:)`` reads and applies an image.
public struct ImageImportOptions: Sendable, Hashable {
    /// Which manifest an image index is followed to (default: this machine, ``ImagePlatform/host``).
    public var platform: ImagePlatform
    /// How much each layer's tar may hold (see ``LayerArchiveLimits``); a `docker save` layer member larger than
    /// its `maximumUncompressedBytes` is refused before it is read.
    public var layerLimits: LayerArchiveLimits
    /// Bounds on the JSON read and on the archive's member count.
    public var readLimits: ImageReadLimits
    /// Who owns the files (nil: the archive's owners when this process is root in its user namespace, else the
    /// caller; see ``LayerApplier/Ownership``).
    public var ownership: LayerApplier.Ownership?

    /// Options; the defaults are the host platform, the default limits and ownership by who runs the import.
    public init(
        platform: ImagePlatform = .host, layerLimits: LayerArchiveLimits = LayerArchiveLimits(),
        readLimits: ImageReadLimits = ImageReadLimits(), ownership: LayerApplier.Ownership? = nil
    ) {
        self.platform = platform
        self.layerLimits = layerLimits
        self.readLimits = readLimits
        self.ownership = ownership
    }
}

/// How far an import is: given to the progress callback of ``LayerStore/importImage(from:name:options:progress:)``
/// every 4 MiB read and at the end of each layer.
public struct ImageImportProgress: Sendable, Hashable, Codable {
    /// The image's name in the store.
    public var image: String
    /// The layers of the image.
    public var layerCount: Int
    /// Layers finished (applied or reused).
    public var layersDone: Int
    /// Blob bytes read so far, over all layers (as stored: compressed).
    public var bytesRead: Int64
    /// The sum of the sizes of the layers that are to be applied, when every one is known (a legacy `docker save`
    /// layer's is its member's size); reused layers are not counted.
    public var bytesTotal: Int64
}

/// What ``LayerStore/importImage(from:name:options:progress:)`` did with one layer.
public struct ImportedLayer: Sendable, Hashable, Codable {
    /// Whether the layer was applied from its blob now, or was already in the store.
    public enum Outcome: String, Sendable, Hashable, Codable {
        /// Applied from its tar by this import.
        case applied
        /// Already in the store (same chain id and diff id): nothing read.
        case reused
    }

    /// The layer's chain id; its hex digits are its id in the store.
    public var chainID: ImageDigest
    /// The digest of its uncompressed tar (the config's `rootfs.diff_ids` entry).
    public var diffID: ImageDigest
    /// The digest of its blob as stored: the manifest's, or the one computed while reading (a legacy `docker
    /// save` member has no descriptor); nil for a reused layer without a descriptor.
    public var blobDigest: ImageDigest?
    /// The store's layer id.
    public var layerID: String
    /// Applied or reused.
    public var outcome: Outcome
    /// Blob bytes read (0 when reused).
    public var bytesRead: Int64
    /// Bytes of uncompressed tar (0 when reused).
    public var uncompressedBytes: Int64
    /// Tar entries applied (0 when reused).
    public var entries: Int
}

/// The result of ``LayerStore/importImage(from:name:options:progress:)``: the recorded image and each layer,
/// bottom first.
public struct ImportedImage: Sendable, Hashable, Codable {
    /// The image as recorded.
    public var image: StoreImage
    /// Its layers, bottom first.
    public var layers: [ImportedLayer]
}
