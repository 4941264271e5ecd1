import SystemPackage
import UnionMount

extension LayerStore {
    /// Every image, sorted by name (reads `images/*.conf`).
    public func images() throws(UnionMountError) -> [StoreImage] {
        var images: [StoreImage] = []
        for name in try StoreFiles.names(in: imagesDirectory) where Self.isImageRecordName(name) {
            if let image = try readImage(file: imagesDirectory.appending(name: name)) { images.append(image) }
        }
        return images.sorted { $0.name < $1.name }
    }

    /// The image `name` (`name[:tag]`, the tag `latest` when omitted).
    ///
    /// - Throws: `UnionMountError.Code.invalidArgument` for a name that is not an image name;
    ///   `UnionMountError.Code.notFound` when none is recorded; `UnionMountError.Code.malformedInput` for a damaged
    ///   record.
    public func image(named name: String) throws(UnionMountError) -> StoreImage {
        let reference = try ImageReference(parsing: name)
        guard let image = try readImage(named: reference) else {
            throw UnionMountError(code: .notFound, message: "the store has no image \(reference)", input: name)
        }
        return image
    }

    /// The config of the image `name`, exactly as imported (its SHA-256 is ``StoreImage/configDigest``).
    ///
    /// - Throws: as ``image(named:)``; `UnionMountError.Code.malformedInput` when the stored config no longer
    ///   matches its digest.
    public func imageConfig(named name: String) throws(UnionMountError) -> [UInt8] {
        let image = try image(named: name)
        let file = imageBlobsDirectory.appending(image.configDigest.hex)
        guard let bytes = try StoreFiles.readBlob(file), SHA256.digest(of: bytes) == image.configDigest else {
            throw UnionMountError.malformed(
                "the config \(image.configDigest) of \(image.name) is missing or damaged", input: file.readable)
        }
        return bytes
    }

    /// Imports `image` as `name`: each layer not yet in the store (by chain id) is built by `applyLayer`, then
    /// the image is recorded (``recordImage(_:name:)``). ``importImage(from:name:options:progress:)`` is the same
    /// with the store's own tar applier plugged in; this form is for layers unpacked some other way.
    ///
    /// `applyLayer` gets the layer and a ``LayerBuilder`` whose directory it fills from the layer's tar stream,
    /// and returns the diff id it computed while reading the uncompressed stream; a diff id other than the
    /// config's abandons the layer. Layers already present are skipped, so a base layer shared by two images is
    /// applied once; a layer another process commits meanwhile is taken as is.
    ///
    /// On any failure nothing is recorded, and the layers this call created are removed again (unless another
    /// image or container took them up meanwhile). A process killed midway leaves the layers it committed as
    /// layers no image uses: the next import of an image that has them reuses them, and ``prune()`` removes them.
    ///
    /// - Throws: `UnionMountError.Code.invalidArgument` for a bad name; `UnionMountError.Code.unsupported` for
    ///   more layers than overlay stacks; `UnionMountError.Code.malformedInput` naming the layer for a diff id
    ///   mismatch; `UnionMountError.Code.invalidState` when a layer of a chain id's name exists but was not made
    ///   by an image import of that diff id; what `applyLayer` throws; what ``recordImage(_:name:)`` throws.
    @discardableResult
    public func importImage(
        _ image: ResolvedImage, name: String, applyLayer: (ResolvedLayer, LayerBuilder) throws -> ImageDigest
    ) throws -> StoreImage {
        try importChain(image, name: name) { _, layer, builder in (try applyLayer(layer, builder), nil) }.image
    }

    /// The one import path: reuses or builds each layer of `image` bottom first (`apply` fills a builder and
    /// returns the diff id it computed, and the tar's summary when the store applied it), then records the image;
    /// `layerDone` is told the position of each layer finished.
    func importChain(
        _ image: ResolvedImage, name: String, layerDone: (Int) -> Void = { _ in },
        apply: (Int, ResolvedLayer, LayerBuilder) throws -> (ImageDigest, LayerArchiveSummary?)
    ) throws -> ImportedImage {
        _ = try ImageReference(parsing: name)
        guard image.layers.count <= OverlaySpec.maximumLayerCount else {
            throw UnionMountError(
                code: .unsupported,
                message: "the image has \(image.layers.count) layers; overlay stacks at most "
                    + "\(OverlaySpec.maximumLayerCount)", input: name)
        }
        var created: [String] = []
        var imported: [ImportedLayer] = []
        do {
            var parent: String?
            for (position, layer) in image.layers.enumerated() {
                let id = layer.chainID.hex
                defer { parent = id }
                let reused = ImportedLayer(
                    chainID: layer.chainID, diffID: layer.diffID, blobDigest: layer.blob.descriptor?.digest,
                    layerID: id, outcome: .reused, bytesRead: 0, uncompressedBytes: 0, entries: 0)
                if try reusable(id, parent: parent, layer: layer) {
                    imported.append(reused)
                    layerDone(position)
                    continue
                }
                guard let builder = try beginImageLayer(id, parent: parent) else {
                    guard try reusable(id, parent: parent, layer: layer) else { continue }
                    imported.append(reused)
                    layerDone(position)
                    continue
                }
                builder.diffID = layer.diffID
                let diffID: ImageDigest
                let summary: LayerArchiveSummary?
                do {
                    (diffID, summary) = try apply(position, layer, builder)
                } catch {
                    try? builder.abandon()
                    throw error
                }
                guard diffID == layer.diffID else {
                    try? builder.abandon()
                    throw UnionMountError.malformed(
                        "layer \(position) (\(layer.blob.descriptor?.digest.description ?? layer.blob.member ?? "")) "
                            + "unpacks to diff id \(diffID), its config says \(layer.diffID)",
                        input: layer.blob.descriptor?.digest.description ?? layer.blob.member
                            ?? layer.diffID.description)
                }
                if try Self.commitImageLayer(builder) {
                    created.append(id)
                    StoreFaultInjection.point("import-image.layer-committed")
                } else {
                    _ = try reusable(id, parent: parent, layer: layer)
                }
                imported.append(
                    ImportedLayer(
                        chainID: layer.chainID, diffID: layer.diffID,
                        blobDigest: summary?.digest ?? layer.blob.descriptor?.digest, layerID: id, outcome: .applied,
                        bytesRead: summary?.size ?? 0, uncompressedBytes: summary?.uncompressedSize ?? 0,
                        entries: summary?.entries ?? 0))
                layerDone(position)
            }
            StoreFaultInjection.point("import-image.layers-ready")
            return ImportedImage(image: try recordImage(image, name: name), layers: imported)
        } catch {
            for id in created.reversed() { try? removeLayer(id) }
            throw error
        }
    }

    /// Whether the layer `id` is already in the store as `layer` of an image (on `parent`, with its diff id).
    ///
    /// - Throws: `UnionMountError.Code.invalidState` when a layer of that id exists but is not that: made by
    ///   hand under a chain id's name, or on another parent.
    private func reusable(_ id: String, parent: String?, layer: ResolvedLayer) throws(UnionMountError) -> Bool {
        guard let stored = try readLayer(id) else { return false }
        guard stored.diffID == layer.diffID, stored.parent == parent, stored.owner == nil else {
            throw UnionMountError.invalidState(
                "the store has a layer \(id) that is not the image layer of chain id \(layer.chainID) (its diff id is "
                    + "\(stored.diffID?.description ?? "not recorded: it was not made by an image import"), its parent "
                    + "\(stored.parent ?? "none")); remove it to import this image", input: id)
        }
        return true
    }

    /// Records `image` as `name`, every layer of it already in the store (ids = chain ids' hex, each on the one
    /// below), its config and manifest kept beside the record. A record of the same name is replaced, and the
    /// layers only it used are freed as by ``removeImage(named:)``.
    ///
    /// Under the store lock: the config and manifest are written to `images/blobs/<hex>` (fsync'ed), then the
    /// record `images/<hash of name>.conf` by one rename(2), the commit point.
    ///
    /// - Throws: `UnionMountError.Code.invalidArgument` for a bad name; `UnionMountError.Code.notFound` for a
    ///   missing layer; `UnionMountError.Code.invalidState` for a layer of that id on another parent;
    ///   `UnionMountError.Code.malformedInput` when the config or manifest bytes are not their digests'.
    @discardableResult
    public func recordImage(_ image: ResolvedImage, name: String) throws(UnionMountError) -> StoreImage {
        let reference = try ImageReference(parsing: name)
        guard SHA256.digest(of: image.configBytes) == image.configDigest else {
            throw UnionMountError.malformed("the config bytes are not \(image.configDigest)", input: name)
        }
        if let bytes = image.manifestBytes, let digest = image.manifestDigest, SHA256.digest(of: bytes) != digest {
            throw UnionMountError.malformed("the manifest bytes are not \(digest)", input: name)
        }
        let platform = image.config.platform
        let recorded = StoreImage(
            name: reference.description, manifestDigest: image.manifestDigest, configDigest: image.configDigest,
            layers: image.layers.reversed().map(\.chainID.hex), platform: platform.description)
        let trash = try locked { () throws(UnionMountError) -> [TrashEntry] in
            var parent: String?
            for layer in image.layers {
                let id = layer.chainID.hex
                guard let stored = try readLayer(id) else {
                    throw UnionMountError(
                        code: .notFound, message: "the store has no layer \(id) (chain id \(layer.chainID))", input: id)
                }
                guard stored.parent == parent else {
                    throw UnionMountError.invalidState(
                        "the layer \(id) stacks on \(stored.parent ?? "nothing"), not \(parent ?? "nothing")", input: id
                    )
                }
                parent = id
            }
            try StoreFiles.makeDirectory(imagesDirectory, mode: 0o700)
            try StoreFiles.makeDirectory(imageBlobsDirectory, mode: 0o700)
            try writeBlob(image.configBytes, digest: image.configDigest)
            if let bytes = image.manifestBytes, let digest = image.manifestDigest {
                try writeBlob(bytes, digest: digest)
            }
            let previous = try readImage(named: reference)
            try recorded.record.write(to: imageRecordFile(reference))
            StoreFaultInjection.point("image.recorded")
            guard let previous else { return [] }
            return try freeUnused(previous)
        }
        for entry in trash { try entry.remove() }
        return recorded
    }

    /// Removes the image `name`, and then each of its layers, top first, that no other image, no container and
    /// no layer built on it uses (see ``users(ofLayer:)``); the first layer still used keeps itself and all
    /// below. The config and manifest go with the last image that names them.
    ///
    /// Under the store lock the record is deleted (the commit point), then the freed layers are renamed into
    /// `trash/` and deleted after the lock is released; a crash after the commit leaves the unused layers as
    /// plain layers.
    ///
    /// - Throws: `UnionMountError.Code.invalidArgument` for a bad name; `UnionMountError.Code.notFound`.
    public func removeImage(named name: String) throws(UnionMountError) {
        let reference = try ImageReference(parsing: name)
        let trash = try locked { () throws(UnionMountError) -> [TrashEntry] in
            guard let image = try readImage(named: reference) else {
                throw UnionMountError(code: .notFound, message: "the store has no image \(reference)", input: name)
            }
            let file = imageRecordFile(reference)
            do throws(Errno) {
                try FileSystem.unlink(file)
            } catch {
                throw UnionMountError.systemCall(
                    "unlink", error, message: "cannot remove \(file.readable)", input: name)
            }
            try StoreFiles.syncDirectory(imagesDirectory)
            StoreFaultInjection.point("image.unrecorded")
            return try freeUnused(image)
        }
        for entry in trash { try entry.remove() }
    }

    // MARK: Implementation

    /// A builder for the layer `id`, nil when another process created it meanwhile.
    private func beginImageLayer(_ id: String, parent: String?) throws(UnionMountError) -> LayerBuilder? {
        do {
            return try beginLayer(id, parent: parent)
        } catch {
            if error.code == .alreadyExists { return nil }
            throw error
        }
    }

    /// Commits `builder`; false (the builder abandoned) when another process committed the same layer first.
    private static func commitImageLayer(_ builder: LayerBuilder) throws(UnionMountError) -> Bool {
        do {
            try builder.commit()
            return true
        } catch {
            guard error.code == .alreadyExists else { throw error }
            try? builder.abandon()
            return false
        }
    }

    var imagesDirectory: FilePath { root.appending("images") }
    var imageBlobsDirectory: FilePath { imagesDirectory.appending("blobs") }

    func imageRecordFile(_ reference: ImageReference) -> FilePath {
        imagesDirectory.appending(StoreImage.recordName(reference.description))
    }

    static func isImageRecordName(_ name: [UInt8]) -> Bool {
        name.count == 69 && name.suffix(5).elementsEqual(".conf".utf8)
            && name.prefix(64).allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    func readImage(named reference: ImageReference) throws(UnionMountError) -> StoreImage? {
        try readImage(file: imageRecordFile(reference))
    }

    func readImage(file: FilePath) throws(UnionMountError) -> StoreImage? {
        guard let record = try StoreRecord.read(file) else { return nil }
        return try StoreImage(record: record, file: file)
    }

    /// The images that use the layer `id` (it is in their chain).
    func imageUsers(ofLayer id: String) throws(UnionMountError) -> [String] {
        try images().filter { $0.layers.contains(id) }.map { "image \($0.name)" }
    }

    /// Writes a content-addressed blob, unless it is already there; call under the store lock.
    private func writeBlob(_ bytes: [UInt8], digest: ImageDigest) throws(UnionMountError) {
        let file = imageBlobsDirectory.appending(digest.hex)
        if let existing = try StoreFiles.readBlob(file), SHA256.digest(of: existing) == digest { return }
        try StoreFiles.writeAtomically(bytes, to: file)
    }

    /// Moves to trash the layers of `image` (no longer recorded) that nothing uses any more, top first, and
    /// deletes its blobs when no other image names them; call under the store lock.
    private func freeUnused(_ image: StoreImage) throws(UnionMountError) -> [TrashEntry] {
        let others = try images()
        let kept = Set(others.flatMap(\.layers))
        var trash: [TrashEntry] = []
        for id in image.layers {
            if kept.contains(id) { break }
            guard try readLayer(id) != nil else { continue }
            guard try users(ofLayer: id).isEmpty else { break }
            trash.append(try moveToTrash(layerDirectory(id), id: id))
        }
        let named = Set(others.flatMap { [$0.configDigest] + ($0.manifestDigest.map { [$0] } ?? []) })
        for digest in [image.configDigest] + (image.manifestDigest.map { [$0] } ?? []) where !named.contains(digest) {
            try? FileSystem.unlink(imageBlobsDirectory.appending(digest.hex))
        }
        return trash
    }

    /// What the argument `image` of ``createContainer(_:image:idMapping:initialize:)`` means: a layer id, or the name of
    /// a recorded image (then its top layer); both existing and differing is ambiguous.
    func containerBase(_ image: String?) throws(UnionMountError) -> String? {
        guard let image else { return nil }
        let isID = (try? StoreIdentifier.validate(image, input: "image")) != nil
        var layerExists = false
        if isID { layerExists = try readLayer(image) != nil }
        var recorded: StoreImage?
        if let reference = try? ImageReference(parsing: image) { recorded = try readImage(named: reference) }
        switch (layerExists, recorded) {
        case (_, nil):
            if !isID, (try? ImageReference(parsing: image)) != nil {
                throw UnionMountError(
                    code: .notFound, message: "the store has no image or layer \(image)", input: image)
            }
            try StoreIdentifier.validate(image, input: "image")
            return image
        case (false, let recorded?):
            return recorded.topLayer
        case (true, let recorded?):
            guard recorded.topLayer == image else {
                throw UnionMountError.invalidArgument(
                    "\(image) is both a layer and the image \(recorded.name), whose top layer is another: ambiguous",
                    input: "image")
            }
            return image
        }
    }
}

extension StoreFiles {
    /// The largest image blob (config or manifest) read back; the import limits are far below it.
    static let maximumBlobSize = 1 << 30

    /// The contents of a stored image blob, nil when it does not exist (open(2) with `O_NOFOLLOW`, read(2)).
    static func readBlob(_ path: FilePath) throws(UnionMountError) -> [UInt8]? {
        do {
            return try FileSystem.readAll(path, options: [.noFollow], limit: maximumBlobSize)
        } catch {
            if error.systemCall == "open" && error.errno == .noSuchFileOrDirectory { return nil }
            throw UnionMountError.systemCall(
                error.systemCall, error.errno, message: "cannot read \(path.readable)", input: path.readable)
        }
    }
}
