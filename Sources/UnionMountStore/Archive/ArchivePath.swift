import UnionMount

/// The name of a tar entry (or a hard link's target) as path components inside the layer.
///
/// `.` components and repeated or trailing slashes are dropped, so `./etc//passwd` is `etc/passwd` and `./` is
/// the layer root (real tars write `./` prefixes everywhere). Anything that could name a place outside the layer
/// is refused, never repaired: an absolute name (`/etc/passwd`) and any `..` component.
enum ArchivePath {
    /// Why a name is refused.
    enum Refusal: Error {
        case empty, absolute, parentComponent, tooLong(Int)

        var reason: String {
            switch self {
            case .empty: "the name is empty"
            case .absolute: "the name is an absolute path (an entry must stay inside the layer)"
            case .parentComponent: "the name has a '..' component (an entry must stay inside the layer)"
            case .tooLong(let limit): "the name is longer than the limit of \(limit) bytes"
            }
        }
    }

    /// The components of `name` (empty for the layer root).
    static func components(_ name: [UInt8], maximumLength: Int) throws(Refusal) -> [[UInt8]] {
        guard !name.isEmpty else { throw .empty }
        guard name.count <= maximumLength else { throw .tooLong(maximumLength) }
        guard name[0] != UInt8(ascii: "/") else { throw .absolute }
        var components: [[UInt8]] = []
        for component in name.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if component.count == 1 && component[component.startIndex] == UInt8(ascii: ".") { continue }
            if component.elementsEqual("..".utf8) { throw .parentComponent }
            components.append(Array(component))
        }
        return components
    }

    /// `a/b/c` of components.
    static func joined(_ components: some Collection<[UInt8]>) -> [UInt8] {
        var out: [UInt8] = []
        for component in components {
            if !out.isEmpty { out.append(UInt8(ascii: "/")) }
            out += component
        }
        return out
    }
}
