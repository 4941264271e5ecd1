import SystemPackage
import UnionMount

extension LayerStore {
    /// Commits the container's changes as a new image `name` (`docker commit`): a layer on the container's image
    /// (``commit(container:as:)``'s changes), identified like every image layer by its chain id, and an image
    /// record whose config is the base image's with the layer's diff id appended to `rootfs.diff_ids`, a
    /// `history` entry and `created` set, and whose OCI manifest lists the base image's layer descriptors and the
    /// new layer's.
    ///
    /// The layer records its diff id, like an imported one (``StoreLayer/diffID``). The new layer's diff id,
    /// digest and size are those of the tar ``LayerArchiveWriter`` writes from it with
    /// `options` (computed by writing the tar to `/dev/null`: the store keeps no blobs, see
    /// ``exportImage(named:to:options:)``, which writes the same tar again). `created` is
    /// `options.clampTimes` when given, else now.
    ///
    /// - Parameters:
    ///   - containerID: the container.
    ///   - name: the new image's name (replacing a record of the same name, as ``recordImage(_:name:)``).
    ///   - base: the image the container was created from; nil finds the recorded image whose top layer is the
    ///     container's image layer (the one sorted first by name when several share it). A container of no
    ///     image layers commits an image of one layer, with a config for this machine's platform.
    ///   - options: how the layer's tar is written (its compression is the manifest's layer type).
    /// - Throws: `UnionMountError.Code.invalidArgument` for a bad name, or when the container's image layer is
    ///   no recorded image's top layer; `UnionMountError.Code.notFound`; what ``commit(container:as:)`` and
    ///   ``recordImage(_:name:)`` throw. Nothing is left behind on failure.
    @discardableResult
    public func commit(
        container containerID: String, asImage name: String, base: String? = nil,
        options: LayerExportOptions = LayerExportOptions()
    ) throws(UnionMountError) -> StoreImage {
        _ = try ImageReference(parsing: name)
        let container = try container(containerID)
        let baseImage = try commitBase(container, named: base)
        let baseConfig =
            try baseImage.map { (image) throws(UnionMountError) in try imageConfig(named: image.name) }
            ?? ImageDocuments.emptyConfig(platform: .host)
        let parsedBase = try ImageConfig(parsing: baseConfig, file: "the config of \(baseImage?.name ?? "scratch")")
        var parentChain: ImageDigest?
        for diffID in parsedBase.diffIDs { parentChain = ImageDigest.chainID(parent: parentChain, diffID: diffID) }
        guard parentChain?.hex == container.image else {
            throw UnionMountError.invalidArgument(
                "the container \(containerID) stacks on \(container.image ?? "no layer"), not on the image "
                    + "\(baseImage?.name ?? "") (chain \(parentChain?.description ?? "empty"))", input: "base")
        }
        let (layer, created) = try commitImageLayer(container, parentChain: parentChain, options: options)
        do {
            let image = try recordCommitted(
                layer, baseImage: baseImage, baseConfig: baseConfig, name: name, containerID: containerID,
                options: options)
            return image
        } catch {
            if created { try? removeLayer(layer.chainID.hex) }
            throw error
        }
    }

    /// The image a commit builds on.
    private func commitBase(_ container: StoreContainer, named base: String?) throws(UnionMountError) -> StoreImage? {
        if let base {
            let image = try image(named: base)
            guard image.topLayer == container.image else {
                throw UnionMountError.invalidArgument(
                    "the container \(container.id) does not stack on the image \(image.name)", input: "base")
            }
            return image
        }
        guard let top = container.image else { return nil }
        guard let image = try images().first(where: { $0.topLayer == top }) else {
            throw UnionMountError.invalidArgument(
                "the container \(container.id)'s image layer \(top) is no recorded image's top layer: name the base",
                input: "base")
        }
        return image
    }

    /// The committed layer: its tar's digests and chain id.
    private struct CommittedLayer {
        var exported: ExportedLayer
        var chainID: ImageDigest
    }

    /// Exports the container's changes into a scratch layer, measures its tar, and commits it under its chain
    /// id (unless a layer of that id exists: the same changes on the same base). Returns whether it was created.
    private func commitImageLayer(
        _ container: StoreContainer, parentChain: ImageDigest?, options: LayerExportOptions
    ) throws(UnionMountError) -> (CommittedLayer, Bool) {
        let scratch = try beginLayer(nil, parent: container.image)
        do throws(UnionMountError) {
            try StoreFiles.removeTree(scratch.directory)
            try LayerChanges.export(
                upper: container.upperDirectory, lowers: lowerDirectories(container), format: whiteoutFormat,
                to: scratch.directory, as: whiteoutFormat)
            let rootTimes = try LayerIO.status(scratch.directory)
            let sink: FileDescriptor
            do {
                sink = try FileSystem.open("/dev/null", .writeOnly)
            } catch {
                throw UnionMountError.systemCall("open", error, message: "cannot open /dev/null", input: "/dev/null")
            }
            let exported: ExportedLayer
            do {
                defer { FileSystem.close(sink) }
                exported = try LayerArchiveWriter(whiteoutFormat: whiteoutFormat, options: options).write(
                    layer: scratch.directory, to: sink)
            }
            let chainID = ImageDigest.chainID(parent: parentChain, diffID: exported.diffID)
            let layer = CommittedLayer(exported: exported, chainID: chainID)
            var created = false
            if try readLayer(chainID.hex) == nil {
                let builder: LayerBuilder
                do {
                    builder = try beginLayer(chainID.hex, parent: container.image)
                } catch  where error.code == .alreadyExists {
                    try scratch.abandon()
                    return (layer, false)
                }
                // An image layer like an imported one: reused by imports of the same chain, freed by prune().
                builder.diffID = exported.diffID
                do throws(UnionMountError) {
                    do throws(Errno) {
                        try FileSystem.removeDirectory(builder.directory)
                        try FileSystem.rename(scratch.directory, to: builder.directory, replacing: false)
                    } catch {
                        throw UnionMountError.systemCall(
                            "rename", error, message: "cannot move the committed layer into place",
                            input: builder.directory.readable)
                    }
                    try LayerIO.setTimes(builder.directory, of: rootTimes)
                    try builder.commit()
                    created = true
                } catch  where error.code == .alreadyExists {
                    try? builder.abandon()
                } catch {
                    try? builder.abandon()
                    throw error
                }
            }
            try scratch.abandon()
            return (layer, created)
        } catch {
            try? scratch.abandon()
            throw error
        }
    }

    /// Records the committed image: config, manifest, chain.
    private func recordCommitted(
        _ layer: CommittedLayer, baseImage: StoreImage?, baseConfig: [UInt8], name: String, containerID: String,
        options: LayerExportOptions
    ) throws(UnionMountError) -> StoreImage {
        let created = RFC3339.format(seconds: options.clampTimes ?? ProcessFacts.realtimeSeconds())
        let config = try ImageDocuments.config(
            baseConfig, appending: layer.exported.diffID, created: created,
            createdBy: "unionmount store commit \(containerID)", file: "the config of \(baseImage?.name ?? "scratch")")
        let configDigest = SHA256.digest(of: config)
        let parsedConfig = try ImageConfig(parsing: config, file: "the committed config")
        let newDescriptor = ImageDescriptor(
            mediaType: ImageDocuments.layerMediaType(layer.exported.compression), digest: layer.exported.digest,
            size: layer.exported.size)
        var layerDescriptors: [ImageDescriptor]?
        if let baseImage {
            if let digest = baseImage.manifestDigest,
                let bytes = try StoreFiles.readBlob(imageBlobsDirectory.appending(digest.hex)),
                SHA256.digest(of: bytes) == digest
            {
                let manifest = try ImageManifest(parsing: bytes, file: "the manifest of \(baseImage.name)")
                layerDescriptors =
                    zip(manifest.layers, manifest.layerTypes).map { descriptor, type in
                        var converted = descriptor
                        converted.mediaType = ImageDocuments.layerMediaType(type.compression)
                        return converted
                    } + [newDescriptor]
            }
        } else {
            layerDescriptors = [newDescriptor]
        }
        var manifestBytes: [UInt8]?
        var manifestDescriptor: ImageDescriptor?
        var manifest: ImageManifest?
        if let layerDescriptors {
            let bytes = ImageDocuments.manifest(
                config: ImageDescriptor(
                    mediaType: ImageMediaType.ociConfig, digest: configDigest, size: Int64(config.count)),
                layers: layerDescriptors)
            manifestBytes = bytes
            manifestDescriptor = ImageDescriptor(
                mediaType: ImageMediaType.ociManifest, digest: SHA256.digest(of: bytes), size: Int64(bytes.count))
            manifest = try ImageManifest(parsing: bytes, file: "the committed manifest")
        }
        let blobs =
            layerDescriptors?.map { LayerBlob(descriptor: $0, compression: LayerMediaType($0.mediaType)?.compression) }
            ?? parsedConfig.diffIDs.map { _ in LayerBlob(descriptor: nil, compression: nil) }
        let resolved = ResolvedImage(
            reference: name, manifestDescriptor: manifestDescriptor, manifest: manifest, configDigest: configDigest,
            config: parsedConfig, configBytes: config, manifestBytes: manifestBytes,
            layers: try ResolvedImage.layers(blobs: blobs, diffIDs: parsedConfig.diffIDs, file: "the committed image"))
        guard resolved.chainID == layer.chainID else {
            throw UnionMountError.invalidState(
                "the committed image's chain \(resolved.chainID?.description ?? "") is not its layer's \(layer.chainID)",
                input: name)
        }
        return try recordImage(resolved, name: name)
    }
}
