import SystemPackage

extension OverlayPlanner {
    /// The new-mount-API steps of a validated overlay spec, or why this kernel cannot take them.
    ///
    /// fsopen(2) `overlay`; `source`; one `SET_STRING` per layer of its raw bytes (`lowerdir+`, `datadir+`), and
    /// of its legacy-escaped bytes for `upperdir` and `workdir`; a value over fsconfig(2)'s 255 bytes becomes a
    /// `SET_FD` of the path where the kernel takes layer fds (6.13+), else the plan is refused naming the field;
    /// every option of ``OverlayOptions/keyValues`` (a quoted SELinux label unquoted, see
    /// `OverlayEscaping.fsconfigValue`); `CMD_CREATE`; fsmount(2) with the per-mount flags; move_mount(2).
    ///
    /// These steps are the plan: the executor, the dry-run printer and the syscall recorder all walk them.
    func newMountAPISteps(
        _ spec: OverlaySpec, _ target: FilePath, _ flags: MountFlags
    ) -> Result<[MountStep], UnionMountError> {
        func refuse(_ message: String, input: String? = nil) -> Result<[MountStep], UnionMountError> {
            .failure(UnionMountError(code: .unsupported, message: message, input: input, spec: .overlay(spec)))
        }
        let limit = Self.fsconfigValueLimit
        var steps: [MountStep] = []
        let options = spec.options.keyValues
        // Exactly the steps made (fsopen, source, the layers, the options, create, fsmount, move_mount): a
        // 1-layer plan's buffer then stays small enough for malloc's per-thread cache.
        steps.reserveCapacity(spec.directoryCount + options.count + 5)
        steps.append(.fsopen(filesystemType: "overlay"))
        if !spec.source.isEmpty {
            guard spec.source.utf8.count <= limit else {
                return refuse("new mount API: source is longer than \(limit) bytes", input: "source")
            }
            steps.append(.setString(key: "source", value: FsconfigValue(spec.source)))
        }
        // Each layer's step keeps the layer's path itself (one reference to the spec's storage, no copy of its
        // bytes); only a path that must be escaped (upper, work) gets bytes of its own.
        let fds = features.layerFileDescriptors
        var refused: OverlaySpec.DirectoryField? = nil
        if let index = Self.appendLayers(spec.lowerDirectories, key: "lowerdir+", fds: fds, to: &steps) {
            refused = .lower(index)
        } else if let index = Self.appendLayers(spec.dataDirectories, key: "datadir+", fds: fds, to: &steps) {
            refused = .data(index)
        } else if let upper = spec.upperDirectory, !Self.appendEscaped(upper, key: "upperdir", fds: fds, to: &steps) {
            refused = .upper
        } else if let work = spec.workDirectory, !Self.appendEscaped(work, key: "workdir", fds: fds, to: &steps) {
            refused = .work
        }
        if let refused {
            return refuse(
                "new mount API: \(refused.name) is longer than \(limit) bytes and this kernel takes no layer fds "
                    + "(6.13+)",
                input: refused.name)
        }
        for (key, value) in options {
            guard let value else {
                steps.append(.setFlag(key: key))
                continue
            }
            let text = OverlayEscaping.fsconfigValue(value)
            guard text.utf8.count <= limit else {
                return refuse("new mount API: option \(key) is longer than \(limit) bytes", input: key)
            }
            steps.append(.setString(key: key, value: FsconfigValue(text)))
        }
        steps.append(.create)
        steps.append(.fsmount(attributes: flags.subtracting(.remount)))
        steps.append(.moveMount(target: target))
        return .success(steps)
    }
}

extension OverlayPlanner {
    /// Appends one step per path: `SET_STRING` of the path's own bytes (the step keeps the path), `SET_FD` for a
    /// path over fsconfig(2)'s limit where the kernel takes fds; returns the index of a path it cannot pass.
    fileprivate static func appendLayers(
        _ paths: [FilePath], key: String, fds: Bool, to steps: inout [MountStep]
    ) -> Int? {
        paths.withUnsafeBufferPointer { paths in
            for index in paths.indices {
                let path = paths[index]
                if path.withNulTerminatedBytes({ $0.count - 1 }) <= fsconfigValueLimit {
                    steps.append(.setString(key: key, value: FsconfigValue(path: path)))
                } else if fds {
                    steps.append(.setFileDescriptor(key: key, path: path))
                } else {
                    return index
                }
            }
            return nil
        }
    }

    /// Appends the step of `upperdir` or `workdir`: their legacy-escaped bytes (the path itself when nothing needs
    /// escaping), or `SET_FD` when that is too long and the kernel takes fds; false when it cannot be passed.
    fileprivate static func appendEscaped(
        _ path: FilePath, key: String, fds: Bool, to steps: inout [MountStep]
    ) -> Bool {
        let (length, needsEscaping) = path.withNulTerminatedBytes {
            ($0.count - 1, OverlayEscaping.needsEscaping(nulTerminated: $0))
        }
        let value = needsEscaping ? FsconfigValue(OverlayEscaping.escape(path.bytes)) : FsconfigValue(path: path)
        if (needsEscaping ? value.count : length) <= fsconfigValueLimit {
            steps.append(.setString(key: key, value: value))
        } else if fds {
            steps.append(.setFileDescriptor(key: key, path: path))
        } else {
            return false
        }
        return true
    }
}

extension OverlayOptions {
    /// Whether no option is given: derived from ``keyValues`` so that no option can be missed.
    var isEmpty: Bool { keyValues.isEmpty }
}
