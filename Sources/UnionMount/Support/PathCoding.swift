import SystemPackage

/// JSON form of a path: a string when the bytes are UTF-8, otherwise `{"base64": "…"}`, so that no path
/// is ever altered by encoding it (swift-system's own `FilePath` coding is an internal storage dump).
struct CodablePath: Codable, Hashable, Sendable {
    var path: FilePath

    init(_ path: FilePath) { self.path = path }

    private enum Keys: String, CodingKey { case base64 }

    init(from decoder: any Decoder) throws {
        if let string = try? decoder.singleValueContainer().decode(String.self) {
            guard !string.utf8.contains(0) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "NUL in path"))
            }
            path = FilePath(bytes: Array(string.utf8))
            return
        }
        let container = try decoder.container(keyedBy: Keys.self)
        let encoded = try container.decode(String.self, forKey: .base64)
        guard let bytes = Base64.decode(encoded), !bytes.contains(0) else {
            throw DecodingError.dataCorruptedError(forKey: .base64, in: container, debugDescription: "bad base64 path")
        }
        path = FilePath(bytes: bytes)
    }

    func encode(to encoder: any Encoder) throws {
        let bytes = path.bytes
        if let string = String(validating: bytes, as: UTF8.self) {
            var container = encoder.singleValueContainer()
            try container.encode(string)
        } else {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(Base64.encode(bytes), forKey: .base64)
        }
    }
}

extension KeyedDecodingContainer {
    package func decodePath(forKey key: Key) throws -> FilePath { try decode(CodablePath.self, forKey: key).path }
    package func decodePathIfPresent(forKey key: Key) throws -> FilePath? {
        try decodeIfPresent(CodablePath.self, forKey: key)?.path
    }
    package func decodePaths(forKey key: Key) throws -> [FilePath] {
        try decodeIfPresent([CodablePath].self, forKey: key)?.map(\.path) ?? []
    }
}

extension KeyedEncodingContainer {
    package mutating func encode(path: FilePath, forKey key: Key) throws { try encode(CodablePath(path), forKey: key) }
    package mutating func encode(path: FilePath?, forKey key: Key) throws {
        if let path { try encode(CodablePath(path), forKey: key) } else { try encodeNil(forKey: key) }
    }
    package mutating func encode(paths: [FilePath], forKey key: Key) throws {
        try encode(paths.map(CodablePath.init), forKey: key)
    }
}

/// Minimal RFC 4648 base64, enough for path coding without Foundation.
package enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    package static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index]
            let b1 = index + 1 < bytes.count ? bytes[index + 1] : 0
            let b2 = index + 2 < bytes.count ? bytes[index + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(index + 1 < bytes.count ? alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(index + 2 < bytes.count ? alphabet[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    package static func decode(_ string: String) -> [UInt8]? {
        var values: [UInt8] = []
        for byte in string.utf8 where byte != UInt8(ascii: "=") {
            guard let value = alphabet.firstIndex(of: byte) else { return nil }
            values.append(UInt8(value))
        }
        var out: [UInt8] = []
        var index = 0
        while index + 1 < values.count {
            out.append(values[index] << 2 | values[index + 1] >> 4)
            if index + 2 < values.count { out.append(values[index + 1] << 4 | values[index + 2] >> 2) }
            if index + 3 < values.count { out.append(values[index + 2] << 6 | values[index + 3]) }
            index += 4
        }
        return out
    }
}
