import UnionMount
import UnionMountStore

extension FuzzChecks {
    /// Image metadata (`fuzz-image-json`): the strict JSON reader and every decoder built on it.
    ///
    /// - ``JSONReader/parse(_:file:)`` returns or throws `.malformedInput` naming the file; a parsed value's
    ///   ``JSONValue/serialized`` text parses back to an equal value and serializes to the same bytes.
    /// - The index, manifest (with and without a descriptor's media type), config, `oci-layout` and `docker
    ///   save` `manifest.json` decoders return or throw a `UnionMountError` that is `.malformedInput` or
    ///   `.unsupported` and whose input names the file; a decoded manifest has one layer type per layer, a
    ///   decoded descriptor a size ≥ 0.
    /// - The input as a string through ``ImageReference`` and ``ImagePlatform``: a parsed reference reads back
    ///   equal from its description.
    public static func imageJSON(_ bytes: [UInt8]) throws(FuzzFailure) {
        let parsed = Result { () throws(UnionMountError) in try JSONReader.parse(bytes, file: "fuzz.json") }
        switch parsed {
        case .success(let value):
            let text = value.serialized
            guard let again = try? JSONReader.parse(text, file: "again"), again == value else {
                throw fail("JSON: the serialized value does not parse back equal: \(text.shown)", bytes)
            }
            guard again.serialized == text else { throw fail("JSON: serializing is not stable", bytes) }
        case .failure(let error):
            try expectNamed(error, "fuzz.json", bytes)
        }
        try decode("index.json", bytes) { () throws(UnionMountError) in
            let index = try ImageIndex(parsing: bytes, file: "index.json")
            if index.manifests.contains(where: { $0.size < 0 }) { throw UnionMountError.malformed("size", input: "x") }
        }
        for expected in [nil, ImageMediaType.ociManifest, ImageMediaType.dockerManifest] {
            try decode("manifest", bytes) { () throws(UnionMountError) in
                let manifest = try ImageManifest(parsing: bytes, file: "manifest", expectedMediaType: expected)
                guard manifest.layers.count == manifest.layerTypes.count, manifest.config.size >= 0 else {
                    throw UnionMountError.invalidState("layer types", input: "x")
                }
            }
        }
        try decode("config", bytes) { () throws(UnionMountError) in _ = try ImageConfig(parsing: bytes, file: "config")
        }
        try decode("oci-layout", bytes) { () throws(UnionMountError) in try ImageLayoutVersion.check(bytes) }
        try decode("manifest.json", bytes) { () throws(UnionMountError) in
            _ = try DockerArchiveManifest(parsing: bytes)
        }
        if let text = String(validating: bytes, as: UTF8.self) {
            if let reference = try? ImageReference(parsing: text) {
                guard (try? ImageReference(parsing: reference.description)) == reference else {
                    throw fail("reference \(reference) does not read back equal", bytes)
                }
            }
            _ = try? ImagePlatform(parsing: text)
            _ = ImagePlatform(unameMachine: text).normalized
        }
    }

    /// Runs a decoder: success, or an error of the decoders' codes naming `file`.
    private static func decode(
        _ file: String, _ bytes: [UInt8], _ body: () throws(UnionMountError) -> Void
    ) throws(FuzzFailure) {
        do {
            try body()
        } catch {
            guard error.code == .malformedInput || error.code == .unsupported else {
                throw fail("\(file): unexpected error \(error.code): \(error)", bytes)
            }
            try expectNamed(error, file, bytes)
        }
    }

    private static func expectNamed(_ error: UnionMountError, _ file: String, _ bytes: [UInt8]) throws(FuzzFailure) {
        guard let input = error.input, input.hasPrefix(file + ": "), error.message.hasPrefix(input) else {
            throw fail("\(file): the error does not name the file and field: \(error)", bytes)
        }
    }
}
