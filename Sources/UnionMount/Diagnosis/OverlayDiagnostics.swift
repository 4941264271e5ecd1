import SystemPackage

/// The checks that explain a bare `EINVAL`/`ENOENT`/`ELOOP`/`EPERM` from an overlay mount.
///
/// They run only after the kernel refused (the fast path never pays for them) and look at the file system
/// as it is now: missing or non-directory layers, upper and work on different mounts or nested, too few
/// lower layers, overlapping layers, a dirty `volatile` work directory, trusted-xattr features in a user
/// namespace, an upper on a read-only filesystem.
struct OverlayDiagnostics {
    let spec: OverlaySpec
    let features: KernelFeatures

    func run() -> [Diagnosis] {
        var found: [Diagnosis] = []
        var resolved: [(FilePath, FilePath)] = []  // (as given, canonical) for existing directories
        let roles =
            spec.lowerDirectories.map { ($0, "lowerdir") } + spec.dataDirectories.map { ($0, "datadir") }
            + [spec.upperDirectory.map { ($0, "upperdir") }, spec.workDirectory.map { ($0, "workdir") }]
            .compactMap { $0 }
        for (path, role) in roles {
            guard let info = try? FileSystem.status(path, followingLinks: true) else {
                found.append(.missing(path, role: role))
                continue
            }
            guard info.type == .directory else {
                found.append(.notADirectory(path, role: role))
                continue
            }
            if role != "workdir", let canonical = canonicalPath(path) { resolved.append((path, canonical)) }
        }
        if spec.upperDirectory == nil && spec.lowerDirectories.count < 2 {
            found.append(.tooFewLowerLayers(count: spec.lowerDirectories.count))
        }
        if let upper = spec.upperDirectory, let work = spec.workDirectory {
            found += upperAndWork(upper, work)
        }
        for (index, first) in resolved.enumerated() {
            for second in resolved[(index + 1)...]
            where first.1.starts(with: second.1) || second.1.starts(with: first.1) {
                found.append(.overlappingLayers(first.0, second.0))
            }
        }
        if let work = spec.workDirectory {
            if (try? FileSystem.status(work.appending(["work", "incompat", "volatile"]), followingLinks: true)) != nil {
                found.append(.dirtyVolatileWorkDirectory(work))
            }
        }
        if !features.initialUserNamespace && spec.options.userXattr != true {
            if spec.options.metacopy == true { found.append(.trustedXattrsUnavailable(feature: "metacopy=on")) }
            if !spec.dataDirectories.isEmpty { found.append(.trustedXattrsUnavailable(feature: "data-only layers")) }
            if let verity = spec.options.verity, verity != .off {
                found.append(.trustedXattrsUnavailable(feature: "verity=\(verity.rawValue)"))
            }
        }
        return found
    }

    private func upperAndWork(_ upper: FilePath, _ work: FilePath) -> [Diagnosis] {
        var found: [Diagnosis] = []
        if let upperInfo = try? FileSystem.mountIdentity(upper), let workInfo = try? FileSystem.mountIdentity(work),
            upperInfo.mountID != workInfo.mountID
        {
            found.append(.upperAndWorkOnDifferentMounts(upper: upper, work: work))
        }
        if let canonicalUpper = canonicalPath(upper), let canonicalWork = canonicalPath(work),
            canonicalUpper.starts(with: canonicalWork) || canonicalWork.starts(with: canonicalUpper)
        {
            found.append(.upperAndWorkNested(upper: upper, work: work))
        }
        if (try? FileSystem.isOnReadOnlyFilesystem(upper)) == true {
            found.append(.upperOnReadOnlyFilesystem(upper))
        }
        return found
    }
}
