import SystemPackage

extension MountExecutor {
    /// Runs a ``MountStrategy/fuseOverlayfs`` plan: spawns the program (``ProgramRunner``) and waits for its
    /// parent process, which exits only after mount(2) (or `fusermount3`) succeeded and the daemon detached.
    ///
    /// - Throws: ``UnionMountError`` with code ``UnionMountError/Code/systemCallFailed`` and system call
    ///   `fuse-overlayfs` when it exits non-zero (the status in the message, its stderr lines in
    ///   ``UnionMountError/kernelMessages``, the last one also in the message), or exits 0 with nothing mounted
    ///   at the target; ``UnionMountError/Code/unsupported`` (after unmounting) when it reports
    ///   "unknown argument ignored" for an option of the plan; spawn failures with `posix_spawn` and errno.
    func runFuseOverlayfs() throws(UnionMountError) {
        guard plan.steps.count == 1, case .spawn(let program, let arguments) = plan.steps[0] else {
            throw UnionMountError(
                code: .invalidArgument, message: "a fuse-overlayfs plan is one posix_spawn step", spec: plan.spec,
                plan: plan)
        }
        let name = program.lastComponent?.string ?? "fuse-overlayfs"
        let target = FilePath(bytes: arguments.last ?? [])
        let outcome: ProgramOutcome
        do {
            outcome = try ProgramRunner.run(program, arguments)
        } catch {
            throw attach(error)
        }
        let lines = outcome.standardErrorLines
        guard outcome.succeeded else {
            var message = "\(name) \(outcome.ending) mounting onto \(target.readable)"
            if let last = lines.last { message += ": \(last)" }
            throw UnionMountError(
                code: .systemCallFailed, message: message, systemCall: name, kernelMessages: lines, spec: spec,
                plan: plan)
        }
        let ignored = Self.ignoredOptions(lines, of: arguments)
        if !ignored.isEmpty {
            _ = withPathCString(target) { system_umount2($0, UnmountFlag.detach) }
            throw UnionMountError(
                code: .unsupported,
                message: "\(name) ignored option \(ignored.map(\.readable).joined(separator: ", ")); unmounted again",
                input: "options", systemCall: name, kernelMessages: lines, spec: spec, plan: plan)
        }
        guard MountTable.isMountPoint(target) else {
            throw UnionMountError(
                code: .systemCallFailed,
                message: "\(name) exited with status 0 but nothing is mounted at "
                    + target.readable, systemCall: name, kernelMessages: lines, spec: spec, plan: plan)
        }
    }

    /// The options of the plan's `-o` arguments that the program said it ignored ("unknown argument ignored:
    /// <option>"); the ones it adds itself (such as `lazytime` as root) are not the plan's.
    static func ignoredOptions(_ lines: [String], of arguments: [[UInt8]]) -> [[UInt8]] {
        let prefix = "unknown argument ignored: "
        let reported = Set(lines.filter { $0.hasPrefix(prefix) }.map { Array($0.utf8.dropFirst(prefix.utf8.count)) })
        guard !reported.isEmpty else { return [] }
        var options: [[UInt8]] = []
        for (index, argument) in arguments.enumerated() where index > 0 && arguments[index - 1] == Array("-o".utf8) {
            options += FuseOverlayfsGrammar.splitOptionGroup(argument)
        }
        return options.filter { reported.contains($0) }
    }

    private func attach(_ error: UnionMountError) -> UnionMountError {
        var error = error
        error.spec = spec
        error.plan = plan
        return error
    }
}
