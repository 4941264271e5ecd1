import SystemPackage
import UnionMount

extension LayerStore {
    /// Imports an image from an OCI image layout, a `docker save` archive or an `oci-archive`, in one call:
    /// resolves it (``ImageLayout``, ``DockerArchive`` over ``TarFileMembers``), applies each layer not yet in the
    /// store straight from its blob with ``LayerApplier`` (an archive's layer member is streamed out of the
    /// archive, never copied to disk), and records the image.
    ///
    ///     let imported = try store.importImage(from: .ociLayout("/images/debian", reference: "12"))
    ///     for layer in imported.layers { print(layer.chainID, layer.outcome) }   // applied or reused
    ///     try store.createContainer("web", image: imported.image.name)
    ///
    /// Each layer's blob is checked while it is applied: its size and digest against the manifest's descriptor
    /// (when there is one: a legacy `docker save` layer has none), and the digest of the uncompressed tar against
    /// the config's diff id; any mismatch discards the layer. A layer whose chain id is already stored (made by an
    /// earlier import with the same diff id on the same parent) is reused without reading its blob. On any
    /// failure the layers this call made are removed again and nothing is recorded; a process killed midway
    /// leaves its committed layers, which a later import reuses and ``prune()`` removes (the next open removes
    /// the staging layer it was writing).
    ///
    /// - Parameters:
    ///   - source: where the image is, and which one.
    ///   - name: the name to record it as (`name[:tag]`); nil for the source's own name: a `RepoTags` entry, or a
    ///     layout's `org.opencontainers.image.ref.name` when it is a full reference (`docker.io/library/debian:12`);
    ///     a ref name that is only a tag (`12`, what `skopeo copy … oci:debian:12` writes) is prefixed with the
    ///     layout directory's (or archive file's) name, `debian:12`, when that makes a valid name.
    ///   - options: the platform an index is followed to, limits and ownership.
    ///   - progress: called every 4 MiB of blob read and at the end of each layer (applied or reused).
    /// - Returns: the recorded image and, per layer, what was done.
    /// - Throws: `UnionMountError.Code.invalidArgument` when no name is given and the source has none (or a bad
    ///   one); what resolution throws (`notFound` for an absent source, tag, digest, blob or member;
    ///   `malformedInput` for damaged metadata); `UnionMountError.Code.malformedInput` naming the image, the layer
    ///   and the entry for hostile or broken layer content, a size or digest mismatch, or an archive member larger
    ///   than ``LayerArchiveLimits/maximumUncompressedBytes``; `UnionMountError.Code.invalidState` when a layer
    ///   of a chain id's name exists that no import made; what ``recordImage(_:name:)`` throws.
    @discardableResult
    public func importImage(
        from source: ImageSource, name: String? = nil, options: ImageImportOptions = ImageImportOptions(),
        progress: ((ImageImportProgress) -> Void)? = nil
    ) throws(UnionMountError) -> ImportedImage {
        let opened = try OpenedImageSource(source, options: options)
        let image = opened.image
        let recordName: String
        if let name {
            recordName = try ImageReference(parsing: name, input: "name").description
        } else {
            recordName = try Self.defaultName(of: image, from: source)
        }
        var bytesTotal: Int64 = 0
        for layer in image.layers where try readLayer(layer.chainID.hex) == nil {
            bytesTotal += opened.blobSize(layer) ?? 0
        }
        let tracker = ImportProgressTracker(
            image: recordName, layerCount: image.layers.count, bytesTotal: bytesTotal, report: progress)
        let applier = LayerApplier(
            whiteoutFormat: whiteoutFormat, limits: options.layerLimits, ownership: options.ownership,
            features: mounter.features)
        do {
            return try importChain(image, name: recordName, layerDone: { _ in tracker.layerDone() }) {
                position, layer, builder in
                var applier = applier
                applier.lowerDirectories = try layerDirectories(from: builder.parent)
                let summary = try opened.apply(layer, with: applier, into: builder.directory) { bytes in
                    tracker.read(bytes)
                }
                return (summary.diffID, summary)
            }
        } catch let error as UnionMountError {
            var error = error
            error.message = "image \(recordName) from \(source.path.readable): " + error.message
            throw error
        } catch {
            throw UnionMountError.invalidState("image \(recordName): \(error)", input: recordName)
        }
    }

    /// The name an image records under when none is given (see ``importImage(from:name:options:progress:)``).
    static func defaultName(of image: ResolvedImage, from source: ImageSource) throws(UnionMountError) -> String {
        if let reference = image.reference {
            if reference.contains("/") || reference.contains(":"),
                let parsed = try? ImageReference(parsing: reference)
            {
                return parsed.description
            }
            if ImageReference.isTag(reference), let component = source.path.lastComponent {
                let base: String
                if case .ociLayout = source { base = component.string } else { base = component.stem }
                if let parsed = try? ImageReference(parsing: base + ":" + reference) { return parsed.description }
            }
        }
        throw UnionMountError.invalidArgument(
            "\(source.path.readable) gives the image no usable name"
                + (image.reference.map { " (its reference is \($0.debugDescription))" } ?? " (it has no tag)")
                + ": name it", input: "name")
    }
}

/// An image source opened and resolved, able to apply one of its layers.
private struct OpenedImageSource {
    let image: ResolvedImage
    let source: ImageSource
    let layout: ImageLayout?
    let members: TarFileMembers?
    let options: ImageImportOptions

    init(_ source: ImageSource, options: ImageImportOptions) throws(UnionMountError) {
        self.source = source
        self.options = options
        let selector = try source.selector()
        switch source {
        case .ociLayout(let path, _):
            let layout = ImageLayout(directory: path, limits: options.readLimits)
            self.layout = layout
            members = nil
            image = try layout.resolve(selector, platform: options.platform)
        case .dockerArchive(let path, _), .ociArchive(let path, _):
            let members = try TarFileMembers(opening: path, limits: options.readLimits)
            self.members = members
            layout = nil
            image = try DockerArchive(reader: members, name: path.readable, limits: options.readLimits).resolve(
                selector, platform: options.platform)
        }
    }

    /// The blob's size as stored, when known before reading.
    func blobSize(_ layer: ResolvedLayer) -> Int64? {
        if let size = layer.blob.descriptor?.size { return size }
        guard let member = layer.blob.member else { return nil }
        return try? members?.size(ofMember: member)
    }

    /// Applies `layer` into `directory` (a staging layer's), checking the descriptor and the diff id.
    func apply(
        _ layer: ResolvedLayer, with base: LayerApplier, into directory: FilePath, progress: @escaping (Int64) -> Void
    ) throws(UnionMountError) -> LayerArchiveSummary {
        var applier = base
        applier.expectation = LayerArchiveExpectation(
            digest: layer.blob.descriptor?.digest, size: layer.blob.descriptor?.size, diffID: layer.diffID)
        let root = try LayerApplier.openRoot(directory)
        defer { FileSystem.close(root) }
        if let layout, let descriptor = layer.blob.descriptor {
            applier.layerName = blobFileName(descriptor.digest)
            guard let (fd, size) = try LayoutFiles(layout: layout).openBlob(descriptor.digest) else {
                throw UnionMountError(
                    code: .notFound,
                    message: "the layer blob \(blobFileName(descriptor.digest)) is missing from "
                        + layout.directory.readable, input: descriptor.digest.description)
            }
            defer { FileSystem.close(fd) }
            guard size == descriptor.size else {
                throw UnionMountError.malformed(
                    "\(blobFileName(descriptor.digest)) holds \(size) bytes, its descriptor says \(descriptor.size)",
                    input: descriptor.digest.description)
            }
            return try applier.apply(source: .file(fd), into: root, progress: progress)
        }
        guard let members, let name = layer.blob.member else {
            throw UnionMountError.invalidState(
                "the layer \(layer.chainID) names no blob to read", input: layer.chainID.description)
        }
        applier.layerName = applier.expectation.digest == nil ? name : nil
        guard let member = try members.members.regularMember(name) else {
            throw UnionMountError(
                code: .notFound, message: "\(members.path.readable) has no member \(name)", input: name)
        }
        let limit = options.layerLimits.maximumUncompressedBytes
        guard member.size <= limit else {
            throw UnionMountError.malformed(
                "the layer member \(name) holds \(member.size) bytes, over the limit of \(limit)", input: name)
        }
        if let descriptor = layer.blob.descriptor, descriptor.size != member.size {
            throw UnionMountError.malformed(
                "the layer member \(name) holds \(member.size) bytes, its descriptor says \(descriptor.size)",
                input: name)
        }
        return try applier.apply(source: .member(try members.members.open(member)), into: root, progress: progress)
    }
}

/// Turns the applier's byte counts into ``ImageImportProgress`` reports: at most one per 4 MiB, and one at the
/// end of each layer.
private final class ImportProgressTracker {
    let report: ((ImageImportProgress) -> Void)?
    var progress: ImageImportProgress
    /// Bytes of the layers finished before the current one.
    var finishedBytes: Int64 = 0
    var currentBytes: Int64 = 0
    var lastReported: Int64 = 0
    static let interval: Int64 = 4 << 20

    init(image: String, layerCount: Int, bytesTotal: Int64, report: ((ImageImportProgress) -> Void)?) {
        self.report = report
        progress = ImageImportProgress(
            image: image, layerCount: layerCount, layersDone: 0, bytesRead: 0, bytesTotal: bytesTotal)
    }

    func read(_ bytes: Int64) {
        currentBytes = bytes
        progress.bytesRead = finishedBytes + bytes
        if progress.bytesRead - lastReported >= Self.interval {
            lastReported = progress.bytesRead
            report?(progress)
        }
    }

    func layerDone() {
        finishedBytes += currentBytes
        currentBytes = 0
        progress.bytesRead = finishedBytes
        progress.layersDone += 1
        lastReported = progress.bytesRead
        report?(progress)
    }
}
