/// Where a value sits in a JSON document, for messages: `manifests[0].digest`,
/// `annotations["org.opencontainers.image.ref.name"]`; the document itself is the empty path.
struct JSONPath: Sendable, Hashable, CustomStringConvertible {
    enum Component: Sendable, Hashable {
        case key(String)
        case index(Int)
    }

    private(set) var components: [Component] = []

    static let root = JSONPath()

    func appending(_ key: String) -> JSONPath {
        var path = self
        path.components.append(.key(key))
        return path
    }

    func appending(index: Int) -> JSONPath {
        var path = self
        path.components.append(.index(index))
        return path
    }

    /// `a.b[2]["x.y"]`; a key that is not an identifier (letters, digits, `_`, not starting with a digit) is
    /// written as a quoted subscript. The root is `(top level)`.
    var description: String {
        guard !components.isEmpty else { return "(top level)" }
        var text = ""
        for component in components {
            switch component {
            case .index(let index): text += "[\(index)]"
            case .key(let key):
                if Self.isIdentifier(key) {
                    text += text.isEmpty ? key : "." + key
                } else {
                    text += "[" + key.debugDescription + "]"
                }
            }
        }
        return text
    }

    private static func isIdentifier(_ key: String) -> Bool {
        guard let first = key.utf8.first, !JSONReader.isDigit(first) else { return false }
        return key.utf8.allSatisfy {
            JSONReader.isDigit($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x5F
        }
    }
}
