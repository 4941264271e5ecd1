import SystemPackage

/// Writes the ``MountRecord`` of an overlay mount(2) that named its branches relatively, from exactly what was
/// executed: the mount data parsed back, each relative name resolved against the mount's working directory, or,
/// from `/proc/thread-self/fd`, the directory its ``MountStep/openDescriptor(path:number:)`` step opened at that
/// number. The record is keyed by the new mount's id and device (statx(2) of the target).
enum MountRecordWriter {
    /// Records the mount now at `target`; nothing when a name cannot be resolved, the data does not parse, no
    /// name is relative, or the directory cannot be written (the mount stays as it is either way).
    ///
    /// The corresponding system calls are `statx(2)`, realpath(3)'s and those of ``MountRecords/write(_:mountID:in:)``.
    static func record(target: FilePath, data: [UInt8], directory: FilePath, descriptors: [Int32: FilePath]) {
        guard let parsed = try? OverlaySpec(legacyOptionString: data) else { return }
        let shown = parsed.allDirectories
        guard shown.contains(where: \.isRelative) else { return }
        let byDescriptor = directory == OverlayPlanner.descriptorDirectory
        var real: [FilePath] = []
        real.reserveCapacity(shown.count)
        for name in shown {
            if name.isAbsolute {
                real.append(name)
            } else if byDescriptor {
                guard let number = Int32(name.string), let path = descriptors[number] else { return }
                real.append(path)
            } else {
                real.append(directory.pushing(name).lexicallyNormalized())
            }
        }
        guard real.allSatisfy(\.isAbsolute) else { return }
        guard let mount = try? FileSystem.mountIdentity(target, followingLinks: false), mount.hasMountID,
            mount.isMountRoot != false
        else { return }
        let record = MountRecord(
            deviceMajor: mount.deviceMajor, deviceMinor: mount.deviceMinor, target: canonicalPath(target) ?? target,
            shownBranches: shown.map(\.bytes), branches: real)
        MountRecords.write(record, mountID: Int(mount.mountID))
    }

    /// Records the mount of idmapped layers now at `target`, made by `plan`: the names the kernel shows for its
    /// branches (read back from the mount table entry, which shows a detached tree as `/`), the real paths of the
    /// plan's spec, and its mapping; nothing when the entry cannot be read or does not match the spec's shape.
    ///
    /// The corresponding system calls are those of ``MountTable/entry(at:source:)`` and of
    /// ``MountRecords/write(_:mountID:in:)``.
    static func recordIDMapped(_ plan: MountPlan, target: FilePath) {
        guard case .overlay(let spec) = plan.spec, let mapping = spec.idMapping,
            let entry = try? MountTable.entry(at: target), let layout = entry.overlayLayout
        else { return }
        let shown = MountRecord.shownBranches(of: layout)
        let real = spec.allDirectories
        guard shown.count == real.count, layout.lowerDirectories.count == spec.lowerDirectories.count,
            real.allSatisfy(\.isAbsolute)
        else { return }
        let record = MountRecord(
            deviceMajor: entry.major, deviceMinor: entry.minor, target: entry.mountPoint, shownBranches: shown,
            branches: real, idMapping: mapping)
        MountRecords.write(record, mountID: entry.mountID)
    }
}
