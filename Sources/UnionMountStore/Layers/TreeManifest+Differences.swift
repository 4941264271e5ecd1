import SystemPackage
import UnionMount

extension TreeManifest {
    /// What differs between this manifest and `other`, one readable line per difference, in path order:
    /// `only in this: <path>`, `only in other: <path>`, or `<path>: <field> <this value> ≠ <other value>`. Empty
    /// when the trees are the same as far as both manifests recorded.
    public func differences(from other: TreeManifest) -> [String] {
        var theirs: [[UInt8]: Entry] = [:]
        for entry in other.entries { theirs[entry.path.bytes] = entry }
        var ours: Set<[UInt8]> = []
        var lines: [(key: [UInt8], line: String)] = []
        for entry in entries {
            let key = entry.path.bytes
            ours.insert(key)
            guard let match = theirs[key] else {
                lines.append((key, "only in this: \(key.readable)"))
                continue
            }
            for field in entry.fieldDifferences(from: match) { lines.append((key, "\(key.readable): \(field)")) }
        }
        for entry in other.entries where !ours.contains(entry.path.bytes) {
            lines.append((entry.path.bytes, "only in other: \(entry.path.bytes.readable)"))
        }
        return lines.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.line)
    }
}

extension TreeManifest.Entry {
    /// One line per field that differs.
    func fieldDifferences(from other: Self) -> [String] {
        var fields: [String] = []
        func compare<T: Equatable>(_ name: String, _ mine: T, _ theirs: T, _ render: (T) -> String) {
            if mine != theirs { fields.append("\(name) \(render(mine)) ≠ \(render(theirs))") }
        }
        compare("type", type, other.type) { $0.rawValue }
        compare("mode", mode, other.mode) { "0" + String($0, radix: 8) }
        compare("uid", uid, other.uid) { "\($0)" }
        compare("gid", gid, other.gid) { "\($0)" }
        compare("size", size, other.size) { $0.map { "\($0)" } ?? "-" }
        compare("digest", digest, other.digest) { $0 ?? "-" }
        compare("symlink target", symlinkTarget, other.symlinkTarget) { $0?.readable ?? "-" }
        compare("device", device, other.device) { $0.map { "\($0.major):\($0.minor)" } ?? "-" }
        compare("mtime", modificationTime, other.modificationTime) { $0.map { "\($0)ns" } ?? "-" }
        compare("link group", linkGroup, other.linkGroup) { $0.map { "\($0)" } ?? "none" }
        let mine = Dictionary(xattrs.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        let theirs = Dictionary(other.xattrs.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        for name in Set(mine.keys).union(theirs.keys).sorted() where mine[name] != theirs[name] {
            let render = { (value: [UInt8]?) in value.map { "\"\($0.readable)\"" } ?? "absent" }
            fields.append("xattr \(name) \(render(mine[name])) ≠ \(render(theirs[name]))")
        }
        return fields
    }
}
