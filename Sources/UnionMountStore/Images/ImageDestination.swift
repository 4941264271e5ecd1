import SystemPackage
import UnionMount

/// Where ``LayerStore/exportImage(named:to:options:)`` writes an image.
public enum ImageDestination: Sendable, Hashable {
    /// An OCI image layout directory (created when missing, added to when it exists): the blobs in
    /// `blobs/sha256/`, the manifest listed in `index.json` under `org.opencontainers.image.ref.name` = `tag`
    /// (replacing an entry of the same tag); nil tags it with the image's own tag. What `skopeo … oci:DIR:TAG`
    /// and `umoci … --image DIR:TAG` read.
    case ociLayout(FilePath, tag: String?)
    /// A `docker save` archive (a plain tar, replaced when it exists) in the OCI-in-archive form Docker 25+
    /// writes: an OCI layout plus `manifest.json` whose `RepoTags` holds `tag` (nil: the image's name), layers as
    /// plain tars. What `docker load` and `skopeo … docker-archive:FILE` read.
    case dockerArchive(FilePath, tag: String?)
}

/// An image written by ``LayerStore/exportImage(named:to:options:)``.
public struct ExportedImage: Sendable, Hashable, Codable {
    /// The store's name of the image.
    public var name: String
    /// The tag written (`index.json`'s `org.opencontainers.image.ref.name`, or the archive's repo tag).
    public var tag: String
    /// The manifest's digest.
    public var manifestDigest: ImageDigest
    /// The manifest's size in bytes.
    public var manifestSize: Int64
    /// The config's digest (Docker's image id). It differs from the store's ``StoreImage/configDigest`` when
    /// the regenerated layer tars have other diff ids than the imported ones.
    public var configDigest: ImageDigest
    /// The layers as written, bottom first; their diff ids are the written config's `rootfs.diff_ids`.
    public var layers: [ExportedLayer]

    /// A description of an exported image.
    public init(
        name: String, tag: String, manifestDigest: ImageDigest, manifestSize: Int64, configDigest: ImageDigest,
        layers: [ExportedLayer]
    ) {
        self.name = name
        self.tag = tag
        self.manifestDigest = manifestDigest
        self.manifestSize = manifestSize
        self.configDigest = configDigest
        self.layers = layers
    }
}
