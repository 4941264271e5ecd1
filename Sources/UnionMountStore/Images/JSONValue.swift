/// A JSON value as ``JSONReader`` reads it from an image's metadata: members in the order written, numbers as
/// written.
///
/// The library does not use Foundation, so image JSON (index, manifest, config, `manifest.json` of a
/// `docker save` archive) is read by ``JSONReader`` into this, and the image types are decoded from it field by
/// field, each failure naming the file and the field path.
public enum JSONValue: Sendable, Hashable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number, as its text in the document (`-1`, `4.5e3`): callers choose how to read it (sizes must be
    /// integers, see ``JSONValue/integer``).
    case number(String)
    /// A string, escapes decoded.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object: its members in document order (keys are unique: ``JSONReader`` refuses a repeated key).
    case object([JSONMember])

    /// The number as an `Int64` when it is written as an integer in range (no fraction, no exponent).
    public var integer: Int64? {
        guard case .number(let text) = self, text.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || JSONReader.isDigit($0) })
        else {
            return nil
        }
        return Int64(text)
    }

    /// The value in JSON text: no whitespace, members in order, strings escaped minimally (`"`, `\`, and the
    /// control characters below U+0020, as `\uXXXX` except the short forms `\b \f \n \r \t`). Reading the text
    /// back with ``JSONReader`` gives an equal value.
    public var serialized: [UInt8] {
        var out: [UInt8] = []
        serialize(into: &out)
        return out
    }

    private func serialize(into out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let value): out += Array((value ? "true" : "false").utf8)
        case .number(let text): out += Array(text.utf8)
        case .string(let text): JSONValue.serialize(string: text, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                element.serialize(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.serialize(string: member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                member.value.serialize(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func serialize(string: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x08: out += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: out += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// One member of a JSON object.
public struct JSONMember: Sendable, Hashable {
    /// The key, escapes decoded.
    public var key: String
    /// The value.
    public var value: JSONValue

    /// A member.
    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }

    /// Keys compare by their UTF-8 bytes (Swift's `==` on `String` would call `"é"` and `"e\u{301}"` equal).
    public static func == (lhs: JSONMember, rhs: JSONMember) -> Bool {
        lhs.key.utf8.elementsEqual(rhs.key.utf8) && lhs.value == rhs.value
    }

    /// Hashes the key's UTF-8 bytes and the value.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(Array(key.utf8))
        hasher.combine(value)
    }
}

extension JSONValue: Codable {
    /// Decodes any JSON value (numbers as decimal text, object member order as the decoder gives it).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .number(String(value))
        } else if let value = try? container.decode(Double.self) {
            self = .number(String(value))
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            let members = try container.decode([String: JSONValue].self)
            self = .object(members.sorted { $0.key < $1.key }.map { JSONMember(key: $0.key, value: $0.value) })
        }
    }

    /// Encodes the value (a number as an integer when it is one, else as a `Double`).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let text):
            if let value = integer {
                try container.encode(value)
            } else {
                try container.encode(Double(text) ?? 0)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let members):
            var object: [String: JSONValue] = [:]
            for member in members { object[member.key] = member.value }
            try container.encode(object)
        }
    }
}
