import UnionMount

/// Where an OCI layout's files are read from: a directory (``ImageLayout``) or the members of an archive
/// (the OCI form of a `docker save` tar, an `oci-archive`).
protocol OCIFileSource {
    /// The layout's name in messages (a directory path, an archive file).
    var name: String { get }
    /// The file `oci-layout` or `index.json` at the layout's top, at most `limit` bytes plus one (so that a
    /// longer file shows); nil when absent.
    func readTopFile(_ file: String, limit: Int) throws(UnionMountError) -> [UInt8]?
    /// The blob `blobs/sha256/<hex>`, at most `limit` bytes plus one; nil when absent.
    func readBlob(_ digest: ImageDigest, limit: Int) throws(UnionMountError) -> [UInt8]?
    /// The size of the blob, nil when absent (or not a regular file).
    func blobSize(_ digest: ImageDigest) throws(UnionMountError) -> Int64?
    /// The archive member of a blob (nil for a directory layout, whose blob is opened by digest).
    func member(of digest: ImageDigest) -> String?
}

/// The file name of a blob in messages: `blobs/sha256/<hex>`, built from a validated digest only.
func blobFileName(_ digest: ImageDigest) -> String { "blobs/sha256/" + digest.hex }

/// Follows `index.json` to one image: selection by tag or digest, platform choice in indexes, nested indexes
/// down to ``ImageReadLimits/maximumIndexDepth``, every JSON blob checked against its descriptor's size and
/// digest as it is read.
struct OCIImageResolver<Source: OCIFileSource> {
    let source: Source
    let limits: ImageReadLimits
    let platform: ImagePlatform

    /// A descriptor and where it was read (`index.json: manifests[2]`), for messages.
    struct Entry {
        var descriptor: ImageDescriptor
        var origin: String
    }

    func resolve(_ selector: ImageSelector) throws(UnionMountError) -> ResolvedImage {
        guard let layoutFile = try source.readTopFile("oci-layout", limit: limits.maximumJSONBytes) else {
            throw UnionMountError(
                code: .notFound, message: "\(source.name) has no oci-layout file: not an OCI image layout",
                input: source.name)
        }
        try checkSize(layoutFile, file: "oci-layout")
        try ImageLayoutVersion.check(layoutFile)
        guard let indexFile = try source.readTopFile("index.json", limit: limits.maximumJSONBytes) else {
            throw UnionMountError(
                code: .notFound, message: "\(source.name) has no index.json", input: source.name)
        }
        try checkSize(indexFile, file: "index.json")
        let index = try ImageIndex(parsing: indexFile, file: "index.json")
        let entries = index.manifests.enumerated().map {
            Entry(descriptor: $1, origin: "index.json: manifests[\($0)]")
        }
        switch selector {
        case .only:
            let chosen = try choose(entries, in: "index.json", depth: 0)
            return try follow(chosen, reference: chosen.descriptor.referenceName, depth: 0)
        case .tag(let tag):
            let tagged = entries.filter { $0.descriptor.referenceName.map { $0.utf8.elementsEqual(tag.utf8) } == true }
            guard !tagged.isEmpty else {
                let tags = entries.compactMap(\.descriptor.referenceName)
                throw UnionMountError(
                    code: .notFound,
                    message: "\(source.name) has no image tagged \(tag.debugDescription) (its tags: "
                        + (tags.isEmpty ? "none" : tags.map(\.debugDescription).joined(separator: ", ")) + ")",
                    input: tag)
            }
            return try follow(try choose(tagged, in: "index.json", depth: 0), reference: tag, depth: 0)
        case .digest(let digest):
            guard let (entry, depth) = try find(digest, in: entries, depth: 0) else {
                throw UnionMountError(
                    code: .notFound, message: "\(source.name) has no manifest \(digest)", input: digest.description)
            }
            return try follow(entry, reference: entry.descriptor.referenceName, depth: depth)
        }
    }

    // MARK: Walking indexes

    /// The entry to follow among `entries`: the best for ``platform`` among those that say their platform (the
    /// first of equals, in index order), else the only entry when it says no platform.
    func choose(_ entries: [Entry], in file: String, depth: Int) throws(UnionMountError) -> Entry {
        guard !entries.isEmpty else {
            throw UnionMountError(code: .notFound, message: "\(file) lists no manifests", input: file)
        }
        let ranked = entries.compactMap { entry in
            entry.descriptor.platform.flatMap { platform.rank($0) }.map { (rank: $0, entry: entry) }
        }
        if let best = ranked.min(by: { $0.rank < $1.rank }) { return best.entry }
        if entries.count == 1 && entries[0].descriptor.platform == nil { return entries[0] }
        let offered = entries.map { entry in
            entry.descriptor.platform?.description ?? entry.descriptor.referenceName.map { "tag " + $0 }
                ?? entry.descriptor.digest.description
        }
        throw UnionMountError(
            code: .notFound,
            message: "\(file) has no manifest for \(platform) (it has: \(offered.joined(separator: ", ")))",
            input: file)
    }

    /// Follows an entry: an index is read and chosen from, one level deeper; a manifest is resolved.
    func follow(_ entry: Entry, reference: String?, depth: Int) throws(UnionMountError) -> ResolvedImage {
        let type = entry.descriptor.mediaType
        if ImageMediaType.indexes.contains(type) {
            let (index, file) = try readIndex(entry, depth: depth + 1)
            let entries = index.manifests.enumerated().map {
                Entry(descriptor: $1, origin: "\(file): manifests[\($0)]")
            }
            return try follow(try choose(entries, in: file, depth: depth + 1), reference: reference, depth: depth + 1)
        }
        guard ImageMediaType.manifests.contains(type) else {
            throw UnionMountError(
                code: .unsupported,
                message: "\(entry.origin).mediaType: \(type.debugDescription) is neither an image index nor an "
                    + "image manifest", input: "\(entry.origin).mediaType")
        }
        return try resolveManifest(entry, reference: reference)
    }

    /// The entry for `digest` among `entries` or in the indexes they lead to, with its depth.
    func find(_ digest: ImageDigest, in entries: [Entry], depth: Int) throws(UnionMountError) -> (Entry, Int)? {
        if let entry = entries.first(where: { $0.descriptor.digest == digest }) { return (entry, depth) }
        for entry in entries where ImageMediaType.indexes.contains(entry.descriptor.mediaType) {
            let (index, file) = try readIndex(entry, depth: depth + 1)
            let nested = index.manifests.enumerated().map {
                Entry(descriptor: $1, origin: "\(file): manifests[\($0)]")
            }
            if let found = try find(digest, in: nested, depth: depth + 1) { return found }
        }
        return nil
    }

    func readIndex(_ entry: Entry, depth: Int) throws(UnionMountError) -> (ImageIndex, String) {
        guard depth <= limits.maximumIndexDepth else {
            throw UnionMountError.malformed(
                "\(entry.origin): image indexes nest deeper than \(limits.maximumIndexDepth) levels",
                input: entry.origin)
        }
        let bytes = try readJSONBlob(entry)
        let file = blobFileName(entry.descriptor.digest)
        return (try ImageIndex(parsing: bytes, file: file, expectedMediaType: entry.descriptor.mediaType), file)
    }

    // MARK: The manifest

    func resolveManifest(_ entry: Entry, reference: String?) throws(UnionMountError) -> ResolvedImage {
        let manifestBytes = try readJSONBlob(entry)
        let file = blobFileName(entry.descriptor.digest)
        let manifest = try ImageManifest(
            parsing: manifestBytes, file: file, expectedMediaType: entry.descriptor.mediaType)
        let configEntry = Entry(descriptor: manifest.config, origin: "\(file): config")
        let configBytes = try readJSONBlob(configEntry)
        let config = try ImageConfig(parsing: configBytes, file: blobFileName(manifest.config.digest))
        var blobs: [LayerBlob] = []
        for (position, (layer, type)) in zip(manifest.layers, manifest.layerTypes).enumerated() {
            let origin = "\(file): layers[\(position)]"
            guard let size = try source.blobSize(layer.digest) else {
                let urls = layer.urls.map { " (it is to be fetched from \($0.joined(separator: ", ")))" } ?? ""
                throw UnionMountError(
                    code: .notFound,
                    message: "\(origin): the layer blob \(blobFileName(layer.digest)) is missing from "
                        + "\(source.name)\(urls)",
                    input: origin)
            }
            guard size == layer.size else {
                throw UnionMountError.malformed(
                    "\(origin): \(blobFileName(layer.digest)) holds \(size) bytes, its descriptor says \(layer.size)",
                    input: origin)
            }
            blobs.append(
                LayerBlob(
                    descriptor: layer, compression: type.compression, nonDistributable: type.nonDistributable,
                    member: source.member(of: layer.digest)))
        }
        let layers = try ResolvedImage.layers(blobs: blobs, diffIDs: config.diffIDs, file: file)
        return ResolvedImage(
            reference: reference, manifestDescriptor: entry.descriptor, manifest: manifest,
            configDigest: manifest.config.digest, config: config, configBytes: configBytes,
            manifestBytes: manifestBytes, layers: layers)
    }

    // MARK: Blobs

    /// The blob of a JSON descriptor, read whole and checked: its declared size within the JSON limit, the
    /// blob exactly that long, its SHA-256 its digest.
    func readJSONBlob(_ entry: Entry) throws(UnionMountError) -> [UInt8] {
        let descriptor = entry.descriptor
        let file = blobFileName(descriptor.digest)
        guard descriptor.size <= Int64(limits.maximumJSONBytes) else {
            throw UnionMountError.malformed(
                "\(entry.origin): \(file) is declared \(descriptor.size) bytes, over the \(limits.maximumJSONBytes)-"
                    + "byte limit for JSON", input: entry.origin)
        }
        guard let bytes = try source.readBlob(descriptor.digest, limit: Int(descriptor.size)) else {
            throw UnionMountError(
                code: .notFound, message: "\(entry.origin): the blob \(file) is missing from \(source.name)",
                input: entry.origin)
        }
        try Self.verify(bytes, against: descriptor, origin: entry.origin)
        return bytes
    }

    /// Checks that `bytes` are the blob `descriptor` names: its size and its SHA-256.
    static func verify(_ bytes: [UInt8], against descriptor: ImageDescriptor, origin: String) throws(UnionMountError) {
        let file = blobFileName(descriptor.digest)
        guard Int64(bytes.count) == descriptor.size else {
            let held = Int64(bytes.count) > descriptor.size ? "more than \(descriptor.size)" : "\(bytes.count)"
            throw UnionMountError.malformed(
                "\(origin): \(file) holds \(held) bytes, its descriptor says \(descriptor.size)", input: origin)
        }
        let actual = SHA256.digest(of: bytes)
        guard actual == descriptor.digest else {
            throw UnionMountError.malformed(
                "\(origin): \(file) does not match its digest (its SHA-256 is \(actual))", input: origin)
        }
    }

    func checkSize(_ bytes: [UInt8], file: String) throws(UnionMountError) {
        guard bytes.count <= limits.maximumJSONBytes else {
            throw UnionMountError.malformed(
                "\(source.name)/\(file) is larger than the \(limits.maximumJSONBytes)-byte limit for JSON",
                input: file)
        }
    }
}
