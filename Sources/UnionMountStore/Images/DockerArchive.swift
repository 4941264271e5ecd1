import UnionMount

/// A `docker save` archive (or an `oci-archive`), read through an ``ArchiveMemberReader``.
///
/// Forms read:
/// - **`manifest.json`** (Docker 1.10 and later): the entry picked by tag (its `RepoTags`), by config digest
///   (Docker's image id), or the only one; its config member is read (capped at
///   ``ImageReadLimits/maximumJSONBytes``) and, when its name says its digest (`<hex>.json`,
///   `blobs/sha256/<hex>`), checked against it; every layer member must be present. When the archive also
///   holds an OCI layout (`oci-layout`, `index.json`: Docker 25 and later), the manifest of that config is
///   found through it and its descriptors (sizes, digests, media types) are used.
/// - **OCI only** (`oci-layout` and `index.json`, no `manifest.json`): read as an ``ImageLayout`` would be.
/// - The pre-1.10 form (only `repositories` and `<id>/json`) carries no diff ids and is refused as
///   `UnionMountError.Code.unsupported`; in later archives those files duplicate `manifest.json` and are not read.
public struct DockerArchive<Reader: ArchiveMemberReader> {
    /// The archive's members.
    public let reader: Reader
    /// The archive's name in messages (its path).
    public let name: String
    /// Bounds on JSON sizes and index nesting.
    public var limits: ImageReadLimits

    /// An archive named `name` whose members `reader` reads.
    public init(reader: Reader, name: String, limits: ImageReadLimits = ImageReadLimits()) {
        self.reader = reader
        self.name = name
        self.limits = limits
    }

    /// Picks one image and reads its metadata.
    ///
    /// - Parameters:
    ///   - selector: the only image; a tag (`debian:12`, `debian` meaning `debian:latest`); a digest (the
    ///     config's, Docker's image id, or, when the archive holds an OCI index, a manifest's).
    ///   - platform: what an OCI index is chosen for.
    /// - Throws: `UnionMountError.Code.notFound` (no such image, a missing member; the message lists the tags
    ///   there are), `UnionMountError.Code.invalidArgument` (several images and no selector),
    ///   `UnionMountError.Code.malformedInput` (bad JSON, a member name that leaves the archive, a config whose
    ///   digest is not its name's, layer and diff id counts that differ), `UnionMountError.Code.unsupported`.
    public func resolve(
        _ selector: ImageSelector = .only, platform: ImagePlatform = .host
    ) throws(UnionMountError) -> ResolvedImage {
        let files = ArchiveFiles(reader: reader, name: name)
        let hasLayout = try reader.size(ofMember: "oci-layout") != nil
        guard let manifestBytes = try reader.read(member: "manifest.json", maximumSize: limits.maximumJSONBytes)
        else {
            if hasLayout {
                return try OCIImageResolver(source: files, limits: limits, platform: platform).resolve(selector)
            }
            if try reader.size(ofMember: "repositories") != nil {
                throw UnionMountError(
                    code: .unsupported,
                    message: "\(name) is a docker save archive of Docker before 1.10 (no manifest.json): its "
                        + "layers' diff ids are not recorded", input: name)
            }
            throw UnionMountError.malformed(
                "\(name) is not a docker save archive (no manifest.json) nor an OCI archive (no oci-layout)",
                input: name)
        }
        try checkSize(manifestBytes, file: "manifest.json")
        let manifest = try DockerArchiveManifest(parsing: manifestBytes)
        let (position, entry, reference): (Int, DockerArchiveManifest.Entry, String?)
        do {
            (position, entry, reference) = try select(selector, in: manifest)
        } catch {
            // A manifest digest names no manifest.json entry: the archive's OCI index may have it.
            guard case .digest = selector, error.code == .notFound, hasLayout else { throw error }
            return try OCIImageResolver(source: files, limits: limits, platform: platform).resolve(selector)
        }
        let origin = "manifest.json: [\(position)]"
        guard let configBytes = try reader.read(member: entry.config, maximumSize: limits.maximumJSONBytes) else {
            throw UnionMountError(
                code: .notFound, message: "\(origin).Config: \(name) has no member \(entry.config)",
                input: "\(origin).Config")
        }
        try checkSize(configBytes, file: entry.config)
        let configDigest = SHA256.digest(of: configBytes)
        if let named = Self.digest(namedBy: entry.config), named != configDigest {
            throw UnionMountError.malformed(
                "\(origin).Config: the member \(entry.config) does not match the digest its name says (its SHA-256 "
                    + "is \(configDigest))", input: "\(origin).Config")
        }
        if case .digest(let digest) = selector, digest != configDigest {
            throw UnionMountError(code: .notFound, message: "\(name) has no image \(digest)", input: digest.description)
        }
        let config = try ImageConfig(parsing: configBytes, file: entry.config)
        if hasLayout, let image = try ociImage(configDigest: configDigest, files: files, platform: platform) {
            var image = image
            image.reference = reference
            return image
        }
        var blobs: [LayerBlob] = []
        for (index, member) in entry.layers.enumerated() {
            guard let size = try reader.size(ofMember: member) else {
                throw UnionMountError(
                    code: .notFound, message: "\(origin).Layers[\(index)]: \(name) has no member \(member)",
                    input: "\(origin).Layers[\(index)]")
            }
            var descriptor: ImageDescriptor?
            if let digest = Self.digest(namedBy: member) {
                descriptor = ImageDescriptor(mediaType: "", digest: digest, size: size)
            }
            if index < config.diffIDs.count, let source = entry.layerSources?[config.diffIDs[index]] {
                descriptor = source
            }
            let type = descriptor.flatMap { LayerMediaType($0.mediaType) }
            blobs.append(
                LayerBlob(
                    descriptor: descriptor, compression: type?.compression,
                    nonDistributable: type?.nonDistributable ?? false, member: member))
        }
        let layers = try ResolvedImage.layers(blobs: blobs, diffIDs: config.diffIDs, file: origin)
        return ResolvedImage(
            reference: reference, manifestDescriptor: nil, manifest: nil, configDigest: configDigest, config: config,
            configBytes: configBytes, manifestBytes: nil, layers: layers)
    }

    /// The entry `selector` picks, its position, and the name it is known by.
    func select(
        _ selector: ImageSelector, in manifest: DockerArchiveManifest
    ) throws(UnionMountError) -> (Int, DockerArchiveManifest.Entry, String?) {
        let tags = manifest.entries.flatMap(\.repoTags).map(\.description)
        let listed = tags.isEmpty ? "no tags" : "tags " + tags.joined(separator: ", ")
        switch selector {
        case .only, .digest:
            if case .only = selector, manifest.entries.count != 1 {
                guard !manifest.entries.isEmpty else {
                    throw UnionMountError(code: .notFound, message: "\(name) holds no image", input: name)
                }
                throw UnionMountError.invalidArgument(
                    "\(name) holds \(manifest.entries.count) images (\(listed)): name one", input: name)
            }
            if case .digest(let digest) = selector {
                for (position, entry) in manifest.entries.enumerated() {
                    // The digest the name says, else the config's own (read, capped, hashed).
                    var actual = Self.digest(namedBy: entry.config)
                    if actual == nil,
                        let bytes = try reader.read(member: entry.config, maximumSize: limits.maximumJSONBytes)
                    {
                        actual = SHA256.digest(of: bytes)
                    }
                    if actual == digest { return (position, entry, entry.repoTags.first?.description) }
                }
                throw UnionMountError(
                    code: .notFound, message: "\(name) has no image \(digest) (\(listed))", input: digest.description)
            }
            return (0, manifest.entries[0], manifest.entries[0].repoTags.first?.description)
        case .tag(let text):
            let wanted = try ImageReference(parsing: text, input: "tag")
            for (position, entry) in manifest.entries.enumerated() where entry.repoTags.contains(wanted) {
                return (position, entry, wanted.description)
            }
            throw UnionMountError(
                code: .notFound, message: "\(name) has no image tagged \(wanted) (\(listed))", input: text)
        }
    }

    /// The OCI form of the image whose config is `configDigest`, found through the archive's `index.json`.
    func ociImage(
        configDigest: ImageDigest, files: ArchiveFiles<Reader>, platform: ImagePlatform
    ) throws(UnionMountError) -> ResolvedImage? {
        let resolver = OCIImageResolver(source: files, limits: limits, platform: platform)
        guard let indexBytes = try files.readTopFile("index.json", limit: limits.maximumJSONBytes) else { return nil }
        try checkSize(indexBytes, file: "index.json")
        let index = try ImageIndex(parsing: indexBytes, file: "index.json")
        for (position, descriptor) in index.manifests.enumerated() {
            let entry = OCIImageResolver<ArchiveFiles<Reader>>.Entry(
                descriptor: descriptor, origin: "index.json: manifests[\(position)]")
            do {
                let image = try resolver.follow(entry, reference: nil, depth: 0)
                if image.configDigest == configDigest { return image }
            } catch  where error.code == .notFound {
                continue
            }
        }
        return nil
    }

    /// The digest a member's name says: `<hex>.json`, `<hex>/layer.tar`'s directory is not one (a v1 id), but
    /// `blobs/sha256/<hex>` is.
    static func digest(namedBy member: String) -> ImageDigest? {
        var hex: String?
        if member.hasPrefix("blobs/sha256/") {
            hex = String(member.dropFirst("blobs/sha256/".count))
        } else if member.hasSuffix(".json"), !member.contains("/") {
            hex = String(member.dropLast(".json".count))
        }
        return hex.flatMap { try? ImageDigest(parsing: "sha256:" + $0, input: member) }
    }

    func checkSize(_ bytes: [UInt8], file: String) throws(UnionMountError) {
        guard bytes.count <= limits.maximumJSONBytes else {
            throw UnionMountError.malformed(
                "\(name): \(file) is larger than the \(limits.maximumJSONBytes)-byte limit for JSON", input: file)
        }
    }
}

/// An archive's members as an OCI layout's files: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.
struct ArchiveFiles<Reader: ArchiveMemberReader>: OCIFileSource {
    let reader: Reader
    let name: String

    func readTopFile(_ file: String, limit: Int) throws(UnionMountError) -> [UInt8]? {
        try reader.read(member: file, maximumSize: limit + 1)
    }

    func readBlob(_ digest: ImageDigest, limit: Int) throws(UnionMountError) -> [UInt8]? {
        try reader.read(member: blobFileName(digest), maximumSize: limit + 1)
    }

    func blobSize(_ digest: ImageDigest) throws(UnionMountError) -> Int64? {
        try reader.size(ofMember: blobFileName(digest))
    }

    func member(of digest: ImageDigest) -> String? { blobFileName(digest) }
}
