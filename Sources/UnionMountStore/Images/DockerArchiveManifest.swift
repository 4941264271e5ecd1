import UnionMount

/// The `manifest.json` of a `docker save` archive: one entry per image, naming its config member, its tags
/// and its layer members, bottom first.
///
///     [{"Config": "<hex>.json", "RepoTags": ["debian:12"], "Layers": ["<id>/layer.tar", …]}]
///
/// Docker 1.10 to 24 name members `<hex>.json` and `<id>/layer.tar`; Docker 25 and later
/// `blobs/sha256/<hex>` (and also write an OCI `index.json`). Every member name is checked by
/// ``ArchiveMemberName/validate(_:origin:)`` and every tag by ``ImageReference``.
public struct DockerArchiveManifest: Sendable, Hashable, Codable {
    /// One image of the archive.
    public struct Entry: Sendable, Hashable, Codable {
        /// The config member.
        public var config: String
        /// The image's names (`RepoTags`, `null` read as none).
        public var repoTags: [ImageReference]
        /// The layer members, bottom first.
        public var layers: [String]
        /// `LayerSources`: descriptors of foreign (non-distributable) layers, by diff id.
        public var layerSources: [ImageDigest: ImageDescriptor]?
    }

    /// The images, in file order.
    public var entries: [Entry]

    /// Parses `manifest.json` strictly (see ``JSONReader``).
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` naming the file and field: malformed JSON, a repeated
    ///   key, not an array of objects, a missing `Config` or `Layers`, a member name that is absolute, holds
    ///   `..` or is otherwise not a plain relative name, a repo tag that is not an image name.
    public init(parsing bytes: [UInt8], file: String = "manifest.json") throws(UnionMountError) {
        let document = try JSONField.document(bytes, file: file)
        var entries: [Entry] = []
        for element in try document.elements() {
            let object = try element.object()
            let configField = try object.required("Config")
            let config = try configField.string()
            try ArchiveMemberName.validate(config, origin: configField.place)
            var tags: [ImageReference] = []
            for tag in try object.optional("RepoTags")?.elements() ?? [] {
                do {
                    tags.append(try ImageReference(parsing: try tag.string(), input: tag.place))
                } catch  where error.code == .invalidArgument {
                    throw tag.malformed(error.message)
                }
            }
            var layers: [String] = []
            for layer in try object.required("Layers").elements() {
                let name = try layer.string()
                try ArchiveMemberName.validate(name, origin: layer.place)
                layers.append(name)
            }
            var sources: [ImageDigest: ImageDescriptor]?
            if let field = try object.optional("LayerSources") {
                var map: [ImageDigest: ImageDescriptor] = [:]
                for (key, value) in try field.object().fields {
                    map[try value.digest(parsing: key)] = try ImageDescriptor(json: value)
                }
                sources = map
            }
            entries.append(Entry(config: config, repoTags: tags, layers: layers, layerSources: sources))
        }
        self.entries = entries
    }
}
