import SystemPackage

/// The new-mount-API steps of an overlay mount, kept as the validated spec they come from instead of as
/// ``MountStep`` values.
///
/// A plan the planner makes holds this recipe; ``MountPlan/steps`` builds the steps from it when asked, and the
/// executor makes the same system calls straight from it: fsopen(2), fsconfig(2) with each layer's bytes read
/// in place from its `FilePath` (no copy, no allocation per layer), fsmount(2), move_mount(2). Both walk the
/// one sequence ``walk(_:)`` produces, so the calls made are exactly the steps shown.
struct NewMountAPIRecipe: Sendable {
    /// The spec as planned (validated; `userxattr` already added where the planner adds it).
    var spec: OverlaySpec
    /// The absolute mount point.
    var target: FilePath
    /// The per-mount flags; fsmount(2) gets them without `MS_REMOUNT`.
    var flags: MountFlags

    /// The steps, as ``MountPlan/steps`` shows them.
    var steps: [MountStep] {
        var collector = NewMountAPIStepCollector()
        collector.steps.reserveCapacity(spec.directoryCount + spec.options.additional.count + 20)
        walk(&collector)
        return collector.steps
    }

    /// Calls `visitor` once per step, in order, until a call returns `false`.
    ///
    /// Each layer is a `SET_STRING` of its raw bytes (`lowerdir+`, `datadir+`) or, for upperdir and workdir,
    /// of its legacy-escaped bytes; a value over fsconfig(2)'s 255 bytes is a `SET_FD` of the path instead
    /// (the planner only makes this recipe where the kernel takes layer fds, or where no value is that long).
    func walk<Visitor: NewMountAPIVisitor>(_ visitor: inout Visitor) {
        guard visitor.fsopen("overlay") else { return }
        if !spec.source.isEmpty {
            // Validation refused a NUL in the source, so its UTF-8 is the C string's bytes.
            let count = spec.source.utf8.count
            let going = spec.source.withCString { source in
                visitor.setString(
                    "source",
                    UnsafeBufferPointer(
                        start: UnsafeRawPointer(source).assumingMemoryBound(to: UInt8.self), count: count))
            }
            guard going else { return }
        }
        // The layers' bytes are read in place from the arrays' buffers: no copy, no reference counting.
        let lower = spec.lowerDirectories
        let data = spec.dataDirectories
        guard
            lower.allNulTerminatedBytes({ index, bytes in
                Self.directory("lowerdir+", bytes, lower[index], escaped: false, &visitor)
            }),
            data.allNulTerminatedBytes({ index, bytes in
                Self.directory("datadir+", bytes, data[index], escaped: false, &visitor)
            })
        else { return }
        if let upper = spec.upperDirectory, let work = spec.workDirectory {
            guard upper.withNulTerminatedBytes({ Self.directory("upperdir", $0, upper, escaped: true, &visitor) }),
                work.withNulTerminatedBytes({ Self.directory("workdir", $0, work, escaped: true, &visitor) })
            else { return }
        }
        for (key, value) in spec.options.keyValues {
            guard visitor.setOption(key, value.map(OverlayEscaping.fsconfigValue)) else { return }
        }
        guard visitor.create(), visitor.fsmount(flags.subtracting(.remount)) else { return }
        _ = visitor.moveMount(target)
    }

    /// One directory's step: its bytes (escaped for upperdir/workdir), or its fd when they are too long.
    /// `terminated` is the path's bytes and their NUL; `path` is only evaluated for a file descriptor.
    private static func directory<Visitor: NewMountAPIVisitor>(
        _ key: StaticString, _ terminated: UnsafeBufferPointer<UInt8>, _ path: @autoclosure () -> FilePath,
        escaped: Bool, _ visitor: inout Visitor
    ) -> Bool {
        let bytes = terminated.withoutNul
        guard escaped && OverlayEscaping.needsEscaping(nulTerminated: terminated) else {
            return bytes.count <= OverlayPlanner.fsconfigValueLimit
                ? visitor.setString(key, bytes) : visitor.setFileDescriptor(key, path())
        }
        let escapedBytes = OverlayEscaping.escape(Array(bytes))
        guard escapedBytes.count <= OverlayPlanner.fsconfigValueLimit else {
            return visitor.setFileDescriptor(key, path())
        }
        return (escapedBytes + [0]).withUnsafeBufferPointer {
            visitor.setString(key, $0.withoutNul)
        }
    }
}

/// What ``NewMountAPIRecipe/walk(_:)`` calls for each step; every method returns `false` to stop.
protocol NewMountAPIVisitor {
    /// `fsopen(type, FSOPEN_CLOEXEC)`.
    mutating func fsopen(_ type: StaticString) -> Bool
    /// `fsconfig(FSCONFIG_SET_STRING, key, value)`; `value` is followed by a NUL in memory.
    mutating func setString(_ key: StaticString, _ value: UnsafeBufferPointer<UInt8>) -> Bool
    /// A typed or raw option: `FSCONFIG_SET_STRING` with a value, `FSCONFIG_SET_FLAG` without.
    mutating func setOption(_ key: String, _ value: String?) -> Bool
    /// `fsconfig(FSCONFIG_SET_FD, key, open(path, O_PATH|O_DIRECTORY|O_CLOEXEC))`.
    mutating func setFileDescriptor(_ key: StaticString, _ path: FilePath) -> Bool
    /// `fsconfig(FSCONFIG_CMD_CREATE)`.
    mutating func create() -> Bool
    /// `fsmount(fc, FSMOUNT_CLOEXEC, attributes)`.
    mutating func fsmount(_ attributes: MountFlags) -> Bool
    /// `move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`.
    mutating func moveMount(_ target: FilePath) -> Bool
}

/// Builds the ``MountStep`` values of a recipe.
struct NewMountAPIStepCollector: NewMountAPIVisitor {
    var steps: [MountStep] = []

    mutating func fsopen(_ type: StaticString) -> Bool {
        steps.append(.fsopen(filesystemType: type.string))
        return true
    }

    mutating func setString(_ key: StaticString, _ value: UnsafeBufferPointer<UInt8>) -> Bool {
        steps.append(.setString(key: key.string, value: Array(value)))
        return true
    }

    mutating func setOption(_ key: String, _ value: String?) -> Bool {
        steps.append(value.map { .setString(key: key, value: Array($0.utf8)) } ?? .setFlag(key: key))
        return true
    }

    mutating func setFileDescriptor(_ key: StaticString, _ path: FilePath) -> Bool {
        steps.append(.setFileDescriptor(key: key.string, path: path))
        return true
    }

    mutating func create() -> Bool {
        steps.append(.create)
        return true
    }

    mutating func fsmount(_ attributes: MountFlags) -> Bool {
        steps.append(.fsmount(attributes: attributes))
        return true
    }

    mutating func moveMount(_ target: FilePath) -> Bool {
        steps.append(.moveMount(target: target))
        return true
    }
}

extension StaticString {
    /// The literal as a `String`.
    fileprivate var string: String {
        withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
    }
}

extension OverlayOptions {
    /// Whether no option is given: derived from ``keyValues`` so that no option can be missed.
    var isEmpty: Bool { keyValues.isEmpty }
}
