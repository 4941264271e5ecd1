import SystemPackage

/// One range of a uid or gid map: ids `inside ..< inside + count` of the mapping's user namespace are the ids
/// `outside ..< outside + count` outside it (one line of `/proc/<pid>/uid_map`, see user_namespaces(7)).
public struct IDRange: Sendable, Hashable, Codable {
    /// The first id inside the user namespace (the id a container sees).
    public var inside: UInt32
    /// The first id outside (the host's id, the one files carry on disk).
    public var outside: UInt32
    /// How many ids follow, at least 1.
    public var count: UInt32

    /// Creates a range.
    public init(inside: UInt32, outside: UInt32, count: UInt32) {
        self.inside = inside
        self.outside = outside
        self.count = count
    }

    /// Parses `inside:outside:count` (the form of `--uid-map`, as podman and `unshare --map-users` write it).
    ///
    /// - Throws: ``UnionMountError/Code/invalidSpec`` naming the text.
    public init(parsing text: String) throws(UnionMountError) {
        let fields = text.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 3, let inside = UInt32(fields[0]), let outside = UInt32(fields[1]),
            let count = UInt32(fields[2])
        else {
            throw UnionMountError(
                code: .invalidSpec, message: "an id range is inside:outside:count (decimal ids), not \(text)",
                input: text)
        }
        self.init(inside: inside, outside: outside, count: count)
    }

    /// The range as `inside:outside:count`.
    public var text: String { "\(inside):\(outside):\(count)" }

    /// `ranges` as their ``text`` forms joined by `separator` (records use a space, messages a comma).
    package static func text(_ ranges: [IDRange], separator: String = ",") -> String {
        ranges.map(\.text).joined(separator: separator)
    }

    /// Each of `fields` parsed as `inside:outside:count`; nil when any is not one.
    package static func ranges<Fields: Sequence>(_ fields: Fields) -> [IDRange]? where Fields.Element: StringProtocol {
        var ranges: [IDRange] = []
        for field in fields {
            guard let range = try? IDRange(parsing: String(field)) else { return nil }
            ranges.append(range)
        }
        return ranges
    }
}

/// How the owners of a union's lower layers are mapped: each lower (and data-only) layer is mounted through an
/// idmapped mount (open_tree(2) `OPEN_TREE_CLONE` and mount_setattr(2) `MOUNT_ATTR_IDMAP`, Linux 5.12+), and the
/// overlay is made over those (Linux 5.19+).
///
/// A file owned by id `n` in a layer shows as `outside + (n - inside)` in the union, so with `0:100000:65536` a
/// layer's root-owned files are owned by 100000 in the merged view, and by 0 inside a user namespace with the same
/// map. Ids the map does not cover show as the overflow id (65534). The upper and work directories are not
/// idmapped: files a container creates land there with its host ids, so the caller owns the upper directory by
/// the mapped root (the layer store does).
public enum IDMapping: Sendable, Hashable {
    /// uid and gid ranges; the library makes a user namespace with these maps for the mount (a helper process it
    /// clones, never unshare(2) in the caller), which lives as long as the mount.
    case ranges(uids: [IDRange], gids: [IDRange])
    /// An existing user namespace, by a file that opens it: `/proc/<pid>/ns/user` or a bind mount of one.
    case userNamespace(FilePath)

    /// The most lines a uid or gid map takes (Linux 4.15+).
    public static let maximumRanges = 340

    /// Checks the ranges the way the kernel will (user_namespaces(7)): 1 to ``maximumRanges`` of each, no empty
    /// range, none running past 2³² − 1, no two overlapping inside or outside.
    ///
    /// - Throws: ``UnionMountError/Code/invalidSpec`` naming the map and the range.
    public func validate() throws(UnionMountError) {
        guard case .ranges(let uids, let gids) = self else { return }
        for (name, ranges) in [("uid map", uids), ("gid map", gids)] {
            func refuse(_ message: String) -> UnionMountError {
                UnionMountError(code: .invalidSpec, message: "\(name): \(message)", input: name)
            }
            guard !ranges.isEmpty, ranges.count <= Self.maximumRanges else {
                throw refuse("needs 1 to \(Self.maximumRanges) ranges, has \(ranges.count)")
            }
            for range in ranges {
                guard range.count > 0 else { throw refuse("the range \(range.text) is empty") }
                guard UInt64(range.inside) + UInt64(range.count) <= UInt64(UInt32.max),
                    UInt64(range.outside) + UInt64(range.count) <= UInt64(UInt32.max)
                else { throw refuse("the range \(range.text) runs past id 4294967294") }
            }
            for side in [\IDRange.inside, \IDRange.outside] {
                let sorted = ranges.sorted { $0[keyPath: side] < $1[keyPath: side] }
                for (lower, upper) in zip(sorted, sorted.dropFirst())
                where UInt64(lower[keyPath: side]) + UInt64(lower.count) > UInt64(upper[keyPath: side]) {
                    throw refuse("the ranges \(lower.text) and \(upper.text) overlap")
                }
            }
        }
    }

    /// A map's text as `/proc/<pid>/uid_map` takes it: one `inside outside count` line per range.
    static func mapText(_ ranges: [IDRange]) -> [UInt8] {
        Array(ranges.map { "\($0.inside) \($0.outside) \($0.count)\n" }.joined().utf8)
    }
}

extension IDMapping: Codable {
    private enum CodingKeys: String, CodingKey {
        case uidMap, gidMap, userNamespace
    }

    /// Decodes `{"uidMap": [{"inside":…,"outside":…,"count":…}], "gidMap": […]}` or `{"userNamespace": path}`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let path = try container.decodePathIfPresent(forKey: .userNamespace) {
            self = .userNamespace(path)
        } else {
            self = .ranges(
                uids: try container.decode([IDRange].self, forKey: .uidMap),
                gids: try container.decode([IDRange].self, forKey: .gidMap))
        }
    }

    /// Encodes the form ``init(from:)`` reads.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .ranges(let uids, let gids):
            try container.encode(uids, forKey: .uidMap)
            try container.encode(gids, forKey: .gidMap)
        case .userNamespace(let path):
            try container.encode(path: path, forKey: .userNamespace)
        }
    }
}
