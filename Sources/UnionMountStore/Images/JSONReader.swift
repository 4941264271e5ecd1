import UnionMount

/// A strict JSON reader (RFC 8259) for image metadata, which is untrusted input.
///
/// Refused, as `UnionMountError.Code.malformedInput` naming the file, the field path and the byte offset:
/// anything RFC 8259 does not allow (comments, trailing commas, single quotes, `NaN`, leading zeros, a leading
/// `+`, a byte-order mark, bytes after the value), strings that are not UTF-8 or hold a lone surrogate escape or
/// a raw control character, nesting deeper than ``maximumDepth``, and **a key repeated in an object**: parsers
/// disagree on which of two `"digest"` members counts (the first, the last, an error), and an image whose
/// meaning depends on the parser is refused. Keys are compared byte by byte after escapes are decoded, so
/// `"a"` and `"\u0061"` are the same key.
///
/// Why not Foundation's `JSONDecoder`: the library does not import Foundation, and JSONDecoder accepts repeated
/// keys (the last wins) and cannot say which JSON field a type error came from in the terms an image user
/// knows.
public enum JSONReader {
    /// The deepest nesting of arrays and objects accepted (image metadata nests a handful of levels).
    public static let maximumDepth = 64

    /// Parses `bytes`, one JSON value with optional whitespace around it.
    ///
    /// - Parameters:
    ///   - bytes: the document.
    ///   - file: what the bytes are, named in errors (`index.json`, `blobs/sha256/<hex>`).
    /// - Throws: `UnionMountError.Code.malformedInput` naming `file` and the path of the value that is wrong.
    public static func parse(_ bytes: [UInt8], file: String) throws(UnionMountError) -> JSONValue {
        var parser = Parser(bytes: bytes, file: file)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0, path: .root)
        parser.skipWhitespace()
        guard parser.offset == bytes.count else {
            throw parser.error("unexpected bytes after the JSON value", path: .root)
        }
        return value
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }
}

private struct Parser {
    let bytes: [UInt8]
    let file: String
    var offset = 0

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    func error(_ what: String, path: JSONPath) -> UnionMountError {
        let input = "\(file): \(path)"
        return UnionMountError.malformed("\(input): \(what) (at byte \(offset))", input: input)
    }

    var current: UInt8? { offset < bytes.count ? bytes[offset] : nil }

    mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { offset += 1 }
    }

    mutating func expect(_ literal: String, path: JSONPath) throws(UnionMountError) {
        for byte in literal.utf8 {
            guard current == byte else { throw error("not a JSON value", path: path) }
            offset += 1
        }
    }

    mutating func value(depth: Int, path: JSONPath) throws(UnionMountError) -> JSONValue {
        guard let byte = current else { throw error("the document ends where a value should be", path: path) }
        switch byte {
        case UInt8(ascii: "{"): return try object(depth: depth + 1, path: path)
        case UInt8(ascii: "["): return try array(depth: depth + 1, path: path)
        case UInt8(ascii: "\""): return .string(try string(path: path))
        case UInt8(ascii: "t"):
            try expect("true", path: path)
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false", path: path)
            return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null", path: path)
            return .null
        case UInt8(ascii: "-"), 0x30...0x39: return .number(try number(path: path))
        default: throw error("not a JSON value", path: path)
        }
    }

    mutating func object(depth: Int, path: JSONPath) throws(UnionMountError) -> JSONValue {
        guard depth <= JSONReader.maximumDepth else {
            throw error("nested deeper than \(JSONReader.maximumDepth) levels", path: path)
        }
        offset += 1
        var members: [JSONMember] = []
        var keys: Set<[UInt8]> = []
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            offset += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a key string", path: path) }
            let keyStart = offset
            let key = try string(path: path)
            let memberPath = path.appending(key)
            guard keys.insert(Array(key.utf8)).inserted else {
                offset = keyStart
                throw error("the key \(key.debugDescription) appears twice", path: memberPath)
            }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error("expected ':' after the key", path: memberPath) }
            offset += 1
            skipWhitespace()
            members.append(JSONMember(key: key, value: try value(depth: depth, path: memberPath)))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): offset += 1
            case UInt8(ascii: "}"):
                offset += 1
                return .object(members)
            default: throw error("expected ',' or '}' in an object", path: path)
            }
        }
    }

    mutating func array(depth: Int, path: JSONPath) throws(UnionMountError) -> JSONValue {
        guard depth <= JSONReader.maximumDepth else {
            throw error("nested deeper than \(JSONReader.maximumDepth) levels", path: path)
        }
        offset += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            offset += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth, path: path.appending(index: elements.count)))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): offset += 1
            case UInt8(ascii: "]"):
                offset += 1
                return .array(elements)
            default: throw error("expected ',' or ']' in an array", path: path)
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, returned as written.
    mutating func number(path: JSONPath) throws(UnionMountError) -> String {
        let start = offset
        if current == UInt8(ascii: "-") { offset += 1 }
        guard let first = current, JSONReader.isDigit(first) else { throw error("malformed number", path: path) }
        offset += 1
        if first == UInt8(ascii: "0"), let next = current, JSONReader.isDigit(next) {
            throw error("a number has a leading zero", path: path)
        }
        skipDigits()
        if current == UInt8(ascii: ".") {
            offset += 1
            guard digits() else { throw error("no digits after '.'", path: path) }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            offset += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { offset += 1 }
            guard digits() else { throw error("no digits in the exponent", path: path) }
        }
        return String(decoding: bytes[start..<offset], as: UTF8.self)
    }

    mutating func skipDigits() {
        while let byte = current, JSONReader.isDigit(byte) { offset += 1 }
    }

    /// Skips one or more digits; false when there is none.
    mutating func digits() -> Bool {
        let start = offset
        skipDigits()
        return offset > start
    }

    /// A string starting at the opening quote; UTF-8 is validated, escapes decoded.
    mutating func string(path: JSONPath) throws(UnionMountError) -> String {
        offset += 1
        var out: [UInt8] = []
        var runStart = offset
        while true {
            guard let byte = current else { throw error("a string is not closed", path: path) }
            if byte == UInt8(ascii: "\"") {
                out += bytes[runStart..<offset]
                offset += 1
                break
            }
            if byte < 0x20 { throw error("a control character (0x\(hex(byte))) in a string", path: path) }
            if byte != UInt8(ascii: "\\") {
                offset += 1
                continue
            }
            out += bytes[runStart..<offset]
            offset += 1
            guard let escape = current else { throw error("a string is not closed", path: path) }
            offset += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"): appendUTF8(try unicodeEscape(path: path), to: &out)
            default: throw error("unknown escape '\\\(Character(Unicode.Scalar(escape)))'", path: path)
            }
            runStart = offset
        }
        guard let text = String(validating: out, as: UTF8.self) else {
            throw error("a string is not valid UTF-8", path: path)
        }
        return text
    }

    /// The scalar of `\uXXXX` (the `\u` already read), a surrogate pair joined.
    mutating func unicodeEscape(path: JSONPath) throws(UnionMountError) -> UInt32 {
        let first = try hexQuad(path: path)
        switch first {
        case 0xD800...0xDBFF:
            guard current == UInt8(ascii: "\\"), offset + 1 < bytes.count, bytes[offset + 1] == UInt8(ascii: "u")
            else { throw error("a high surrogate escape without its low half", path: path) }
            offset += 2
            let second = try hexQuad(path: path)
            guard (0xDC00...0xDFFF).contains(second) else {
                throw error("a high surrogate escape without its low half", path: path)
            }
            return 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        case 0xDC00...0xDFFF: throw error("a lone low surrogate escape", path: path)
        default: return first
        }
    }

    mutating func hexQuad(path: JSONPath) throws(UnionMountError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = current else { throw error("a \\u escape is cut short", path: path) }
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x41...0x46: digit = byte - 0x41 + 10
            case 0x61...0x66: digit = byte - 0x61 + 10
            default: throw error("a \\u escape holds a non-hex digit", path: path)
            }
            value = value << 4 | UInt32(digit)
            offset += 1
        }
        return value
    }

    func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80: out.append(UInt8(scalar))
        case 0x80..<0x800:
            out += [UInt8(0xC0 | scalar >> 6), UInt8(0x80 | scalar & 0x3F)]
        case 0x800..<0x10000:
            out += [UInt8(0xE0 | scalar >> 12), UInt8(0x80 | scalar >> 6 & 0x3F), UInt8(0x80 | scalar & 0x3F)]
        default:
            out += [
                UInt8(0xF0 | scalar >> 18), UInt8(0x80 | scalar >> 12 & 0x3F), UInt8(0x80 | scalar >> 6 & 0x3F),
                UInt8(0x80 | scalar & 0x3F),
            ]
        }
    }

    func hex(_ byte: UInt8) -> String { lowercaseHex(CollectionOfOne(byte)) }
}
