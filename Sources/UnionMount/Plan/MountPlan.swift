import SystemPackage

/// How a union mount reaches the kernel. New strategies may be added: switch with an `@unknown default`.
public enum MountStrategy: String, Sendable, Hashable, Codable, CaseIterable {
    /// fsopen(2), one fsconfig(2) per layer (`lowerdir+`/`datadir+`, fds for long paths), fsmount(2),
    /// move_mount(2). No page limit, no escaping.
    case newMountAPI = "new-mount-api"
    /// mount(2) with the escaped legacy option string; it must fit one page.
    case legacy = "mount"
    /// mount(2) with layer paths relative to their common parent, performed from that directory on a thread
    /// of its own.
    case legacyRelative = "mount-relative"
    /// mount(2) with every layer, upper and work directory named by a small descriptor number (`lowerdir=0:1:…`),
    /// performed on a thread of its own that did `unshare(CLONE_FS | CLONE_FILES)`, opened each directory at
    /// its number (``MountStep/openDescriptor(path:number:)``) and changed to `/proc/thread-self/fd`, so the
    /// kernel resolves each number through the procfs magic link. 500 layers take about 1.9 KB, whatever the
    /// paths; the descriptors die with the thread.
    case legacyDescriptors = "mount-fd"
    /// aufs: mount(2) with `br:` filling the first page, then `MS_REMOUNT` `append:` batches.
    case aufs = "aufs-mount"
    /// The `fuse-overlayfs` program (FUSE), spawned with posix_spawn(2) as `fuse-overlayfs -o … <target>`; for
    /// kernels without overlay, or forced. See ``MountPlan/fuseOverlayfs(_:target:flags:program:pageSize:argumentLimit:)``.
    case fuseOverlayfs = "fuse-overlayfs"
}

/// One fsconfig(2) command.
public enum FsconfigCommand: String, Sendable, Hashable, Codable {
    /// `FSCONFIG_SET_FLAG`.
    case setFlag = "FSCONFIG_SET_FLAG"
    /// `FSCONFIG_SET_STRING`.
    case setString = "FSCONFIG_SET_STRING"
    /// `FSCONFIG_SET_FD`.
    case setFileDescriptor = "FSCONFIG_SET_FD"
    /// `FSCONFIG_CMD_CREATE`.
    case create = "FSCONFIG_CMD_CREATE"

    var rawCommand: UInt32 {
        switch self {
        case .setFlag: 0
        case .setString: 1
        case .setFileDescriptor: 5
        case .create: 6
        }
    }
}

/// One system call of a plan, with its arguments.
///
/// New cases are added as the library learns new system calls (idmapped layers add `open_tree` and
/// `mount_setattr`): switch over a step with an `@unknown default`.
public enum MountStep: Sendable, Hashable {
    /// `fsopen(filesystemType, FSOPEN_CLOEXEC)`.
    case fsopen(filesystemType: String)
    /// `fsconfig(fc, FSCONFIG_SET_FLAG, key, NULL, 0)`.
    case setFlag(key: String)
    /// `fsconfig(fc, FSCONFIG_SET_STRING, key, value, 0)`; the value is bytes (≤ 255 of them), kept as the
    /// layer's path where it is one (see ``FsconfigValue``).
    case setString(key: String, value: FsconfigValue)
    /// `fsconfig(fc, FSCONFIG_SET_FD, key, NULL, fd)` with `fd = open(path, O_PATH|O_DIRECTORY|O_CLOEXEC)`.
    case setFileDescriptor(key: String, path: FilePath)
    /// `fsconfig(fc, FSCONFIG_CMD_CREATE, NULL, NULL, 0)`.
    case create
    /// `fsmount(fc, FSMOUNT_CLOEXEC, attributes)`.
    case fsmount(attributes: MountFlags)
    /// `move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`.
    case moveMount(target: FilePath)
    /// `fd = open(path, O_PATH|O_DIRECTORY|O_CLOEXEC)`, then `dup3(fd, number, O_CLOEXEC)` and `close(fd)` unless
    /// open(2) returned `number`, on the mounting thread's private descriptor table (that thread did
    /// `unshare(CLONE_FS | CLONE_FILES)` first, so no other thread's descriptors move). The ``mount(source:target:filesystemType:flags:data:workingDirectory:)``
    /// step that follows runs on the same thread from `/proc/thread-self/fd`, where `number` names the directory.
    case openDescriptor(path: FilePath, number: Int32)
    /// `mount(source, target, filesystemType, flags, data)`; with a working directory, performed on a
    /// thread that did `unshare(CLONE_FS)` and `chdir(workingDirectory)` first (`unshare(CLONE_FS | CLONE_FILES)`
    /// and the ``openDescriptor(path:number:)`` steps before it, when there are any).
    case mount(
        source: String, target: FilePath, filesystemType: String, flags: MountFlags, data: [UInt8],
        workingDirectory: FilePath?)
    /// `posix_spawn(program, [program] + arguments, minimal environment)` with stdin and stdout on `/dev/null`,
    /// stderr captured, then waitpid(2) until it exits; no shell. Each argument is bytes (paths need not be UTF-8).
    case spawn(program: FilePath, arguments: [[UInt8]])

    /// The system call's name.
    public var systemCall: String {
        switch self {
        case .fsopen: "fsopen"
        case .setFlag, .setString, .setFileDescriptor, .create: "fsconfig"
        case .fsmount: "fsmount"
        case .moveMount: "move_mount"
        case .openDescriptor: "open"
        case .mount: "mount"
        case .spawn: "posix_spawn"
        }
    }
}

/// The system calls a mount will make, in order, shown before (or instead of) running them, and the spec they
/// mount.
///
/// A plan is one list of steps: ``Mounter/execute(_:)`` makes exactly these calls, `--dry-run` prints them and
/// the syscall recorder sees them, whether the planner made the plan, a person wrote it or it was decoded from
/// JSON. Failures are diagnosed against ``spec``. Two plans are equal when their strategies, specs and steps
/// are; a plan encodes as `{"strategy": …, "spec": …, "steps": […]}`.
public struct MountPlan: Sendable, Hashable {
    /// The strategy the planner picked (or the one a hand-made plan names).
    public var strategy: MountStrategy
    /// The spec the steps mount, as planned (validated; `userxattr` added where the planner adds it, paths made
    /// absolute for ``MountStrategy/legacyRelative`` and ``MountStrategy/legacyDescriptors``).
    public var spec: UnionSpec
    /// The system calls, in order.
    public var steps: [MountStep]

    /// Creates a plan.
    public init(strategy: MountStrategy, spec: UnionSpec, steps: [MountStep]) {
        self.strategy = strategy
        self.spec = spec
        self.steps = steps
    }
}

extension MountStep: Codable {
    private enum CodingKeys: String, CodingKey {
        case syscall, fstype, command, key, value, valueBase64, fd, attributes, target, source, flags, data,
            dataBase64, cwd, program, arguments, argumentsBase64, path
    }

    /// Encodes the step as `{"syscall": …, <arguments by name>}`; byte strings that are not UTF-8 get a
    /// readable form with `\xNN` plus an exact `…Base64` twin. A spawn step is
    /// `{"syscall": "posix_spawn", "program": …, "arguments": [ … ]}`, with `argumentsBase64` (every argument,
    /// in order) when any argument is not UTF-8. An open step is `{"syscall": "open", "path": …, "fd": <number>}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(systemCall, forKey: .syscall)
        func encodeBytes(_ bytes: [UInt8], _ key: CodingKeys, _ base64Key: CodingKeys) throws {
            try container.encode(bytes.readable, forKey: key)
            if String(validating: bytes, as: UTF8.self) == nil {
                try container.encode(Base64.encode(bytes), forKey: base64Key)
            }
        }
        switch self {
        case .fsopen(let type):
            try container.encode(type, forKey: .fstype)
        case .setFlag(let key):
            try container.encode(FsconfigCommand.setFlag, forKey: .command)
            try container.encode(key, forKey: .key)
            try container.encodeNil(forKey: .value)
        case .setString(let key, let value):
            try container.encode(FsconfigCommand.setString, forKey: .command)
            try container.encode(key, forKey: .key)
            try encodeBytes(value.bytes, .value, .valueBase64)
        case .setFileDescriptor(let key, let path):
            try container.encode(FsconfigCommand.setFileDescriptor, forKey: .command)
            try container.encode(key, forKey: .key)
            try container.encode(path: path, forKey: .fd)
            try container.encodeNil(forKey: .value)
        case .create:
            try container.encode(FsconfigCommand.create, forKey: .command)
        case .fsmount(let attributes):
            try container.encode(attributes.mountAttributeNames, forKey: .attributes)
        case .moveMount(let target):
            try container.encode(path: target, forKey: .target)
        case .openDescriptor(let path, let number):
            try container.encode(path: path, forKey: .path)
            try container.encode(number, forKey: .fd)
        case .mount(let source, let target, let type, let flags, let data, let directory):
            try container.encode(source, forKey: .source)
            try container.encode(path: target, forKey: .target)
            try container.encode(type, forKey: .fstype)
            try container.encode(flags.mountFlagNames, forKey: .flags)
            try encodeBytes(data, .data, .dataBase64)
            if let directory { try container.encode(path: directory, forKey: .cwd) }
        case .spawn(let program, let arguments):
            try container.encode(path: program, forKey: .program)
            try container.encode(arguments.map(\.readable), forKey: .arguments)
            if arguments.contains(where: { String(validating: $0, as: UTF8.self) == nil }) {
                try container.encode(arguments.map(Base64.encode), forKey: .argumentsBase64)
            }
        }
    }

    /// Decodes a step written by ``encode(to:)``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func decodeBytes(_ key: CodingKeys, _ base64Key: CodingKeys) throws -> [UInt8] {
            if let encoded = try container.decodeIfPresent(String.self, forKey: base64Key) {
                guard let bytes = Base64.decode(encoded) else {
                    throw DecodingError.dataCorruptedError(forKey: base64Key, in: container, debugDescription: "base64")
                }
                return bytes
            }
            return Array(try container.decode(String.self, forKey: key).utf8)
        }
        let syscall = try container.decode(String.self, forKey: .syscall)
        switch syscall {
        case "fsopen":
            self = .fsopen(filesystemType: try container.decode(String.self, forKey: .fstype))
        case "fsconfig":
            switch try container.decode(FsconfigCommand.self, forKey: .command) {
            case .setFlag: self = .setFlag(key: try container.decode(String.self, forKey: .key))
            case .setString:
                self = .setString(
                    key: try container.decode(String.self, forKey: .key),
                    value: FsconfigValue(try decodeBytes(.value, .valueBase64)))
            case .setFileDescriptor:
                self = .setFileDescriptor(
                    key: try container.decode(String.self, forKey: .key), path: try container.decodePath(forKey: .fd))
            case .create: self = .create
            }
        case "fsmount":
            let names = try container.decode([String].self, forKey: .attributes)
            self = .fsmount(attributes: MountFlags(attributeNames: names))
        case "move_mount":
            self = .moveMount(target: try container.decodePath(forKey: .target))
        case "open":
            self = .openDescriptor(
                path: try container.decodePath(forKey: .path), number: try container.decode(Int32.self, forKey: .fd))
        case "mount":
            let names = try container.decode([String].self, forKey: .flags)
            self = .mount(
                source: try container.decode(String.self, forKey: .source),
                target: try container.decodePath(forKey: .target),
                filesystemType: try container.decode(String.self, forKey: .fstype),
                flags: MountFlags(names.compactMap(MountFlags.init(mountFlagName:))),
                data: try decodeBytes(.data, .dataBase64),
                workingDirectory: try container.decodePathIfPresent(forKey: .cwd))
        case "posix_spawn":
            let program = try container.decodePath(forKey: .program)
            if let encoded = try container.decodeIfPresent([String].self, forKey: .argumentsBase64) {
                var arguments: [[UInt8]] = []
                for argument in encoded {
                    guard let bytes = Base64.decode(argument) else {
                        throw DecodingError.dataCorruptedError(
                            forKey: .argumentsBase64, in: container, debugDescription: "base64")
                    }
                    arguments.append(bytes)
                }
                self = .spawn(program: program, arguments: arguments)
            } else {
                let arguments = try container.decode([String].self, forKey: .arguments)
                self = .spawn(program: program, arguments: arguments.map { Array($0.utf8) })
            }
        default:
            throw DecodingError.dataCorruptedError(forKey: .syscall, in: container, debugDescription: syscall)
        }
    }
}

extension MountFlags {
    fileprivate init(attributeNames: [String]) {
        let prefix = "MOUNT_ATTR_"
        self = MountFlags(
            attributeNames.compactMap { name in
                name.hasPrefix(prefix) ? MountFlags(mountFlagName: "MS_" + name.dropFirst(prefix.count)) : nil
            })
    }
}

extension MountPlan: Codable {
    private enum CodingKeys: String, CodingKey {
        case strategy, spec, steps
    }

    /// Decodes `{"strategy": …, "spec": …, "steps": […]}`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            strategy: try container.decode(MountStrategy.self, forKey: .strategy),
            spec: try container.decode(UnionSpec.self, forKey: .spec),
            steps: try container.decode([MountStep].self, forKey: .steps))
    }

    /// Encodes `{"strategy": …, "spec": …, "steps": […]}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(strategy, forKey: .strategy)
        try container.encode(spec, forKey: .spec)
        try container.encode(steps, forKey: .steps)
    }
}
