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
    /// The plan's user namespace, made for these maps: clone(2) `CLONE_NEWUSER` of a helper child that waits,
    /// `/proc/<pid>/uid_map` and `gid_map` written from here, `/proc/<pid>/ns/user` opened, the child released
    /// and reaped (see ``IDMapping/ranges(uids:gids:)``).
    case createUserNamespace(uids: [IDRange], gids: [IDRange])
    /// The plan's user namespace, opened from a file: `open(path, O_RDONLY|O_CLOEXEC)`.
    case openUserNamespace(path: FilePath)
    /// `tree = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC)`: a detached copy of the mount at
    /// `path`, the plan's current tree.
    case openTree(path: FilePath)
    /// `mount_setattr(tree, "", AT_EMPTY_PATH, {MOUNT_ATTR_IDMAP, userns_fd})` of the current tree with the
    /// plan's user namespace.
    case setIDMap
    /// `fsconfig(fc, FSCONFIG_SET_FD, key, NULL, tree)` with the current tree, which is closed once the union is
    /// mounted (closing a detached tree's last descriptor dissolves it, and overlay refuses a dissolved layer).
    case setTree(key: String)
    /// `move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`: attaches the current tree, then
    /// `close(tree)`.
    case attachTree(target: FilePath)
    /// `mkdir(path, 0700)` (missing parents first, 0700 too).
    case makeDirectory(path: FilePath)
    /// `mount("unionmount-attachments", target, "tmpfs", MS_NOSUID|MS_NODEV|MS_NOEXEC, "mode=700")`, then
    /// `mount(NULL, target, NULL, MS_PRIVATE, NULL)`: a private scratch tmpfs that trees are attached in, so no
    /// attachment propagates to another mount namespace and one detach of it takes them all down.
    case mountAttachments(target: FilePath)
    /// `umount2(target, MNT_DETACH)`.
    case detach(target: FilePath)
    /// `rmdir(path)`.
    case removeDirectory(path: FilePath)

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
        case .createUserNamespace: "clone"
        case .openUserNamespace: "open"
        case .openTree: "open_tree"
        case .setIDMap: "mount_setattr"
        case .setTree: "fsconfig"
        case .attachTree: "move_mount"
        case .makeDirectory: "mkdir"
        case .mountAttachments: "mount"
        case .detach: "umount2"
        case .removeDirectory: "rmdir"
        }
    }

    /// The mount point a step mounts on (move_mount(2) of the union, mount(2), or the fuse-overlayfs program's
    /// last argument); nil for other steps.
    var mountTarget: FilePath? {
        switch self {
        case .moveMount(let target), .mount(_, let target, _, _, _, _): target
        case .spawn(_, let arguments):
            arguments.last.map { FilePath(platformString: $0.map { CChar(bitPattern: $0) } + [0]) }
        default: nil
        }
    }

    var isSetTree: Bool {
        if case .setTree = self { return true }
        return false
    }

    /// Whether the step works on the plan's user namespace, trees or their directories (idmapped layers).
    var isLayerTreeStep: Bool {
        switch self {
        case .createUserNamespace, .openUserNamespace, .openTree, .setIDMap, .setTree, .attachTree, .makeDirectory,
            .mountAttachments, .detach, .removeDirectory:
            true
        default: false
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
    /// How the layers are idmapped, for a spec with an ``OverlaySpec/idMapping``; nil otherwise.
    public var idMappedLayers: IDMappedLayerRung?

    /// Creates a plan.
    public init(strategy: MountStrategy, spec: UnionSpec, steps: [MountStep], idMappedLayers: IDMappedLayerRung? = nil)
    {
        self.strategy = strategy
        self.spec = spec
        self.steps = steps
        self.idMappedLayers = idMappedLayers
    }
}

extension MountStep: Codable {
    private enum CodingKeys: String, CodingKey {
        case syscall, fstype, command, key, value, valueBase64, fd, attributes, target, source, flags, data,
            dataBase64, cwd, program, arguments, argumentsBase64, path, uidMap, gidMap, namespace, tree
    }

    /// Encodes the step as `{"syscall": …, <arguments by name>}`; byte strings that are not UTF-8 get a
    /// readable form with `\xNN` plus an exact `…Base64` twin. A spawn step is
    /// `{"syscall": "posix_spawn", "program": …, "arguments": [ … ]}`, with `argumentsBase64` (every argument,
    /// in order) when any argument is not UTF-8. An open step is `{"syscall": "open", "path": …, "fd": <number>}`.
    /// Steps on trees say `"tree": true` (`{"syscall": "fsconfig", "command": "FSCONFIG_SET_FD", "key": …, "tree":
    /// true}`, `{"syscall": "move_mount", "target": …, "tree": true}`); opening a user namespace is
    /// `{"syscall": "open", "path": …, "namespace": "user"}`; making one is `{"syscall": "clone", "flags":
    /// ["CLONE_NEWUSER"], "uidMap": ["0:100000:65536"], "gidMap": […]}`.
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
        case .createUserNamespace(let uids, let gids):
            try container.encode(["CLONE_NEWUSER"], forKey: .flags)
            try container.encode(uids.map(\.text), forKey: .uidMap)
            try container.encode(gids.map(\.text), forKey: .gidMap)
        case .openUserNamespace(let path):
            try container.encode(path: path, forKey: .path)
            try container.encode("user", forKey: .namespace)
        case .openTree(let path):
            try container.encode(path: path, forKey: .path)
            try container.encode(["OPEN_TREE_CLONE", "OPEN_TREE_CLOEXEC"], forKey: .flags)
        case .setIDMap:
            try container.encode(["MOUNT_ATTR_IDMAP"], forKey: .attributes)
            try container.encode(true, forKey: .tree)
        case .setTree(let key):
            try container.encode(FsconfigCommand.setFileDescriptor, forKey: .command)
            try container.encode(key, forKey: .key)
            try container.encode(true, forKey: .tree)
            try container.encodeNil(forKey: .value)
        case .attachTree(let target):
            try container.encode(path: target, forKey: .target)
            try container.encode(true, forKey: .tree)
        case .makeDirectory(let path), .removeDirectory(let path):
            try container.encode(path: path, forKey: .path)
        case .detach(let target):
            try container.encode(path: target, forKey: .target)
            try container.encode(["MNT_DETACH"], forKey: .flags)
        case .mountAttachments(let target):
            try container.encode("unionmount-attachments", forKey: .source)
            try container.encode(path: target, forKey: .target)
            try container.encode("tmpfs", forKey: .fstype)
            try container.encode(["MS_NOSUID", "MS_NODEV", "MS_NOEXEC", "then MS_PRIVATE"], forKey: .flags)
            try container.encode("mode=700", forKey: .data)
            try container.encode(true, forKey: .tree)
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
        let tree = try container.decodeIfPresent(Bool.self, forKey: .tree) ?? false
        let namespace = try container.decodeIfPresent(String.self, forKey: .namespace)
        func ranges(_ key: CodingKeys) throws -> [IDRange] {
            var ranges: [IDRange] = []
            for text in try container.decode([String].self, forKey: key) {
                do {
                    ranges.append(try IDRange(parsing: text))
                } catch {
                    throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: error.message)
                }
            }
            return ranges
        }
        switch syscall {
        case "fsopen":
            self = .fsopen(filesystemType: try container.decode(String.self, forKey: .fstype))
        case "fsconfig" where tree:
            self = .setTree(key: try container.decode(String.self, forKey: .key))
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
            let target = try container.decodePath(forKey: .target)
            self = tree ? .attachTree(target: target) : .moveMount(target: target)
        case "open" where namespace == "user":
            self = .openUserNamespace(path: try container.decodePath(forKey: .path))
        case "clone":
            self = .createUserNamespace(uids: try ranges(.uidMap), gids: try ranges(.gidMap))
        case "open_tree":
            self = .openTree(path: try container.decodePath(forKey: .path))
        case "mount_setattr":
            self = .setIDMap
        case "mkdir":
            self = .makeDirectory(path: try container.decodePath(forKey: .path))
        case "rmdir":
            self = .removeDirectory(path: try container.decodePath(forKey: .path))
        case "umount2":
            self = .detach(target: try container.decodePath(forKey: .target))
        case "open":
            self = .openDescriptor(
                path: try container.decodePath(forKey: .path), number: try container.decode(Int32.self, forKey: .fd))
        case "mount" where tree:
            self = .mountAttachments(target: try container.decodePath(forKey: .target))
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
        case strategy, spec, steps, idMappedLayers
    }

    /// Decodes `{"strategy": …, "spec": …, "steps": […]}` (and `"idMappedLayers"` when present).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            strategy: try container.decode(MountStrategy.self, forKey: .strategy),
            spec: try container.decode(UnionSpec.self, forKey: .spec),
            steps: try container.decode([MountStep].self, forKey: .steps),
            idMappedLayers: try container.decodeIfPresent(IDMappedLayerRung.self, forKey: .idMappedLayers))
    }

    /// Encodes `{"strategy": …, "spec": …, "steps": […]}`, with `"idMappedLayers": …` for idmapped layers.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(strategy, forKey: .strategy)
        try container.encodeIfPresent(idMappedLayers, forKey: .idMappedLayers)
        try container.encode(spec, forKey: .spec)
        try container.encode(steps, forKey: .steps)
    }
}
