import UnionMount

/// An image manifest: OCI (`application/vnd.oci.image.manifest.v1+json`) or Docker schema 2
/// (`application/vnd.docker.distribution.manifest.v2+json`), `schemaVersion` 2: the image's config and its
/// layers, bottom first.
public struct ImageManifest: Sendable, Hashable, Codable {
    /// Always 2.
    public var schemaVersion: Int
    /// The manifest's media type: the one it declares, else the one its descriptor gave.
    public var mediaType: String
    /// The config blob (an OCI or Docker image config).
    public var config: ImageDescriptor
    /// The layer blobs, bottom first.
    public var layers: [ImageDescriptor]
    /// The layers' media types as the store reads them, in the order of ``layers``.
    public var layerTypes: [LayerMediaType]
    /// The manifest's annotations.
    public var annotations: [String: String]?

    /// Parses a manifest strictly (see ``JSONReader``).
    ///
    /// - Parameters:
    ///   - bytes: the document.
    ///   - file: its name in errors.
    ///   - expectedMediaType: the media type its descriptor gave, nil when there is none; the document's own
    ///     `mediaType`, when present, must equal it, and one of them must be given.
    /// - Throws: `UnionMountError.Code.malformedInput` naming the file and the field (malformed JSON, a repeated
    ///   key, no media type at all, `schemaVersion` not 2, a media type that contradicts the descriptor, a
    ///   document with an index's `manifests`, a bad descriptor); `UnionMountError.Code.unsupported` for a
    ///   well-formed manifest the store cannot use: another manifest type (Docker schema 1, an artifact), a
    ///   config that is not an image config, a layer type it does not read (``LayerMediaType``).
    public init(parsing bytes: [UInt8], file: String, expectedMediaType: String? = nil) throws(UnionMountError) {
        let document = try JSONField.document(bytes, file: file)
        let object = try document.object()
        let declared = try object.optional("mediaType")
        let declaredType = try declared?.string()
        if let declaredType, let declared {
            if ImageMediaType.dockerSchema1.contains(declaredType) {
                throw declared.unsupported("Docker schema 1 manifests are not supported (no config, no diff ids)")
            }
            guard ImageMediaType.manifests.contains(declaredType) else {
                throw declared.unsupported("\(declaredType.debugDescription) is not an image manifest media type")
            }
            if let expectedMediaType, expectedMediaType != declaredType {
                throw declared.malformed("the document says \(declaredType), its descriptor \(expectedMediaType)")
            }
        }
        guard let mediaType = declaredType ?? expectedMediaType else {
            throw document.malformed("the manifest declares no mediaType and none is known from a descriptor")
        }
        guard ImageMediaType.manifests.contains(mediaType) else {
            throw document.unsupported("\(mediaType.debugDescription) is not an image manifest media type")
        }
        self.mediaType = mediaType
        let version = try object.required("schemaVersion")
        guard try version.integer() == 2 else {
            throw version.unsupported("schemaVersion \(try version.integer()) is not supported (only 2)")
        }
        schemaVersion = 2
        if try object.member("manifests") != nil {
            throw document.malformed("a manifest with an index's \"manifests\" field is ambiguous")
        }
        let configField = try object.required("config")
        config = try ImageDescriptor(json: configField)
        guard ImageMediaType.configs.contains(config.mediaType) else {
            throw try configField.object().required("mediaType").unsupported(
                "\(config.mediaType.debugDescription) is not an image config: not a container image")
        }
        var layers: [ImageDescriptor] = []
        var layerTypes: [LayerMediaType] = []
        let list = try object.required("layers")
        for element in list.value == .null ? [] : try list.elements() {
            let layer = try ImageDescriptor(json: element)
            guard let type = LayerMediaType(layer.mediaType) else {
                throw try element.object().required("mediaType").unsupported(
                    "\(layer.mediaType.debugDescription) is not a layer type the store reads")
            }
            layers.append(layer)
            layerTypes.append(type)
        }
        self.layers = layers
        self.layerTypes = layerTypes
        annotations = try object.optional("annotations")?.stringMap()
    }
}
