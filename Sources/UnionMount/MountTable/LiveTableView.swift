import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Whether the calling thread sees the live mount table that `/proc/self/mountinfo` shows: that file belongs to
/// the process (its main thread), while statmount(2) and listmount(2) answer for the calling thread, which may
/// have entered another mount namespace (setns, unshare) or root (chroot after unshare(CLONE_FS)).
enum LiveTableView {
    static func isProcessView() -> Bool {
        if isMainThread() { return true }
        func namespace(_ path: String) -> (UInt64, UInt64)? {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            return (UInt64(info.st_dev), UInt64(info.st_ino))
        }
        func root(_ path: String) -> (UInt64, UInt64)? {
            var info = CUnionMount_statx_result()
            guard CUnionMount_statx_mount(AT_FDCWD, path, 0, 1, &info) == 0 else { return nil }
            return (info.mount_id, info.ino)
        }
        guard let processNamespace = namespace("/proc/self/ns/mnt"),
            let threadNamespace = namespace("/proc/thread-self/ns/mnt"), processNamespace == threadNamespace,
            let processRoot = root("/proc/self/root"), let threadRoot = root("/proc/thread-self/root")
        else { return false }
        return processRoot == threadRoot
    }

    /// Whether the caller is the process's main thread: `/proc/thread-self` links to `<pid>/task/<pid>`.
    private static func isMainThread() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBufferPointer { target in
            target.baseAddress!.withMemoryRebound(to: CChar.self, capacity: target.count) {
                readlink("/proc/thread-self", $0, target.count)
            }
        }
        guard count > 0, count < buffer.count else { return false }
        let pid = String(getpid())
        return buffer[..<count].elementsEqual("\(pid)/task/\(pid)".utf8)
    }
}
