import SystemPackage

/// How much ``MountTable/holders(of:limits:)`` may read: the search walks `/proc`, which on a busy host holds
/// tens of thousands of processes and open files.
public struct MountHolderSearchLimits: Sendable, Hashable {
    /// The most processes looked at (`/proc/<pid>`).
    public var processes: Int
    /// The most open files looked at per process (`/proc/<pid>/fd/*`).
    public var filesPerProcess: Int
    /// The most other mount namespaces whose mount tables are read (`/proc/<pid>/mountinfo`, one per namespace).
    public var namespaces: Int

    /// Creates limits; the defaults look at 65,536 processes, 65,536 files each and 1,024 namespaces.
    public init(processes: Int = 65_536, filesPerProcess: Int = 65_536, namespaces: Int = 1_024) {
        self.processes = processes
        self.filesPerProcess = filesPerProcess
        self.namespaces = namespaces
    }
}

/// What ``MountTable/holders(of:limits:)`` found, and what it could not look at.
public struct MountHolderSearch: Sendable, Hashable {
    /// The holders: child mounts first, then by process id.
    public var holders: [MountHolder]
    /// Processes whose `fd`, `cwd`, `root` or `ns/mnt` could not be read (another user's, without root), or that
    /// ended during the search.
    public var unreadableProcesses: Int
    /// Whether a limit stopped the search before it looked at everything.
    public var truncated: Bool
}

extension MountTable {
    /// Who holds the mount at `target`: what makes unmounting it fail with `EBUSY`, and what keeps its filesystem
    /// in use after it is unmounted. It only reads.
    ///
    /// - Mounts on top of it or below it (the mount table).
    /// - Processes with an open file, working directory or root directory on this very mount: each
    ///   `/proc/<pid>/fd/<n>`, `cwd` and `root` is statx(2)'d through its link, and its mount id compared with the
    ///   target's (mount ids are unique system-wide while mounted, so a file on a bind mount or a copy elsewhere is
    ///   not counted).
    /// - Other mount namespaces (distinct `/proc/<pid>/ns/mnt`) whose table holds a copy of the mount: the same
    ///   device and root in `/proc/<pid>/mountinfo`, one process per namespace, as `docker`'s "device or resource
    ///   busy" after a container's namespace kept a propagated copy.
    ///
    /// As root everything is readable; as another user only the caller's own processes are (the rest are counted
    /// in ``MountHolderSearch/unreadableProcesses``). The cost is bounded by `limits`.
    ///
    /// - Parameters:
    ///   - target: A mount point.
    ///   - limits: How much to read at most.
    /// - Returns: The holders found.
    /// - Throws: ``UnionMountError/Code/notMounted`` when `target` is not a mount point;
    ///   ``UnionMountError/Code/systemCallFailed`` when it cannot be looked up or `/proc` cannot be listed.
    ///
    /// The corresponding system calls and files are `statx(2)` on `target` and on the links in
    /// `/proc/<pid>/{fd/*,cwd,root}`, `readlink(2)`, `stat(2)` of `/proc/<pid>/ns/mnt`, `/proc/<pid>/mountinfo`,
    /// `/proc/<pid>/comm` and `/proc/self/mountinfo`.
    public static func holders(
        of target: FilePath, limits: MountHolderSearchLimits = MountHolderSearchLimits()
    ) throws(UnionMountError) -> MountHolderSearch {
        guard let entry = try entry(at: target, source: .mountinfo) else {
            throw UnionMountError(
                code: .notMounted, message: "\(target.readable) is not a mount point", input: target.readable)
        }
        var search = MountHolderSearch(holders: [], unreadableProcesses: 0, truncated: false)
        for child in try entries(under: target, source: .mountinfo) where child.mountID != entry.mountID {
            search.holders.append(MountHolder(kind: .childMount(child.mountPoint), processID: nil, command: nil))
        }
        let processes: [Int32]
        do {
            processes = try FileSystem.names(in: "/proc").compactMap { Int32(String(decoding: $0, as: UTF8.self)) }
                .sorted()
        } catch {
            throw UnionMountError.systemCall("opendir", error, message: "cannot list /proc", input: "/proc")
        }
        let ownNamespace = namespaceID(of: "/proc/self/ns/mnt")
        var namespacesSeen: Set<UInt64> = ownNamespace.map { [$0] } ?? []
        for pid in processes.prefix(limits.processes) {
            let process = FilePath("/proc/\(pid)")
            var readable = true
            var found: [MountHolder.Kind] = []
            let directories: [(String, (FilePath) -> MountHolder.Kind)] = [
                ("cwd", MountHolder.Kind.workingDirectory), ("root", MountHolder.Kind.rootDirectory),
            ]
            for (name, kind) in directories {
                let link = process.appending(name)
                guard let identity = try? FileSystem.mountIdentity(link) else {
                    readable = false
                    continue
                }
                if identity.mountID == UInt64(clamping: entry.mountID) { found.append(kind(linkPath(link))) }
            }
            if let descriptors = try? FileSystem.names(in: process.appending("fd")) {
                if descriptors.count > limits.filesPerProcess { search.truncated = true }
                for name in descriptors.prefix(limits.filesPerProcess) {
                    let link = process.appending("fd").appending(String(decoding: name, as: UTF8.self))
                    guard let descriptor = Int(String(decoding: name, as: UTF8.self)),
                        let identity = try? FileSystem.mountIdentity(link),
                        identity.mountID == UInt64(clamping: entry.mountID)
                    else { continue }
                    found.append(.openFile(descriptor: descriptor, path: linkPath(link)))
                }
            } else {
                readable = false
            }
            if let namespace = namespaceID(of: process.appending("ns/mnt")) {
                if !namespacesSeen.contains(namespace) {
                    if namespacesSeen.count > limits.namespaces {
                        search.truncated = true
                    } else {
                        namespacesSeen.insert(namespace)
                        for copy in copies(of: entry, in: process.appending("mountinfo")) {
                            found.append(.copyInMountNamespace(namespace: namespace, mountPoint: copy))
                        }
                    }
                }
            } else {
                readable = false
            }
            if !readable { search.unreadableProcesses += 1 }
            guard !found.isEmpty else { continue }
            let command = (try? FileSystem.readAll(process.appending("comm"), limit: 64)).map {
                String(decoding: $0, as: UTF8.self).trimmingSuffix(while: { $0 == "\n" })
            }
            search.holders += found.map { MountHolder(kind: $0, processID: pid, command: command) }
        }
        if processes.count > limits.processes { search.truncated = true }
        return search
    }

    /// The mount namespace a `/proc/<pid>/ns/mnt` link names: its inode number (nsfs), nil when unreadable.
    private static func namespaceID(of link: FilePath) -> UInt64? {
        (try? FileSystem.status(link, followingLinks: true))?.inode
    }

    /// What a `/proc/<pid>/…` link points to, as the kernel prints it (`/path (deleted)` included).
    private static func linkPath(_ link: FilePath) -> FilePath {
        (try? FileSystem.linkTarget(link)).map { FilePath(bytes: $0) } ?? link
    }

    /// The mount points, in the mount table file `mountinfo` of another namespace, of the copies of `entry`: the
    /// same device and the same root.
    private static func copies(of entry: MountEntry, in mountinfo: FilePath) -> [FilePath] {
        guard let table = try? entries(source: .file(mountinfo), malformedLines: .skip) else { return [] }
        let root = entry.rootBytes
        return table.filter { $0.major == entry.major && $0.minor == entry.minor && $0.rootBytes == root }
            .map(\.mountPoint)
    }
}

extension String {
    /// The string without the characters at its end for which `predicate` holds.
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> String {
        var text = self
        while let last = text.last, predicate(last) { text.removeLast() }
        return text
    }
}
