import ArgumentParser
import UnionMount

/// `--uid-map` and `--gid-map`: the id mapping of idmapped layers, as ranges.
struct IDMapOptions: ParsableArguments {
    @Option(
        name: .customLong("uid-map"),
        help: ArgumentHelp(
            "Idmap the lower layers: container ids INSIDE.. are host ids OUTSIDE.. (repeatable).",
            valueName: "inside:outside:count"))
    var uidMap: [String] = []
    @Option(
        name: .customLong("gid-map"),
        help: ArgumentHelp(
            "The gid ranges of the mapping (repeatable; default: the --uid-map ranges).",
            valueName: "inside:outside:count"))
    var gidMap: [String] = []

    var isEmpty: Bool { uidMap.isEmpty && gidMap.isEmpty }

    func validate() throws {
        _ = try mapping()
    }

    /// The mapping given, nil for none; malformed or overlapping ranges are bad usage (exit 64).
    func mapping() throws -> IDMapping? {
        guard !isEmpty else { return nil }
        guard !uidMap.isEmpty else { throw ValidationError("--gid-map needs --uid-map") }
        do {
            let uids = try uidMap.map { text throws(UnionMountError) in try IDRange(parsing: text) }
            let gids = try gidMap.map { text throws(UnionMountError) in try IDRange(parsing: text) }
            let mapping = IDMapping.ranges(uids: uids, gids: gids.isEmpty ? uids : gids)
            try mapping.validate()
            return mapping
        } catch {
            throw ValidationError(error.message)
        }
    }
}
