import UnionMount

/// One image picked out of a layout or an archive, its metadata read and verified: what an importer needs to
/// apply each layer and check it (``LayerStore/importImage(_:name:applyLayer:)``).
public struct ResolvedImage: Sendable, Hashable {
    /// The name it was selected by or is known by: a layout entry's `org.opencontainers.image.ref.name`, an
    /// archive's repo tag; nil when it has none.
    public var reference: String?
    /// The manifest's descriptor; nil for a `docker save` archive without an OCI index (it holds no manifest).
    public var manifestDescriptor: ImageDescriptor?
    /// The manifest; nil as for ``manifestDescriptor``.
    public var manifest: ImageManifest?
    /// The config's digest (Docker's image id).
    public var configDigest: ImageDigest
    /// The config.
    public var config: ImageConfig
    /// The config exactly as read (its SHA-256 is ``configDigest``).
    public var configBytes: [UInt8]
    /// The manifest exactly as read, when there is one (its SHA-256 is the manifest digest).
    public var manifestBytes: [UInt8]?
    /// The layers, bottom first.
    public var layers: [ResolvedLayer]

    /// The manifest's digest, when there is a manifest.
    public var manifestDigest: ImageDigest? { manifestDescriptor?.digest }

    /// The chain id of the top layer: the image's root filesystem as a whole; nil for an image of no layers.
    public var chainID: ImageDigest? { layers.last?.chainID }

    /// Builds the layers from the manifest's (or archive's) blobs and the config's diff ids, computing each chain
    /// id.
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` naming `file` when the counts differ.
    static func layers(
        blobs: [LayerBlob], diffIDs: [ImageDigest], file: String
    ) throws(UnionMountError) -> [ResolvedLayer] {
        guard blobs.count == diffIDs.count else {
            throw UnionMountError.malformed(
                "\(file): the manifest lists \(blobs.count) layers, the config's rootfs.diff_ids \(diffIDs.count)",
                input: file)
        }
        var layers: [ResolvedLayer] = []
        var parent: ImageDigest?
        for (blob, diffID) in zip(blobs, diffIDs) {
            let chainID = ImageDigest.chainID(parent: parent, diffID: diffID)
            layers.append(ResolvedLayer(blob: blob, diffID: diffID, chainID: chainID))
            parent = chainID
        }
        return layers
    }
}

/// Where a layer's tar stream is, and what it must match before it is decompressed.
public struct LayerBlob: Sendable, Hashable {
    /// The layer's descriptor from the manifest (digest and size of the stream as stored, its media type); nil
    /// in a `docker save` archive's `manifest.json` form, which names only a member.
    public var descriptor: ImageDescriptor?
    /// The compression of the stream; nil when it is not declared (a `docker save` member: detect it).
    public var compression: LayerCompression?
    /// Whether the layer is marked non-distributable (see ``LayerMediaType``).
    public var nonDistributable: Bool
    /// The archive member holding the stream (`<id>/layer.tar`, `blobs/sha256/<hex>`); nil in a layout, where
    /// the blob is `blobs/sha256/<descriptor digest>`.
    public var member: String?

    /// A layer blob.
    public init(
        descriptor: ImageDescriptor?, compression: LayerCompression?, nonDistributable: Bool = false,
        member: String? = nil
    ) {
        self.descriptor = descriptor
        self.compression = compression
        self.nonDistributable = nonDistributable
        self.member = member
    }
}

/// One layer of a ``ResolvedImage``.
public struct ResolvedLayer: Sendable, Hashable {
    /// Where the stream is and what it must match as stored.
    public var blob: LayerBlob
    /// The digest the uncompressed tar must have (the config's `rootfs.diff_ids` entry).
    public var diffID: ImageDigest
    /// The chain id: this layer with everything below it; its hex digits are the layer's id in a
    /// ``LayerStore``.
    public var chainID: ImageDigest

    /// A layer.
    public init(blob: LayerBlob, diffID: ImageDigest, chainID: ImageDigest) {
        self.blob = blob
        self.diffID = diffID
        self.chainID = chainID
    }
}

/// Which image of a layout or an archive to read.
public enum ImageSelector: Sendable, Hashable {
    /// The only image there is; with several, the ones for the platform asked for.
    case only
    /// The entries of `index.json` whose `org.opencontainers.image.ref.name` is this (a layout), or the image
    /// with this repo tag (a `docker save` archive).
    case tag(String)
    /// The manifest with this digest, in `index.json` or an index below it.
    case digest(ImageDigest)
}
