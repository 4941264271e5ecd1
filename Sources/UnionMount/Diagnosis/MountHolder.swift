import SystemPackage

/// Something that keeps a mount busy, or keeps its filesystem alive after it is unmounted: what
/// ``MountTable/holders(of:limits:)`` finds and an unmount that ends in `EBUSY` lists as its diagnoses.
public struct MountHolder: Sendable, Hashable, CustomStringConvertible {
    /// How it holds the mount. New kinds may be added: switch with an `@unknown default`.
    public enum Kind: Sendable, Hashable {
        /// The process has a file open on the mount (`/proc/<pid>/fd/<fd>`); the path is what the link shows.
        case openFile(descriptor: Int, path: FilePath)
        /// The process's working directory is on the mount (`/proc/<pid>/cwd`).
        case workingDirectory(FilePath)
        /// The process's root directory is on the mount (`/proc/<pid>/root`).
        case rootDirectory(FilePath)
        /// The process is in another mount namespace, where a copy of the mount (the same filesystem and root,
        /// propagated or copied when the namespace was made) is mounted at this path of that namespace. The copy
        /// does not make this unmount fail, but it keeps the filesystem (an overlay's upper and work directories)
        /// in use after it.
        case copyInMountNamespace(namespace: UInt64, mountPoint: FilePath)
        /// Another mount is mounted on top of or below the mount (its mount point, as mountinfo shows it).
        case childMount(FilePath)
    }

    /// How it holds the mount.
    public let kind: Kind
    /// The process, for every kind but ``Kind/childMount(_:)``.
    public let processID: Int32?
    /// The process's command name (`/proc/<pid>/comm`), when readable.
    public let command: String?

    /// Creates a holder.
    public init(kind: Kind, processID: Int32?, command: String?) {
        self.kind = kind
        self.processID = processID
        self.command = command
    }

    /// A sentence naming the holder, e.g. `process 4242 (sleep) has its working directory /mnt/u/sub there`.
    public var description: String {
        let process = processID.map { "process \($0)" + (command.map { " (\($0))" } ?? "") } ?? ""
        switch kind {
        case .openFile(let descriptor, let path):
            return "\(process) has \(path.readable) open (fd \(descriptor))"
        case .workingDirectory(let path):
            return "\(process) has its working directory \(path.readable) there"
        case .rootDirectory(let path):
            return "\(process) has its root directory \(path.readable) there"
        case .copyInMountNamespace(let namespace, let mountPoint):
            return "\(process) is in mount namespace \(namespace), where a copy is mounted at \(mountPoint.readable)"
        case .childMount(let path):
            return "\(path.readable) is mounted there"
        }
    }
}
