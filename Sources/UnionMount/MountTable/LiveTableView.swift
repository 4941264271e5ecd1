import SystemPackage

/// Whether the calling thread sees the live mount table that `/proc/self/mountinfo` shows: that file belongs to
/// the process (its main thread), while statmount(2) and listmount(2) answer for the calling thread, which may
/// have entered another mount namespace (setns, unshare) or root (chroot after unshare(CLONE_FS)).
enum LiveTableView {
    static func isProcessView() -> Bool {
        if isMainThread() { return true }
        func namespace(_ path: FilePath) -> (UInt64, UInt64)? {
            guard let info = try? FileSystem.status(path, followingLinks: true) else { return nil }
            return (info.device, info.inode)
        }
        func root(_ path: FilePath) -> (UInt64, UInt64)? {
            guard let info = try? FileSystem.mountIdentity(path, unique: true) else { return nil }
            return (info.mountID, info.inode)
        }
        guard let processNamespace = namespace("/proc/self/ns/mnt"),
            let threadNamespace = namespace("/proc/thread-self/ns/mnt"), processNamespace == threadNamespace,
            let processRoot = root("/proc/self/root"), let threadRoot = root("/proc/thread-self/root")
        else { return false }
        return processRoot == threadRoot
    }

    /// Whether the caller is the process's main thread: `/proc/thread-self` links to `<pid>/task/<pid>`.
    private static func isMainThread() -> Bool {
        guard let target = try? FileSystem.linkTarget("/proc/thread-self") else { return false }
        let pid = String(ProcessFacts.processID)
        return target.elementsEqual("\(pid)/task/\(pid)".utf8)
    }
}
