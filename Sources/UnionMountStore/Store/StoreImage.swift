import SystemPackage
import UnionMount

/// An image recorded in a ``LayerStore``: a name, the manifest and config it was imported from, and the chain of
/// layers it stacks, each layer's id being its chain id's hex digits (so a layer shared by two images is stored
/// once).
public struct StoreImage: Sendable, Hashable, Codable {
    /// `name:tag` (see ``ImageReference``).
    public var name: String
    /// The manifest's digest; nil for an image imported from a `docker save` archive without an OCI index.
    public var manifestDigest: ImageDigest?
    /// The config's digest (Docker's image id).
    public var configDigest: ImageDigest
    /// The layer ids, top first (as ``LayerStore/chain(_:)`` and ``StoreContainer/layers`` list them); empty for
    /// an image of no layers.
    public var layers: [String]
    /// The config's platform, `os/architecture[/variant]`.
    public var platform: String

    /// The image's top layer, which a container created from the image stacks on; nil for an image of no layers.
    public var topLayer: String? { layers.first }

    /// Creates a description of an image.
    public init(
        name: String, manifestDigest: ImageDigest?, configDigest: ImageDigest, layers: [String], platform: String
    ) {
        self.name = name
        self.manifestDigest = manifestDigest
        self.configDigest = configDigest
        self.layers = layers
        self.platform = platform
    }

    /// The record file's name: `<sha256 of the name>.conf` (a name holds `/` and `:`, which a file name cannot).
    static func recordName(_ name: String) -> String { SHA256.digest(of: name.utf8).hex + ".conf" }

    /// The record written as `images/<hash>.conf`.
    var record: StoreRecord {
        var record = StoreRecord([("name", name)])
        record["manifest"] = manifestDigest?.description
        record["config"] = configDigest.description
        record["platform"] = platform
        record["layers"] = layers.joined(separator: " ")
        return record
    }

    /// Reads a record back, as untrusted input: the name must parse and match the file's name, the digests
    /// must be `sha256:<hex>`, the layers valid ids.
    init(record: StoreRecord, file: FilePath) throws(UnionMountError) {
        let name = try record.required("name", in: file)
        let reference: ImageReference
        do {
            reference = try ImageReference(parsing: name, input: "name")
        } catch {
            throw UnionMountError.malformed("name: \(error.message)", input: file.readable)
        }
        guard reference.description == name, file.lastComponent?.string == Self.recordName(name) else {
            throw UnionMountError.malformed("the record names another image (\(name))", input: file.readable)
        }
        func digest(_ key: String) throws(UnionMountError) -> ImageDigest? {
            guard let text = record[key] else { return nil }
            do {
                return try ImageDigest(parsing: text, input: key)
            } catch {
                throw UnionMountError.malformed("\(key): \(error.message)", input: file.readable)
            }
        }
        guard let config = try digest("config") else {
            throw UnionMountError.malformed("the record has no 'config'", input: file.readable)
        }
        let layers = (record["layers"] ?? "").split(separator: " ").map(String.init)
        for layer in layers { try StoreIdentifier.validate(layer, key: "layers", recordedIn: file) }
        guard layers.count <= OverlaySpec.maximumLayerCount else {
            throw UnionMountError.malformed(
                "the record lists more than \(OverlaySpec.maximumLayerCount) layers", input: file.readable)
        }
        self.init(
            name: name, manifestDigest: try digest("manifest"), configDigest: config, layers: layers,
            platform: try record.required("platform", in: file))
    }
}
