import UnionMount

/// A content address as OCI images write it, `sha256:<64 lowercase hex digits>`: a blob's name in an image
/// layout (`blobs/sha256/<hex>`), a layer's diff id, a chain id.
///
/// Only `sha256` is accepted: it is the algorithm every image in use is written with, and the one the store
/// can verify (a `sha512:` digest is refused as unsupported, not mistaken for a name).
public struct ImageDigest: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    /// The 64 lowercase hexadecimal digits.
    public let hex: String

    /// `sha256:<hex>`.
    public var description: String { "sha256:" + hex }

    /// Parses `sha256:<64 lowercase hex>`.
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` naming `input` (what the string came from, such as
    ///   `"manifest.json: layers[2]"`) for anything else: another length, uppercase, a missing or unknown algorithm.
    public init(parsing text: String, input: String) throws(UnionMountError) {
        let prefix = "sha256:"
        guard text.hasPrefix(prefix) else {
            let algorithm = text.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
            throw UnionMountError(
                code: text.contains(":") && !algorithm.isEmpty ? .unsupported : .malformedInput,
                message: "not a sha256 digest: \(text.debugDescription) (only sha256:<64 hex digits> is supported)",
                input: input)
        }
        let hex = text.utf8.dropFirst(prefix.utf8.count)
        guard hex.count == 64, hex.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw UnionMountError(
                code: .malformedInput,
                message: "malformed digest \(text.debugDescription): sha256: wants 64 lowercase hexadecimal digits",
                input: input)
        }
        self.hex = String(decoding: hex, as: UTF8.self)
    }

    /// The digest of 32 raw bytes.
    init(sha256 bytes: [UInt8]) {
        precondition(bytes.count == 32, "a SHA-256 digest has 32 bytes")
        hex = lowercaseHex(bytes)
    }

    /// The chain id of a layer on top of `parent` (nil for the bottom layer): the parent's chain id and this
    /// layer's diff id, `sha256("<parent> <diffID>")`, as the OCI image spec defines it; the bottom layer's chain
    /// id is its diff id.
    public static func chainID(parent: ImageDigest?, diffID: ImageDigest) -> ImageDigest {
        guard let parent else { return diffID }
        return SHA256.digest(of: "\(parent) \(diffID)".utf8)
    }

    /// Orders by the hexadecimal digits.
    public static func < (lhs: ImageDigest, rhs: ImageDigest) -> Bool { lhs.hex < rhs.hex }

    /// Decodes `sha256:<hex>` from a JSON string.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            self = try ImageDigest(parsing: text, input: decoder.codingPath.map(\.stringValue).joined(separator: "."))
        } catch {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    /// Encodes `sha256:<hex>` as a JSON string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Two lowercase hexadecimal digits per byte, in order.
func lowercaseHex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    text.reserveCapacity(bytes.underestimatedCount * 2)
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0xF)])
    }
    return String(decoding: text, as: UTF8.self)
}
