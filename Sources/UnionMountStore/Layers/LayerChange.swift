import SystemPackage
import UnionMount

/// One change a container made to its image, as `docker diff` lists it.
public struct LayerChange: Sendable, Hashable, Codable, CustomStringConvertible {
    /// What happened to the path.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// The path did not exist in the image.
        case added
        /// The path existed and was changed or replaced.
        case modified
        /// The path existed and was removed.
        case deleted
    }

    /// The path relative to the root of the container (`etc/passwd`); never empty, never absolute.
    public var path: FilePath
    /// What happened.
    public var kind: Kind

    /// Creates a change.
    public init(path: FilePath, kind: Kind) {
        self.path = path
        self.kind = kind
    }

    /// `A path`, `C path` or `D path`, as `docker diff` prints them (the path rendered readably).
    public var description: String {
        let letter =
            switch kind {
            case .added: "A"
            case .modified: "C"
            case .deleted: "D"
            }
        return "\(letter) \(path.readable)"
    }

    private enum CodingKeys: String, CodingKey { case path, kind }

    /// Decodes the JSON form of ``encode(to:)``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        path = try container.decodePath(forKey: .path)
        kind = try container.decode(Kind.self, forKey: .kind)
    }

    /// Encodes `path` (a string, or `{"base64": …}` when it is not UTF-8) and `kind` (`added`, `modified` or
    /// `deleted`).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path: path, forKey: .path)
        try container.encode(kind, forKey: .kind)
    }
}
