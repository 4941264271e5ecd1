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
        steps.reserveCapacity(spec.directoryCount + spec.options.additional.count + 20)
        steps.append(.fsopen(filesystemType: "overlay"))
        if !spec.source.isEmpty {
            let source = Array(spec.source.utf8)
            guard source.count <= limit else {
                return refuse("new mount API: source is longer than \(limit) bytes", input: "source")
            }
            steps.append(.setString(key: "source", value: source))
        }
        for index in 0..<spec.directoryCount {
            let field = spec.directoryField(at: index)
            let path = spec.directory(field)
            let key: String
            var value = path.bytes
            switch field {
            case .lower: key = "lowerdir+"
            case .data: key = "datadir+"
            case .upper: (key, value) = ("upperdir", OverlayEscaping.escape(value))
            case .work: (key, value) = ("workdir", OverlayEscaping.escape(value))
            }
            if value.count <= limit {
                steps.append(.setString(key: key, value: value))
            } else if features.layerFileDescriptors {
                steps.append(.setFileDescriptor(key: key, path: path))
            } else {
                return refuse(
                    "new mount API: \(field.name) is longer than \(limit) bytes and this kernel takes no layer fds "
                        + "(6.13+)",
                    input: field.name)
            }
        }
        for (key, value) in spec.options.keyValues {
            guard let value else {
                steps.append(.setFlag(key: key))
                continue
            }
            let bytes = Array(OverlayEscaping.fsconfigValue(value).utf8)
            guard bytes.count <= limit else {
                return refuse("new mount API: option \(key) is longer than \(limit) bytes", input: key)
            }
            steps.append(.setString(key: key, value: bytes))
        }
        steps.append(.create)
        steps.append(.fsmount(attributes: flags.subtracting(.remount)))
        steps.append(.moveMount(target: target))
        return .success(steps)
    }
}

extension OverlayOptions {
    /// Whether no option is given: derived from ``keyValues`` so that no option can be missed.
    var isEmpty: Bool { keyValues.isEmpty }
}
