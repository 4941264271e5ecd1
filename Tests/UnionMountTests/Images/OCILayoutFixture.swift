import Foundation
import SystemPackage

@testable import UnionMount
@testable import UnionMountStore

/// An OCI image layout written by a test: blobs stored under their real digests, JSON written as text (so a
/// test can write exactly the bytes it wants, repeated keys and all).
struct OCILayoutFixture {
    struct Blob {
        var mediaType: String
        var digest: ImageDigest
        var size: Int
        var bytes: [UInt8]

        /// The descriptor as JSON, with `extra` members appended (`"platform": {…}`).
        func json(_ extra: String = "") -> String {
            "{\"mediaType\": \"\(mediaType)\", \"digest\": \"\(digest)\", \"size\": \(size)"
                + (extra.isEmpty ? "" : ", " + extra) + "}"
        }
    }

    /// One image written by ``image(layers:platform:)``.
    struct Image {
        var manifest: Blob
        var config: Blob
        var layers: [Blob]
        var diffIDs: [ImageDigest]
    }

    let directory: FilePath

    init(in directory: FilePath, layoutFile: String = "{\"imageLayoutVersion\": \"1.0.0\"}") throws {
        self.directory = directory
        try makeDirectories(directory.appending("blobs/sha256"))
        try writeFile(directory.appending("oci-layout"), layoutFile)
    }

    func path(_ blob: Blob) -> FilePath { directory.appending("blobs/sha256/" + blob.digest.hex) }

    @discardableResult
    func blob(_ bytes: [UInt8], mediaType: String) throws -> Blob {
        let digest = SHA256.digest(of: bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: directory.appending("blobs/sha256/" + digest.hex).string))
        return Blob(mediaType: mediaType, digest: digest, size: bytes.count, bytes: bytes)
    }

    @discardableResult
    func blob(_ text: String, mediaType: String) throws -> Blob { try blob(Array(text.utf8), mediaType: mediaType) }

    func writeIndex(_ text: String) throws { try writeFile(directory.appending("index.json"), text) }

    /// `index.json` listing `entries` (descriptor JSON texts).
    func writeIndex(entries: [String]) throws {
        try writeIndex(
            "{\"schemaVersion\": 2, \"mediaType\": \"\(ImageMediaType.ociIndex)\", \"manifests\": ["
                + entries.joined(separator: ", ") + "]}")
    }

    static func configJSON(diffIDs: [ImageDigest], os: String = "linux", architecture: String = "amd64") -> String {
        "{\"architecture\": \"\(architecture)\", \"os\": \"\(os)\", \"config\": {\"Env\": [\"PATH=/bin\"], "
            + "\"Cmd\": [\"/bin/sh\"], \"Labels\": null}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": ["
            + diffIDs.map { "\"\($0)\"" }.joined(separator: ", ") + "]}}"
    }

    /// An image whose layers are `layers` (any bytes: resolution never reads a layer), the diff ids made up
    /// from their contents, its manifest of `manifestType`.
    func image(
        layers: [String], architecture: String = "amd64", manifestType: String = ImageMediaType.ociManifest,
        layerType: String = "application/vnd.oci.image.layer.v1.tar+gzip"
    ) throws -> Image {
        let layerBlobs = try layers.map { try blob($0, mediaType: layerType) }
        let diffIDs = layers.map { SHA256.digest(of: Array(("diff of " + $0).utf8)) }
        let configType =
            manifestType == ImageMediaType.dockerManifest ? ImageMediaType.dockerConfig : ImageMediaType.ociConfig
        let config = try blob(
            Self.configJSON(diffIDs: diffIDs, architecture: architecture), mediaType: configType)
        let manifest = try blob(
            "{\"schemaVersion\": 2, \"mediaType\": \"\(manifestType)\", \"config\": \(config.json()), \"layers\": ["
                + layerBlobs.map { $0.json() }.joined(separator: ", ") + "]}",
            mediaType: manifestType)
        return Image(manifest: manifest, config: config, layers: layerBlobs, diffIDs: diffIDs)
    }

    /// The descriptor JSON of an index entry tagged `tag`.
    static func tagged(_ blob: Blob, _ tag: String, extra: String = "") -> String {
        blob.json(
            "\"annotations\": {\"org.opencontainers.image.ref.name\": \"\(tag)\"}" + (extra.isEmpty ? "" : ", " + extra)
        )
    }

    static func platform(_ os: String, _ architecture: String, _ variant: String? = nil) -> String {
        "\"platform\": {\"os\": \"\(os)\", \"architecture\": \"\(architecture)\""
            + (variant.map { ", \"variant\": \"\($0)\"" } ?? "") + "}"
    }
}

/// An archive's members in memory: what the libarchive reader will provide.
struct MemoryMembers: ArchiveMemberReader {
    var members: [String: [UInt8]]

    func size(ofMember name: String) throws(UnionMountError) -> Int64? { members[name].map { Int64($0.count) } }

    func read(member name: String, maximumSize: Int) throws(UnionMountError) -> [UInt8]? {
        guard let bytes = members[name] else { return nil }
        guard bytes.count <= maximumSize else {
            throw UnionMountError.malformed("\(name) is larger than \(maximumSize) bytes", input: name)
        }
        return bytes
    }
}
