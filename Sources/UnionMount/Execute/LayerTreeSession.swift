import SystemPackage

/// What a plan with idmapped layers holds while it runs: its user namespace, the tree it opened last, the
/// attachments and directories it made; ``undo()`` takes back what is still there when the plan fails.
///
/// Each method makes the system call its step names (``MountStep/openTree(path:)``, …) and returns the failure,
/// if any, for the executor to report at that step.
final class LayerTreeSession {
    /// A refused call: its errno, its name where it differs from the step's, and the file it was about.
    struct Failure {
        let errno: Errno
        var call: String? = nil
        var detail: String? = nil
    }

    private var userNamespace: CInt = -1
    private var tree: CInt = -1
    /// Trees handed to overlay by descriptor: kept open until the plan ends, since closing the last descriptor of a
    /// detached tree dissolves it, and a dissolved layer makes `FSCONFIG_CMD_CREATE` fail with EINVAL.
    private var handedOver: [CInt] = []
    private var attached: [FilePath] = []
    private var made: [FilePath] = []

    /// Runs one tree step other than ``MountStep/setTree(key:)`` (which needs the fs context).
    func run(_ step: MountStep) -> Failure? {
        switch step {
        case .createUserNamespace(let uids, let gids):
            closeNamespace()
            do {
                userNamespace = try UserNamespaceHolder.create(
                    uidMap: IDMapping.mapText(uids), gidMap: IDMapping.mapText(gids)
                ).rawValue
            } catch {
                return Failure(errno: error.errno, call: error.call, detail: error.file)
            }
        case .openUserNamespace(let path):
            closeNamespace()
            do {
                userNamespace = try FileSystem.open(path, .readOnly).rawValue
            } catch {
                return Failure(errno: error)
            }
        case .openTree(let path):
            closeCurrentTree()
            tree = withPathCString(path) { system_open_tree_clone($0) }
            if tree < 0 { return Failure(errno: system_errno()) }
        case .setIDMap:
            if system_mount_setattr_idmap(tree, userNamespace) != 0 { return Failure(errno: system_errno()) }
        case .attachTree(let target):
            let result = withPathCString(target) { system_attach_tree(tree, $0) }
            let error = system_errno()
            closeCurrentTree()
            if result != 0 { return Failure(errno: error) }
            attached.append(target)
        case .makeDirectory(let path):
            do {
                try Self.makeDirectory(path)
            } catch {
                return Failure(errno: error)
            }
            made.append(path)
        case .mountAttachments(let target):
            let flags = UInt(MountFlags([.noSetUID, .noDevices, .noExecute]).rawValue)
            let mounted = withPathCString(target) {
                system_mount("unionmount-attachments", $0, "tmpfs", flags, "mode=700")
            }
            if mounted != 0 { return Failure(errno: system_errno()) }
            attached.append(target)
            if withPathCString(target, { system_make_private($0) }) != 0 {
                return Failure(errno: system_errno(), call: "mount MS_PRIVATE")
            }
        case .detach(let target):
            if withPathCString(target, { system_umount2($0, UnmountFlag.detach) }) != 0 {
                return Failure(errno: system_errno())
            }
            attached.removeAll { $0 == target }
        case .removeDirectory(let path):
            do {
                try FileSystem.removeDirectory(path)
            } catch {
                return Failure(errno: error)
            }
            made.removeAll { $0 == path }
        default:
            preconditionFailure("\(step.systemCall) is not a tree step")
        }
        return nil
    }

    /// fsconfig(2) `FSCONFIG_SET_FD` of the current tree as `key`; the tree is closed when the session ends.
    func setTree(context: CInt, key: String) -> Errno? {
        let result = key.withCString {
            system_fsconfig(context, MountAPIConstant.setFileDescriptor, $0, nil, tree)
        }
        let error = system_errno()
        if tree >= 0 { handedOver.append(tree) }
        tree = -1
        return result == 0 ? nil : error
    }

    /// Detaches what is still attached and removes the directories still made (newest first), then closes
    /// the descriptors; errors are ignored (the plan's own error is the one reported).
    func undo() {
        for target in attached.reversed() { _ = withPathCString(target) { system_umount2($0, UnmountFlag.detach) } }
        attached = []
        for path in made.reversed() { try? FileSystem.removeDirectory(path) }
        made = []
        closeTrees()
        closeNamespace()
    }

    deinit {
        closeTrees()
        closeNamespace()
    }

    private func closeCurrentTree() {
        if tree >= 0 { system_close(tree) }
        tree = -1
    }

    private func closeTrees() {
        closeCurrentTree()
        for fd in handedOver { system_close(fd) }
        handedOver = []
    }

    private func closeNamespace() {
        if userNamespace >= 0 { system_close(userNamespace) }
        userNamespace = -1
    }

    /// mkdir(2) with mode 0700; only when that says `ENOENT`, the missing parents first (0700 too). The directory
    /// itself must be new (`EEXIST` fails).
    private static func makeDirectory(_ path: FilePath) throws(Errno) {
        do {
            try FileSystem.makeDirectory(path, permissions: 0o700)
        } catch .noSuchFileOrDirectory {
            try FileSystem.makeDirectories(path.removingLastComponent(), permissions: 0o700)
            try FileSystem.makeDirectory(path, permissions: 0o700)
        }
    }
}
