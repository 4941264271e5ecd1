import SystemPackage

/// Turns an overlay spec into the system calls that mount it on this kernel.
///
/// The ladder, first that applies wins (or only the one asked for):
/// 1. ``MountStrategy/newMountAPI``: one `lowerdir+`/`datadir+` per layer, raw bytes up to 255 of them,
///    longer paths as `FSCONFIG_SET_FD` where the kernel takes fds. No page limit and no escaping.
/// 2. ``MountStrategy/legacy``: mount(2) with the escaped option string, when it fits 4095 bytes.
/// 3. ``MountStrategy/legacyRelative``: mount(2) with paths relative to their deepest common directory,
///    performed from that directory.
/// 4. Otherwise ``UnionMountError/Code/optionsTooLong`` saying how many bytes were needed.
///
/// Before the ladder: `userxattr` outside the initial user namespace, `metacopy=on` for data-only layers
/// (``OverlaySpec/requestMetacopyForDataLayers(initialUserNamespace:)``); on a kernel without overlay (`/proc/filesystems`) that has FUSE and the
/// `fuse-overlayfs` program, ``MountStrategy/fuseOverlayfs``. Forced, ``MountStrategy/fuseOverlayfs`` needs
/// FUSE and the program whatever the kernel has (``UnionMountError/Code/unsupported`` naming what is missing).
struct OverlayPlanner {
    /// fsconfig(2) copies at most 255 bytes of a string value (`strndup_user(value, 256)`).
    static let fsconfigValueLimit = 255

    let features: KernelFeatures

    func plan(
        _ spec: OverlaySpec, target: FilePath, flags: MountFlags, strategy forced: MountStrategy?
    ) throws(UnionMountError) -> MountPlan {
        try spec.validate()
        var spec = spec
        if spec.options.userXattr == nil && !features.initialUserNamespace {
            spec.options.userXattr = true
        }
        if !spec.dataDirectories.isEmpty && !features.dataOnlyLayers {
            throw UnionMountError(
                code: .unsupported, message: "data-only layers need overlay's Linux 6.5+ parameter parser",
                input: "dataDirectories", spec: .overlay(spec))
        }
        spec.requestMetacopyForDataLayers(initialUserNamespace: features.initialUserNamespace)
        let target = absolute(target)
        if let forced {
            switch forced {
            // The plan takes the spec over (`consume`): one copy of it per plan, the one made above.
            case .newMountAPI:
                let steps = try newMountAPI(spec, target, flags).get()
                return MountPlan(strategy: .newMountAPI, spec: .overlay(consume spec), steps: steps)
            case .legacy: return try legacy(consume spec, target, flags, relative: false).get()
            case .legacyRelative: return try legacy(consume spec, target, flags, relative: true).get()
            case .aufs:
                throw UnionMountError(
                    code: .invalidSpec, message: "the aufs strategy cannot mount an overlay spec", input: "strategy",
                    spec: .overlay(spec))
            case .fuseOverlayfs:
                return try fuseOverlayfs(spec, target, flags)
            }
        }
        if !features.overlay && features.fuse && features.fuseOverlayfsProgram != nil {
            return try fuseOverlayfs(spec, target, flags)
        }
        var reasons: [String] = []
        switch newMountAPI(spec, target, flags) {
        case .success(let steps): return MountPlan(strategy: .newMountAPI, spec: .overlay(consume spec), steps: steps)
        case .failure(let error): reasons.append(error.message)
        }
        for relative in [false, true] {
            switch legacy(spec, target, flags, relative: relative) {
            case .success(let plan): return plan
            case .failure(let error): reasons.append(error.message)
            }
        }
        throw UnionMountError(
            code: .optionsTooLong, message: "no mount strategy fits this spec: " + reasons.joined(separator: "; "),
            spec: .overlay(spec))
    }

    // MARK: - New mount API

    /// The new-mount-API steps (``newMountAPISteps(_:_:_:)``), where the kernel has `lowerdir+`.
    private func newMountAPI(
        _ spec: OverlaySpec, _ target: FilePath, _ flags: MountFlags
    ) -> Result<[MountStep], UnionMountError> {
        func refuse(_ message: String) -> Result<[MountStep], UnionMountError> {
            .failure(UnionMountError(code: .unsupported, message: message, spec: .overlay(spec)))
        }
        guard features.newMountAPI else { return refuse("new mount API: fsopen(\"overlay\") is not available") }
        guard features.appendLowerDirectory else {
            return refuse("new mount API: this kernel's overlay has no lowerdir+ (Linux 6.8+)")
        }
        return newMountAPISteps(spec, target, flags)
    }

    // MARK: - fuse-overlayfs

    private func fuseOverlayfs(
        _ spec: OverlaySpec, _ target: FilePath, _ flags: MountFlags
    ) throws(UnionMountError) -> MountPlan {
        var missing: [String] = []
        if !features.fuse { missing.append("FUSE (\"fuse\" in /proc/filesystems and /dev/fuse)") }
        if features.fuseOverlayfsProgram == nil { missing.append("the fuse-overlayfs program in PATH") }
        guard missing.isEmpty, let program = features.fuseOverlayfsProgram else {
            throw UnionMountError(
                code: .unsupported, message: "fuse-overlayfs needs " + missing.joined(separator: " and "),
                input: "strategy", spec: .overlay(spec))
        }
        return try MountPlan.fuseOverlayfs(
            spec, target: target, flags: flags, program: FilePath(program), pageSize: features.pageSize)
    }

    // MARK: - mount(2)

    /// The mount(2) plan; it takes the spec over (made absolute for mount-relative).
    private func legacy(
        _ spec: consuming OverlaySpec, _ target: FilePath, _ flags: MountFlags, relative: Bool
    ) -> Result<MountPlan, UnionMountError> {
        let strategy: MountStrategy = relative ? .legacyRelative : .legacy
        if !spec.options.typedOptionsAreNotGiven {
            for field in OverlayOptions.table where field.newMountAPIOnly {
                guard let (key, _) = field.emit(spec.options) else { continue }
                return .failure(
                    UnionMountError(
                        code: .unsupported, message: "\(strategy.rawValue): \(key) needs the new mount API",
                        input: "options.\(field.field)", spec: .overlay(spec)))
            }
        }
        var directory: FilePath? = nil
        do {
            if relative {
                spec = absolutized(spec)
                guard let common = commonDirectory(spec.allDirectories) else {
                    return .failure(
                        UnionMountError(
                            code: .optionsTooLong, message: "mount-relative: the layers share no directory but /",
                            spec: .overlay(spec)))
                }
                directory = common
            }
            let data = try spec.validatedLegacyOptionString(relativeTo: directory)
            let limit = OverlaySpec.legacyOptionLimit
            guard data.count <= limit else {
                let place = directory.map { " relative to \($0.readable)" } ?? ""
                return .failure(
                    UnionMountError(
                        code: .optionsTooLong,
                        message:
                            "\(strategy.rawValue): options need \(data.count) bytes\(place); mount(2) takes at most "
                            + "\(limit) (one \(features.pageSize)-byte page with its NUL)",
                        spec: .overlay(spec)))
            }
            let step = MountStep.mount(
                source: spec.source, target: target, filesystemType: "overlay", flags: flags, data: data,
                workingDirectory: directory)
            return .success(MountPlan(strategy: strategy, spec: .overlay(consume spec), steps: [step]))
        } catch {
            return .failure(error)
        }
    }

    /// The spec with every relative path made absolute against the current directory.
    private func absolutized(_ spec: OverlaySpec) -> OverlaySpec {
        var spec = spec
        spec.lowerDirectories = spec.lowerDirectories.map(absolute)
        spec.dataDirectories = spec.dataDirectories.map(absolute)
        spec.upperDirectory = spec.upperDirectory.map(absolute)
        spec.workDirectory = spec.workDirectory.map(absolute)
        return spec
    }
}

/// The deepest directory that contains every path (by components), or `nil` when that is `/` or there are
/// no paths. A path equal to the result is allowed (it becomes `.`).
func commonDirectory(_ paths: [FilePath]) -> FilePath? {
    guard var common = paths.first.map({ Array($0.components) }) else { return nil }
    for path in paths.dropFirst() {
        let components = Array(path.components)
        var shared = 0
        while shared < common.count && shared < components.count && common[shared] == components[shared] {
            shared += 1
        }
        common.removeSubrange(shared...)
    }
    // A layer equal to the common directory would be `.`; use its parent so every layer keeps a name.
    if paths.contains(where: { Array($0.components) == common }) { common.removeLast(common.isEmpty ? 0 : 1) }
    guard !common.isEmpty else { return nil }
    return FilePath(root: "/", common)
}
