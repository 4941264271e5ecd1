import SystemPackage

/// Whether the mount a layer directory lives on is idmapped, and its maps where the kernel says: for unions
/// UnionMount did not make, whose layers sit on idmapped mounts the mount table lists (a runtime that idmaps the
/// layers' common parent and keeps it attached, as containerd does). One answer per mount, kept for one listing.
///
/// Where statmount(2) gives unique mount ids (Linux 6.8+): `mnt_attr` & `MOUNT_ATTR_IDMAP`, and the maps from
/// `STATMOUNT_MNT_UIDMAP`/`GIDMAP` (6.15+; before that a mapping is reported idmapped with no maps). Otherwise the
/// `idmapped` flag mountinfo shows in the mount's options (5.12+), read once.
final class LayerMountProbe {
    /// What one mount says.
    struct Answer: Hashable {
        var idmapped: Bool
        var mapping: IDMapping?
        static let plain = Answer(idmapped: false, mapping: nil)
    }

    private var byMount: [UInt64: Answer] = [:]
    /// The old mount ids mountinfo flags `idmapped`, read on first need.
    private var idmappedInMountinfo: Set<UInt64>?
    /// This kernel's statmount(2) refused the map request bits (before 6.15): asked without them since.
    private var mapsRefused = false

    /// statx(2) of `path` (following links) for its mount, then that mount's answer.
    func answer(for path: FilePath) -> Answer {
        guard path.isAbsolute,
            let identity = try? FileSystem.mountIdentity(path, followingLinks: true, unique: true),
            identity.hasMountID
        else { return .plain }
        let key = identity.mountID | (identity.isUnique ? 1 << 63 : 0)
        if let known = byMount[key] { return known }
        let found =
            identity.isUnique && KernelFeatures.current.statmount
            ? statmountAnswer(identity.mountID) : mountinfoAnswer(identity.mountID, unique: identity.isUnique)
        byMount[key] = found
        return found
    }

    private func statmountAnswer(_ mountID: UInt64) -> Answer {
        let maps: Statmount.Request = mapsRefused ? [] : [.uidMap, .gidMap]
        let record: Statmount.Record
        do {
            record = try Statmount.stat(mountID: mountID, request: Statmount.Request.mountBasic.union(maps))
        } catch  where error.errno == .invalidArgument && !maps.isEmpty {
            mapsRefused = true
            return statmountAnswer(mountID)
        } catch {
            return .plain
        }
        guard record.attributes & Self.idmapAttribute != 0 else { return .plain }
        guard let uids = Self.ranges(record.uidMap), let gids = Self.ranges(record.gidMap), !uids.isEmpty else {
            return Answer(idmapped: true, mapping: nil)
        }
        return Answer(idmapped: true, mapping: .ranges(uids: uids, gids: gids))
    }

    private func mountinfoAnswer(_ mountID: UInt64, unique: Bool) -> Answer {
        guard !unique else { return .plain }
        if idmappedInMountinfo == nil {
            let entries = (try? MountTable.entries(source: .mountinfo)) ?? []
            idmappedInMountinfo = Set(
                entries.filter { $0.mountOptions.contains("idmapped") }.map { UInt64($0.mountID) })
        }
        return idmappedInMountinfo!.contains(mountID) ? Answer(idmapped: true, mapping: nil) : .plain
    }

    /// `MOUNT_ATTR_IDMAP`.
    static let idmapAttribute: UInt64 = 0x0010_0000

    /// statmount's map strings (`inside outside count`, decimal) as ranges; nil when absent or malformed.
    static func ranges(_ strings: [[UInt8]]?) -> [IDRange]? {
        guard let strings else { return nil }
        var ranges: [IDRange] = []
        for bytes in strings {
            let fields = bytes.split(separator: UInt8(ascii: " ")).map { UInt32(String(decoding: $0, as: UTF8.self)) }
            guard fields.count == 3, let inside = fields[0], let outside = fields[1], let count = fields[2] else {
                return nil
            }
            ranges.append(IDRange(inside: inside, outside: outside, count: count))
        }
        return ranges
    }
}
