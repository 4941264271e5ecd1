import UnionMount

/// An OCI image index (`application/vnd.oci.image.index.v1+json`) or a Docker manifest list
/// (`application/vnd.docker.distribution.manifest.list.v2+json`): the manifests of one image for several
/// platforms, or, as a layout's `index.json`, the images of the layout.
public struct ImageIndex: Sendable, Hashable, Codable {
    /// Always 2.
    public var schemaVersion: Int
    /// The media type the document declares; nil when it declares none (a layout's `index.json` may not).
    public var mediaType: String?
    /// The entries.
    public var manifests: [ImageDescriptor]
    /// The index's annotations.
    public var annotations: [String: String]?

    /// An index.
    public init(
        schemaVersion: Int = 2, mediaType: String? = ImageMediaType.ociIndex, manifests: [ImageDescriptor],
        annotations: [String: String]? = nil
    ) {
        self.schemaVersion = schemaVersion
        self.mediaType = mediaType
        self.manifests = manifests
        self.annotations = annotations
    }

    /// Parses an index strictly (see ``JSONReader``).
    ///
    /// - Parameters:
    ///   - bytes: the document.
    ///   - file: its name in errors (`index.json`, `blobs/sha256/<hex>`).
    ///   - expectedMediaType: the media type the referring descriptor gave; the document's own `mediaType`, when
    ///     present, must equal it.
    /// - Throws: `UnionMountError.Code.malformedInput` naming the file and field (malformed JSON, a repeated key,
    ///   `schemaVersion` not 2, a descriptor without digest or with a negative size, a document that also has a
    ///   manifest's `config` or `layers`); `UnionMountError.Code.unsupported` for a declared media type that is
    ///   not an index's.
    public init(parsing bytes: [UInt8], file: String, expectedMediaType: String? = nil) throws(UnionMountError) {
        let document = try JSONField.document(bytes, file: file)
        let object = try document.object()
        let version = try object.required("schemaVersion")
        guard try version.integer() == 2 else { throw version.malformed("schemaVersion must be 2") }
        schemaVersion = 2
        mediaType = try object.optional("mediaType")?.string()
        if let mediaType {
            guard ImageMediaType.indexes.contains(mediaType) else {
                throw try object.required("mediaType").unsupported(
                    "\(mediaType.debugDescription) is not an image index media type")
            }
            if let expectedMediaType, expectedMediaType != mediaType {
                throw try object.required("mediaType").malformed(
                    "the document says \(mediaType), its descriptor \(expectedMediaType)")
            }
        }
        for key in ["config", "layers"] where try object.member(key) != nil {
            throw document.malformed("an index with a manifest's \(key.debugDescription) field is ambiguous")
        }
        var manifests: [ImageDescriptor] = []
        let list = try object.required("manifests")
        for element in list.value == .null ? [] : try list.elements() {
            manifests.append(try ImageDescriptor(json: element))
        }
        self.manifests = manifests
        annotations = try object.optional("annotations")?.stringMap()
    }
}
