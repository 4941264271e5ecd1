import SystemPackage
import UnionMount

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An flock(2) lock on a file: shared between processes, released by the kernel when its holder dies, so a
/// `SIGKILL` never leaves the store locked.
struct StoreLock: ~Copyable {
    private let fd: CInt

    /// Opens (creating it when needed) and locks `path`; waits unless `wait` is false, then returns nil when
    /// another open file description holds it. Each call opens its own description, so two threads of one process
    /// exclude each other too.
    init?(_ path: FilePath, exclusive: Bool = true, wait: Bool = true) throws(UnionMountError) {
        let fd = withPathCString(path) { open($0, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600) }
        guard fd >= 0 else {
            throw UnionMountError.systemCall(
                "open", system_errno(), message: "cannot open lock \(path.readable)", input: path.readable)
        }
        let operation = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB)
        while flock(fd, operation) != 0 {
            let error = system_errno()
            if error == .interrupted { continue }
            close(fd)
            if error == .wouldBlock { return nil }
            throw UnionMountError.systemCall(
                "flock", error, message: "cannot lock \(path.readable)", input: path.readable)
        }
        self.fd = fd
    }

    /// Unlocks (by closing the descriptor); the lock is held until this is called or the value goes away.
    consuming func release() {}

    deinit { close(fd) }
}
