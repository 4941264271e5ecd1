import UnionMount

/// A JSON value with the file and path it came from, read into typed fields: every failure is
/// `UnionMountError.Code.malformedInput` whose message and input name the place, `index.json: manifests[0].digest`.
struct JSONField {
    let value: JSONValue
    let file: String
    let path: JSONPath

    /// The top of the document `bytes`, parsed strictly, or the error naming `file`.
    static func document(_ bytes: [UInt8], file: String) throws(UnionMountError) -> JSONField {
        JSONField(value: try JSONReader.parse(bytes, file: file), file: file, path: .root)
    }

    /// `"<file>: <path>"`, the input of an error about this value.
    var place: String { "\(file): \(path)" }

    func malformed(_ what: String) -> UnionMountError {
        UnionMountError.malformed("\(place): \(what)", input: place)
    }

    func unsupported(_ what: String) -> UnionMountError {
        UnionMountError(code: .unsupported, message: "\(place): \(what)", input: place)
    }

    var kind: String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    func string() throws(UnionMountError) -> String {
        guard case .string(let text) = value else { throw malformed("expected a string, found \(kind)") }
        return text
    }

    /// An integer in `Int64` range, written without fraction or exponent.
    func integer() throws(UnionMountError) -> Int64 {
        guard case .number = value else { throw malformed("expected an integer, found \(kind)") }
        guard let number = value.integer else { throw malformed("expected an integer in 64-bit range") }
        return number
    }

    func digest() throws(UnionMountError) -> ImageDigest { try digest(parsing: try string()) }

    /// `text` as a digest; the error (malformed, or unsupported for another algorithm) names this place.
    func digest(parsing text: String) throws(UnionMountError) -> ImageDigest {
        do {
            return try ImageDigest(parsing: text, input: place)
        } catch {
            throw UnionMountError(code: error.code, message: "\(place): \(error.message)", input: place)
        }
    }

    func elements() throws(UnionMountError) -> [JSONField] {
        guard case .array(let elements) = value else { throw malformed("expected an array, found \(kind)") }
        return elements.enumerated().map { JSONField(value: $1, file: file, path: path.appending(index: $0)) }
    }

    func strings() throws(UnionMountError) -> [String] {
        var strings: [String] = []
        for element in try elements() { strings.append(try element.string()) }
        return strings
    }

    /// An object of string values (`annotations`, `Labels`).
    func stringMap() throws(UnionMountError) -> [String: String] {
        var map: [String: String] = [:]
        for (key, field) in try object().fields {
            map[key] = try field.string()
        }
        return map
    }

    func object() throws(UnionMountError) -> JSONObjectField {
        guard case .object(let members) = value else { throw malformed("expected an object, found \(kind)") }
        return JSONObjectField(members: members, field: self)
    }
}

/// An object's members, looked up by key.
///
/// A lookup also refuses a member whose key differs from the one asked for only in case (or by the two
/// non-ASCII letters that fold to ASCII, `ſ` U+017F and `K` U+212A): Go's `encoding/json`, which Docker,
/// containerd and skopeo use, matches keys that way, so `{"digest": A, "Digest": B}` means B to them; such an
/// object means different things to different readers and is refused.
struct JSONObjectField {
    let members: [JSONMember]
    let field: JSONField

    /// Every member with its path, in order.
    var fields: [(key: String, field: JSONField)] {
        members.map { ($0.key, JSONField(value: $0.value, file: field.file, path: field.path.appending($0.key))) }
    }

    /// The member `key`, nil when absent.
    func member(_ key: String) throws(UnionMountError) -> JSONField? {
        var found: JSONField?
        let folded = Self.fold(key)
        for member in members {
            if member.key.utf8.elementsEqual(key.utf8) {
                found = JSONField(value: member.value, file: field.file, path: field.path.appending(key))
            } else if Self.fold(member.key) == folded {
                throw JSONField(value: member.value, file: field.file, path: field.path.appending(member.key))
                    .malformed(
                        "the key \(member.key.debugDescription) differs from \(key.debugDescription) only in case")
            }
        }
        return found
    }

    /// The member `key`; absent → malformed.
    func required(_ key: String) throws(UnionMountError) -> JSONField {
        guard let member = try member(key) else {
            throw field.malformed("the required field \(key.debugDescription) is missing")
        }
        return member
    }

    /// The member `key`, nil when absent or `null` (Go writes a nil slice or map as `null`).
    func optional(_ key: String) throws(UnionMountError) -> JSONField? {
        guard let member = try member(key), member.value != .null else { return nil }
        return member
    }

    /// Go's case folding of keys: ASCII letters, plus the Kelvin sign and the long s, which fold to `k` and `s`.
    static func fold(_ key: String) -> [UInt32] {
        key.unicodeScalars.map { scalar in
            switch scalar.value {
            case 0x41...0x5A: scalar.value + 0x20
            case 0x212A: 0x6B
            case 0x17F: 0x73
            default: scalar.value
            }
        }
    }
}
