import SystemPackage

/// Runs a ``MountPlan`` step by step and turns the first failure into a ``UnionMountError`` that carries
/// the call, its errno, what the kernel logged, and (on the slow path only) the diagnoses.
///
/// The steps are the only input: whoever made the plan, these calls are the ones it shows. Values are read in
/// place from the steps (a layer's value from its path's own buffer); the only copies are the NUL-terminated
/// strings fsconfig(2) and mount(2) need of values that are not already NUL-terminated, made in a stack buffer
/// for values of fsconfig's size.
struct MountExecutor {
    let plan: MountPlan
    let features: KernelFeatures

    var spec: UnionSpec { plan.spec }

    func run() throws(UnionMountError) {
        let started = KernelLog.now()
        // A plan of idmapped layers: its tree steps before the union's (the user namespace, attached trees), the
        // union's steps (in which a new-mount-API plan opens and hands over its trees), its tree steps after
        // (detaching the attachments). A failure takes back what the plan made.
        // Only the plan's own flag or its first step is looked at (no scan of every step on the mount path): such a
        // plan starts with its user namespace; a tree step anywhere else is a misplaced step.
        guard plan.idMappedLayers != nil || plan.steps.first?.isLayerTreeStep == true else {
            return try runUnion(started, plan.steps.indices, trees: nil)
        }
        let trees = LayerTreeSession()
        let union = unionSteps()
        var mounted: FilePath? = nil
        do {
            try runTreeSteps(0..<union.lowerBound, trees, started)
            try runUnion(started, union, trees: trees)
            mounted = union.last.flatMap { plan.steps[$0].mountTarget }
            // Crash tests kill here: the union mounted, its trees still attached (the attached-trees rung).
            if union.upperBound < plan.steps.count { CrashPoints.point("idmap.mounted") }
            try runTreeSteps(union.upperBound..<plan.steps.count, trees, started)
            if let mounted { MountRecordWriter.recordIDMapped(plan, target: mounted) }
        } catch {
            if let mounted { _ = withPathCString(mounted) { system_umount2($0, UnmountFlag.detach) } }
            trees.undo()
            throw error
        }
    }

    private func runUnion(
        _ started: UInt64, _ steps: Range<Int>, trees: LayerTreeSession?
    ) throws(UnionMountError) {
        switch plan.strategy {
        case .newMountAPI: try runNewMountAPI(started, steps, trees: trees)
        case .legacy, .legacyRelative, .legacyDescriptors, .aufs: try runMountCalls(started, steps)
        case .fuseOverlayfs: try runFuseOverlayfs()
        }
    }

    /// The union's own steps: from its first (fsopen, open, mount, spawn) to its last (move_mount, mount, spawn).
    private func unionSteps() -> Range<Int> {
        func opens(_ step: MountStep) -> Bool {
            switch step {
            case .fsopen, .openDescriptor, .mount, .spawn: true
            default: false
            }
        }
        guard let first = plan.steps.firstIndex(where: opens) else { return plan.steps.count..<plan.steps.count }
        let last = plan.steps.lastIndex(where: { $0.mountTarget != nil }) ?? first
        return first..<max(first, last) + 1
    }

    // MARK: - Trees (idmapped layers)

    private func runTreeSteps(
        _ steps: Range<Int>, _ trees: LayerTreeSession, _ started: UInt64
    ) throws(UnionMountError) {
        for index in steps {
            let step = plan.steps[index]
            guard step.isLayerTreeStep, !step.isSetTree else {
                throw UnionMountError(
                    code: .invalidArgument,
                    message: "the plan has a \(step.systemCall) step outside the union's own steps (step \(index))",
                    spec: spec, plan: plan)
            }
            if let failed = trees.run(step) {
                throw failure(
                    step, failed.errno, messages: [], started: started, call: failed.call, detail: failed.detail)
            }
        }
    }

    // MARK: - fsopen / fsconfig / fsmount / move_mount

    private func runNewMountAPI(
        _ started: UInt64, _ range: Range<Int>, trees: LayerTreeSession?
    ) throws(UnionMountError) {
        var context: CInt = -1
        var mountFD: CInt = -1
        defer {
            if mountFD >= 0 { system_close(mountFD) }
            if context >= 0 { system_close(context) }
        }
        // The steps are read in place; a failing call is the only one that builds an error (and reads the
        // fs-context log).
        var failed: (index: Int, errno: Errno, call: String?, drain: Bool)? = nil
        var misplaced: Int? = nil
        plan.steps.withUnsafeBufferPointer { steps in
            for index in range {
                switch steps[index] {
                case .fsopen(let type):
                    context = type.withCString { system_fsopen($0, MountAPIConstant.fsopenCloseOnExec) }
                    if context < 0 {
                        failed = (index, system_errno(), nil, false)
                        return
                    }
                case .setFlag(let key):
                    let result = key.withCString { system_fsconfig(context, MountAPIConstant.setFlag, $0, nil, 0) }
                    if result != 0 {
                        failed = (index, system_errno(), nil, true)
                        return
                    }
                case .setString(let key, let value):
                    let result = key.withCString { key in
                        value.withNulTerminatedBytes {
                            system_fsconfig(context, MountAPIConstant.setString, key, $0, 0)
                        }
                    }
                    if result != 0 {
                        failed = (index, system_errno(), nil, true)
                        return
                    }
                case .setFileDescriptor(let key, let path):
                    let layer = withPathCString(path) { system_open($0, MountAPIConstant.directoryPathOpenFlags) }
                    if layer < 0 {
                        failed = (index, system_errno(), "open", false)
                        return
                    }
                    let result = key.withCString {
                        system_fsconfig(context, MountAPIConstant.setFileDescriptor, $0, nil, layer)
                    }
                    let error = system_errno()
                    system_close(layer)
                    if result != 0 {
                        failed = (index, error, nil, true)
                        return
                    }
                case .create:
                    if system_fsconfig(context, MountAPIConstant.create, nil, nil, 0) != 0 {
                        failed = (index, system_errno(), nil, true)
                        return
                    }
                case .fsmount(let attributes):
                    mountFD = system_fsmount(context, MountAPIConstant.fsmountCloseOnExec, attributes.mountAttributes)
                    if mountFD < 0 {
                        failed = (index, system_errno(), nil, true)
                        return
                    }
                case .moveMount(let target):
                    if withPathCString(target, { system_move_mount(mountFD, $0) }) != 0 {
                        failed = (index, system_errno(), nil, false)
                        return
                    }
                case .openTree where trees != nil, .setIDMap where trees != nil:
                    if let failure = trees!.run(steps[index]) {
                        failed = (index, failure.errno, failure.call, false)
                        return
                    }
                case .setTree(let key) where trees != nil:
                    if let error = trees!.setTree(context: context, key: key) {
                        failed = (index, error, nil, true)
                        return
                    }
                default:
                    misplaced = index
                    return
                }
            }
        }
        if let misplaced { throw misplacedStep(misplaced) }
        if let failed {
            let messages = failed.drain ? drainMessages(context) : []
            throw failure(
                plan.steps[failed.index], failed.errno, messages: messages, started: started, call: failed.call)
        }
    }

    // MARK: - mount(2)

    /// mount(2) steps: overlay by option string (one call; from the layers' common directory for mount-relative;
    /// after its ``MountStep/openDescriptor(path:number:)`` steps, on the same thread, for mount-fd) or aufs (the
    /// first call, then `MS_REMOUNT` appends). An overlay mount whose data names branches relatively gets its
    /// mount record (``MountRecords``), so reports show the real paths.
    private func runMountCalls(_ started: UInt64, _ range: Range<Int>) throws(UnionMountError) {
        if let last = range.last, case .openDescriptor(let path, _) = plan.steps[last] {
            // An open step is made on the thread of the mount step after it; without one it would never run.
            throw UnionMountError(
                code: .invalidArgument, message: "the plan ends with an open step that no mount step follows",
                input: path.readable, spec: spec, plan: plan)
        }
        var mounted: FilePath? = nil
        var descriptors: [(index: Int, path: FilePath, number: Int32)] = []
        for index in range {
            let step = plan.steps[index]
            if case .openDescriptor(let path, let number) = step {
                descriptors.append((index, path, number))
                continue
            }
            guard case .mount(let source, let target, let type, let flags, let data, let directory) = step else {
                throw misplacedStep(index)
            }
            var failedCall = "mount"
            var failedIndex = 0
            let result = withPathCString(target) { targetC in
                data.withNulTerminatedCopy { dataPointer -> CInt in
                    if !descriptors.isEmpty {
                        // Open steps run on the mounting thread, from `directory` (or the process's own).
                        return withPathCString(directory ?? ".") {
                            system_mount_with_descriptors(
                                descriptors.map(\.path), descriptors.map(\.number), $0, source, targetC, type,
                                flags.rawValue, dataPointer, &failedCall, &failedIndex)
                        }
                    }
                    guard let directory else {
                        return system_mount(source, targetC, type, flags.rawValue, dataPointer)
                    }
                    let fd = withPathCString(directory) {
                        system_open($0, MountAPIConstant.directoryPathOpenFlags)
                    }
                    guard fd >= 0 else {
                        failedCall = "open"
                        return -1
                    }
                    defer { system_close(fd) }
                    return system_mount_in_directory(
                        fd, source, targetC, type, flags.rawValue, dataPointer, &failedCall)
                }
            }
            if result != 0 {
                // A failed open or dup3 is reported at its own step (the layer it opened).
                let opening = (failedCall == "open" || failedCall == "dup3") && failedIndex < descriptors.count
                let failedStep = opening ? plan.steps[descriptors[failedIndex].index] : step
                let error = failure(failedStep, system_errno(), messages: [], started: started, call: failedCall)
                // aufs: a failed append after the first mount leaves a half-built union; take it down.
                if let mounted { _ = withPathCString(mounted) { system_umount2($0, UnmountFlag.detach) } }
                throw error
            }
            if let directory, type == "overlay" {
                MountRecordWriter.record(
                    target: target, data: data, directory: directory,
                    descriptors: Dictionary(descriptors.map { ($0.number, $0.path) }, uniquingKeysWith: { $1 }))
            }
            descriptors = []
            mounted = target
        }
    }

    // MARK: - Errors

    /// A step this plan's strategy cannot run where it stands (a hand-written or decoded plan).
    private func misplacedStep(_ index: Int) -> UnionMountError {
        UnionMountError(
            code: .invalidArgument,
            message:
                "a \(plan.steps[index].systemCall) step (step \(index)) cannot run in a \(plan.strategy.rawValue) plan",
            spec: spec, plan: plan)
    }

    private func failure(
        _ step: MountStep, _ errno: Errno, messages: [String], started: UInt64, call: String? = nil,
        detail: String? = nil
    ) -> UnionMountError {
        let call = call ?? step.systemCall
        var kernelMessages = messages
        var diagnoses: [Diagnosis] = []
        var code: UnionMountError.Code = errno == .resourceBusy ? .busy : .systemCallFailed
        var message = "\(spec.filesystemType) mount failed at \(call)"
        let opensFilesystem = step.systemCall == "fsopen" || step.systemCall == "mount"
        switch step {
        case _ where errno == .operationNotSupportedByDevice && call == step.systemCall && opensFilesystem:
            code = .unsupported
            message = "\(spec.filesystemType) is not available on this kernel (\(call) said ENODEV)"
        case .setString(let key, let value): message += " \(key)=\(value)"
        case .setFileDescriptor(let key, let path): message += " \(key) (fd of \(path.readable))"
        case .setFlag(let key): message += " \(key)"
        case .openDescriptor(let path, let number): message += " of \(path.readable) (as descriptor \(number))"
        case .moveMount(let target), .mount(_, let target, _, _, _, _): message += " onto \(target.readable)"
        case .openTree(let path): message += " of the layer \(path.readable)"
        case .setIDMap: message += " (MOUNT_ATTR_IDMAP: the layer's filesystem may not support idmapped mounts)"
        case .setTree(let key): message += " \(key) (fd of an idmapped tree)"
        case .attachTree(let target), .detach(let target), .mountAttachments(let target):
            message += " at \(target.readable)"
        case .makeDirectory(let path), .removeDirectory(let path), .openUserNamespace(let path):
            message += " of \(path.readable)"
        case .createUserNamespace(let uids, let gids):
            message +=
                " (a user namespace with uid map \(IDRange.text(uids)) and gid map \(IDRange.text(gids)))"
        default: break
        }
        if let detail { message += " (\(detail))" }
        if code != .unsupported {
            kernelMessages += KernelLog.messages(since: started, filesystem: spec.filesystemType)
            if [
                .invalidArgument, .noSuchFileOrDirectory, .tooManySymbolicLinkLevels, .notPermitted,
                .notDirectory, .improperLink,
            ].contains(errno), case .overlay(let overlay) = spec {
                diagnoses = OverlayDiagnostics(spec: overlay, features: features).run()
            }
        }
        return UnionMountError(
            code: code, message: message, systemCall: call, errno: errno, kernelMessages: kernelMessages,
            diagnoses: diagnoses, spec: spec, plan: plan)
    }
}
