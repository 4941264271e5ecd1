import UnionMount

/// An image name, `name[:tag]`, in a subset of the OCI / Docker reference grammar: what a store records an
/// image under and a `docker save` archive's `RepoTags` hold.
///
/// - `name` is an optional domain (`registry.example.com`, `localhost:5000`: components of letters, digits and
///   `-`, joined by `.`, with an optional `:port`; recognized as a domain when it holds a `.` or a `:` or is
///   `localhost`), then one or more `/`-separated path components of **lowercase** letters and digits joined by
///   single separators `.`, `_`, `__` or runs of `-`;
/// - `tag` is `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`, `latest` when omitted;
/// - the name is at most 255 bytes; digest references (`@sha256:…`), IPv6 domains and a 64-hex-digit name
///   (which reads as an image or layer id) are refused.
public struct ImageReference: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The repository, domain included: `docker.io/library/debian`, `debian`.
    public var name: String
    /// The tag.
    public var tag: String

    /// `name:tag`, the form a store records.
    public var description: String { name + ":" + tag }

    /// Parses `text`.
    ///
    /// - Throws: `UnionMountError.Code.invalidArgument` naming `input`, saying what is wrong.
    public init(parsing text: String, input: String = "image name") throws(UnionMountError) {
        func refuse(_ why: String) -> UnionMountError {
            UnionMountError.invalidArgument("\(text.debugDescription) is not an image name: \(why)", input: input)
        }
        guard !text.contains("@") else { throw refuse("digest references are not supported") }
        var name = Substring(text)
        var tag = "latest"
        // The tag is after the last ':' that follows the last '/' (a ':' before it is a domain's port).
        let afterSlash = text.lastIndex(of: "/").map { text.index(after: $0) } ?? text.startIndex
        if let colon = text[afterSlash...].lastIndex(of: ":") {
            tag = String(text[text.index(after: colon)...])
            name = text[..<colon]
            guard Self.isTag(tag) else {
                throw refuse("the tag must be [A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
            }
        }
        guard !name.isEmpty, name.utf8.count <= 255 else { throw refuse("the name must be 1 to 255 bytes") }
        var components = name.split(separator: "/", omittingEmptySubsequences: false)
        if components.count > 1, let first = components.first,
            first.contains(".") || first.contains(":") || first == "localhost"
        {
            guard Self.isDomain(first) else { throw refuse("\(String(first).debugDescription) is not a domain") }
            components.removeFirst()
        }
        for component in components where !Self.isPathComponent(component) {
            throw refuse(
                "the component \(String(component).debugDescription) must be lowercase letters and digits "
                    + "joined by '.', '_', '__' or '-'")
        }
        if name.utf8.count == 64, name.utf8.allSatisfy({ JSONReader.isDigit($0) || (0x61...0x66).contains($0) }) {
            throw refuse("a name of 64 hexadecimal digits reads as an id")
        }
        self.name = String(name)
        self.tag = tag
    }

    static func isTag(_ tag: String) -> Bool {
        let bytes = Array(tag.utf8)
        guard let first = bytes.first, bytes.count <= 128, isWord(first) else { return false }
        return bytes.allSatisfy { isWord($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    private static func isWord(_ byte: UInt8) -> Bool {
        isLowerAlphanumeric(byte) || (0x41...0x5A).contains(byte) || byte == UInt8(ascii: "_")
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        JSONReader.isDigit(byte) || (0x61...0x7A).contains(byte)
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
    static func isPathComponent(_ component: Substring) -> Bool {
        let bytes = Array(component.utf8)
        var index = 0
        func run() -> Bool {
            let start = index
            while index < bytes.count, isLowerAlphanumeric(bytes[index]) { index += 1 }
            return index > start
        }
        guard run() else { return false }
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "."): index += 1
            case UInt8(ascii: "_"):
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "_") { index += 1 }
            case UInt8(ascii: "-"):
                while index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
            default: return false
            }
            guard run() else { return false }
        }
        return true
    }

    /// `host[:port]`, host being `[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?` components joined by `.`.
    static func isDomain(_ domain: Substring) -> Bool {
        let parts = domain.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].utf8.count <= 5, parts[1].utf8.allSatisfy(JSONReader.isDigit) else {
                return false
            }
        }
        let labels = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            let bytes = Array(label.utf8)
            guard let first = bytes.first, let last = bytes.last else { return false }
            func alphanumeric(_ byte: UInt8) -> Bool { isLowerAlphanumeric(byte) || (0x41...0x5A).contains(byte) }
            return alphanumeric(first) && alphanumeric(last) && bytes.allSatisfy { alphanumeric($0) || $0 == 0x2D }
        }
    }
}
