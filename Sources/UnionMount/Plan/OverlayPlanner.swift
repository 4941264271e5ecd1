import SystemPackage

/// Turns an overlay spec into the system calls that mount it on this kernel.
///
/// The ladder, first that applies wins (or only the one asked for):
/// 1. ``MountStrategy/newMountAPI``: one `lowerdir+`/`datadir+` per layer, raw bytes up to 255 of them,
///    longer paths as `FSCONFIG_SET_FD` where the kernel takes fds. No page limit and no escaping.
/// 2. ``MountStrategy/legacy``: mount(2) with the escaped option string, when it fits 4095 bytes.
/// 3. ``MountStrategy/legacyRelative``: mount(2) with paths relative to their deepest common directory,
///    performed from that directory.
/// 4. ``MountStrategy/legacyDescriptors``: mount(2) with every directory named by a descriptor number
///    (`lowerdir=0:1:…,upperdir=N,workdir=N+1`), opened at that number on the mounting thread's private
///    descriptor table and resolved through `/proc/thread-self/fd`: 500 layers take about 1.9 KB whatever their
///    paths. It needs `RLIMIT_NOFILE` above the highest number.
/// 5. Otherwise ``UnionMountError/Code/optionsTooLong`` saying how many bytes were needed.
///
/// A spec with an ``OverlaySpec/idMapping`` gets its layers idmapped first (``IDMappedLayerRung``): as detached
/// trees handed over by descriptor where the kernel takes them (6.15+), else attached in a private directory and
/// mounted by the ladder above (5.19+), else ``UnionMountError/Code/unsupported``.
///
/// Before the ladder: `userxattr` outside the initial user namespace, `metacopy=on` for data-only layers
/// (``OverlaySpec/requestMetacopyForDataLayers(initialUserNamespace:)``); on a kernel without overlay (`/proc/filesystems`) that has FUSE and the
/// `fuse-overlayfs` program, ``MountStrategy/fuseOverlayfs``. Forced, ``MountStrategy/fuseOverlayfs`` needs
/// FUSE and the program whatever the kernel has (``UnionMountError/Code/unsupported`` naming what is missing).
struct OverlayPlanner {
    /// fsconfig(2) copies at most 255 bytes of a string value (`strndup_user(value, 256)`).
    static let fsconfigValueLimit = 255

    let features: KernelFeatures
    /// The soft `RLIMIT_NOFILE` that mount-fd's descriptor numbers must stay below; nil: the process's own
    /// (``ProcessFacts/openFileLimit``), read only when that rung is tried.
    var descriptorLimit: Int? = nil
    /// Where ``IDMappedLayerRung/attachedTrees`` attaches a plan's trees.
    var attachments: FilePath = Self.defaultAttachments

    /// `/run/unionmount/idmapped`.
    static let defaultAttachments: FilePath = "/run/unionmount/idmapped"

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
        if let mapping = spec.idMapping, forced != .aufs {
            return try idMappedPlan(spec, mapping, target: target, flags: flags, strategy: forced)
        }
        if let forced {
            switch forced {
            // The plan takes the spec over (`consume`): one copy of it per plan, the one made above.
            case .newMountAPI:
                let steps = try newMountAPI(spec, target, flags).get()
                return MountPlan(strategy: .newMountAPI, spec: .overlay(consume spec), steps: steps)
            case .legacy: return try legacy(consume spec, target, flags, relative: false).get()
            case .legacyRelative: return try legacy(consume spec, target, flags, relative: true).get()
            case .legacyDescriptors: return try descriptors(spec, target, flags).get()
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
        switch descriptors(spec, target, flags) {
        case .success(let plan): return plan
        case .failure(let error): reasons.append(error.message)
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
        if let refusal = newMountAPIOnlyRefusal(spec, strategy) { return .failure(refusal) }
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
            let place = directory.map { " relative to \($0.readable)" } ?? ""
            if let refusal = pageRefusal(data, strategy, place: place, spec) { return .failure(refusal) }
            let step = MountStep.mount(
                source: spec.source, target: target, filesystemType: "overlay", flags: flags, data: data,
                workingDirectory: directory)
            return .success(MountPlan(strategy: strategy, spec: .overlay(consume spec), steps: [step]))
        } catch {
            return .failure(error)
        }
    }

    /// The refusal of an option the legacy grammar cannot carry (``OverlayOptions`` rows marked new-mount-API only).
    private func newMountAPIOnlyRefusal(_ spec: OverlaySpec, _ strategy: MountStrategy) -> UnionMountError? {
        guard !spec.options.typedOptionsAreNotGiven else { return nil }
        for field in OverlayOptions.table where field.newMountAPIOnly {
            guard let (key, _) = field.emit(spec.options) else { continue }
            return UnionMountError(
                code: .unsupported, message: "\(strategy.rawValue): \(key) needs the new mount API",
                input: "options.\(field.field)", spec: .overlay(spec))
        }
        return nil
    }

    /// The refusal of mount(2) data over ``OverlaySpec/legacyOptionLimit``, saying how many bytes it needs.
    private func pageRefusal(
        _ data: [UInt8], _ strategy: MountStrategy, place: String, _ spec: OverlaySpec
    ) -> UnionMountError? {
        let limit = OverlaySpec.legacyOptionLimit
        guard data.count > limit else { return nil }
        return UnionMountError(
            code: .optionsTooLong,
            message:
                "\(strategy.rawValue): options need \(data.count) bytes\(place); mount(2) takes at most "
                + "\(limit) (one \(features.pageSize)-byte page with its NUL)",
            spec: .overlay(spec))
    }

    // MARK: - mount(2) by descriptor number

    /// The directory mount-fd's mount(2) runs in: the mounting thread's own descriptors as magic links.
    static let descriptorDirectory: FilePath = "/proc/thread-self/fd"

    /// The mount-fd plan (the spec made absolute): one ``MountStep/openDescriptor(path:number:)``
    /// per directory in ``OverlaySpec/allDirectories`` order (lower layers, data-only layers, upper, work get
    /// 0, 1, 2, …), then mount(2) from ``descriptorDirectory`` with the legacy string naming each directory by its
    /// number.
    private func descriptors(
        _ given: OverlaySpec, _ target: FilePath, _ flags: MountFlags
    ) -> Result<MountPlan, UnionMountError> {
        let strategy = MountStrategy.legacyDescriptors
        if let refusal = newMountAPIOnlyRefusal(given, strategy) { return .failure(refusal) }
        let spec = absolutized(given)
        let directories = spec.allDirectories
        let limit = descriptorLimit ?? ProcessFacts.openFileLimit
        guard directories.count <= limit else {
            return .failure(
                UnionMountError(
                    code: .unsupported,
                    message:
                        "\(strategy.rawValue): needs descriptor numbers 0 to \(directories.count - 1), but the soft "
                        + "RLIMIT_NOFILE is \(limit); raise it (ulimit -n) above \(directories.count - 1)",
                    input: "RLIMIT_NOFILE", spec: .overlay(spec)))
        }
        var numbered = spec
        var next = 0
        func number(_: FilePath) -> FilePath {
            defer { next += 1 }
            return FilePath(String(next))
        }
        numbered.lowerDirectories = spec.lowerDirectories.map(number)
        numbered.dataDirectories = spec.dataDirectories.map(number)
        numbered.upperDirectory = spec.upperDirectory.map(number)
        numbered.workDirectory = spec.workDirectory.map(number)
        let data: [UInt8]
        do {
            data = try numbered.validatedLegacyOptionString()
        } catch {
            return .failure(error)
        }
        if let refusal = pageRefusal(data, strategy, place: " by descriptor number", spec) {
            return .failure(refusal)
        }
        var steps: [MountStep] = []
        steps.reserveCapacity(directories.count + 1)
        for (index, directory) in directories.enumerated() {
            steps.append(.openDescriptor(path: directory, number: Int32(index)))
        }
        steps.append(
            .mount(
                source: spec.source, target: target, filesystemType: "overlay", flags: flags, data: data,
                workingDirectory: Self.descriptorDirectory))
        return .success(MountPlan(strategy: strategy, spec: .overlay(spec), steps: steps))
    }

    /// The spec with every relative path made absolute against the current directory.
    func absolutized(_ spec: OverlaySpec) -> OverlaySpec {
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
