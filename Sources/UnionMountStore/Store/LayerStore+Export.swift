import SystemPackage
import UnionMount

extension LayerStore {
    /// Writes the layer `id` as an OCI layer tar to the new file `file` (see ``LayerArchiveWriter``): its own
    /// contents, not the chain below it.
    ///
    /// - Throws: `UnionMountError.Code.notFound` for a missing layer; what
    ///   ``LayerArchiveWriter/write(layer:to:)-(_,FilePath)`` throws.
    @discardableResult
    public func exportLayer(_ id: String, to file: FilePath, options: LayerExportOptions = LayerExportOptions())
        throws(UnionMountError) -> ExportedLayer
    {
        let layer = try layer(id)
        return try LayerArchiveWriter(whiteoutFormat: whiteoutFormat, options: options).write(
            layer: layer.directory, to: file)
    }

    /// Writes the image `name` to `destination`: every layer's tar regenerated from the store's layer directory
    /// (see ``LayerArchiveWriter``), the config with `rootfs.diff_ids` replaced by the regenerated tars' diff ids
    /// (everything else as recorded), and an OCI manifest naming them.
    ///
    /// The store keeps no layer blobs, imported or committed: the layer directories are what it holds, and the
    /// tars written from them are the same bytes every time (same tree, same libarchive and compressor), so a
    /// layer this store committed exports with the digest its record names. An imported layer's tar differs
    /// from the original blob (another tar writer wrote that), so its diff id, the config digest and the
    /// manifest digest differ from the imported ones, consistently: the written config names the written tars.
    ///
    /// A docker archive always holds plain layer tars (as `docker save` writes them); `options.compression`
    /// applies to OCI layouts.
    ///
    /// - Throws: `UnionMountError.Code.invalidArgument` for an empty layout tag or a docker archive tag that is
    ///   not an image name; `UnionMountError.Code.notFound` (no such image, a layer removed meanwhile);
    ///   `UnionMountError.Code.malformedInput` for a damaged record or config or an existing layout's damaged
    ///   `index.json`/`oci-layout`; what the layer writer throws.
    @discardableResult
    public func exportImage(
        named name: String, to destination: ImageDestination, options: LayerExportOptions = LayerExportOptions()
    ) throws(UnionMountError) -> ExportedImage {
        let image = try image(named: name)
        let reference = try ImageReference(parsing: image.name)
        let configBytes = try imageConfig(named: name)
        switch destination {
        case .ociLayout(let directory, let tag):
            let tag = tag ?? reference.tag
            guard !tag.isEmpty, tag.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
                throw UnionMountError.invalidArgument(
                    "the tag \(tag.debugDescription) is empty or holds control characters", input: "tag")
            }
            let layout = try OCILayoutWriter(directory: directory)
            return try writeImage(image, configBytes: configBytes, into: layout, tag: tag, options: options)
        case .dockerArchive(let file, let tag):
            let repoTag = tag ?? image.name
            _ = try ImageReference(parsing: repoTag, input: "tag")
            let parent = file.removingLastComponent()
            let scratch = (parent.isEmpty ? FilePath(".") : parent).appending(OCILayoutWriter.temporaryName())
            defer { try? StoreFiles.removeTree(scratch) }
            let layout = try OCILayoutWriter(directory: scratch)
            var plain = options
            plain.compression = .none
            let exported = try writeImage(
                image, configBytes: configBytes, into: layout, tag: try ImageReference(parsing: repoTag).tag,
                options: plain)
            let manifest = DockerArchiveWriter.manifestJSON(
                config: exported.configDigest, repoTags: [repoTag], layers: exported.layers.map(\.digest))
            try OCILayoutWriter.replace(scratch.appending("manifest.json"), with: manifest)
            try DockerArchiveWriter.pack(layout: scratch, to: file, modificationTime: options.clampTimes ?? 0)
            var result = exported
            result.tag = repoTag
            return result
        }
    }

    /// Writes the layers, config and manifest of `image` into `layout` and tags the manifest.
    private func writeImage(
        _ image: StoreImage, configBytes: [UInt8], into layout: OCILayoutWriter, tag: String,
        options: LayerExportOptions
    ) throws(UnionMountError) -> ExportedImage {
        let writer = LayerArchiveWriter(whiteoutFormat: whiteoutFormat, options: options)
        var layers: [ExportedLayer] = []
        for id in image.layers.reversed() {
            guard let layer = try readLayer(id) else {
                throw UnionMountError(
                    code: .notFound, message: "the layer \(id) of \(image.name) is not in the store", input: id)
            }
            layers.append(
                try layout.writeBlob { (fd) throws(UnionMountError) -> ExportedLayer in
                    try writer.write(layer: layer.directory, to: fd)
                })
        }
        let file = "the config of \(image.name)"
        let parsed = try ImageConfig(parsing: configBytes, file: file)
        guard parsed.diffIDs.count == layers.count else {
            throw UnionMountError.malformed(
                "\(file) lists \(parsed.diffIDs.count) diff ids for \(layers.count) layers", input: image.name)
        }
        let config = try ImageDocuments.config(configBytes, replacingDiffIDs: layers.map(\.diffID), file: file)
        let configDigest = try layout.writeBlob(config)
        let manifest = ImageDocuments.manifest(
            config: ImageDescriptor(
                mediaType: ImageMediaType.ociConfig, digest: configDigest, size: Int64(config.count)),
            layers: layers.map {
                ImageDescriptor(
                    mediaType: ImageDocuments.layerMediaType($0.compression), digest: $0.digest, size: $0.size)
            })
        let manifestDigest = try layout.writeBlob(manifest)
        try layout.tag(
            ImageDescriptor(
                mediaType: ImageMediaType.ociManifest, digest: manifestDigest, size: Int64(manifest.count),
                platform: parsed.platform),
            as: tag)
        return ExportedImage(
            name: image.name, tag: tag, manifestDigest: manifestDigest, manifestSize: Int64(manifest.count),
            configDigest: configDigest, layers: layers)
    }
}
