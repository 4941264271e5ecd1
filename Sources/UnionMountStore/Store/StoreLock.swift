import SystemPackage
import UnionMount

/// An flock(2) lock on a file: shared between processes, released by the kernel when its holder dies, so a
/// `SIGKILL` never leaves the store locked.
struct StoreLock: ~Copyable {
    private let fd: FileDescriptor

    /// Opens (creating it when needed) and locks `path`; waits unless `wait` is false, then returns nil when
    /// another open file description holds it. Each call opens its own description, so two threads of one process
    /// exclude each other too.
    init?(_ path: FilePath, exclusive: Bool = true, wait: Bool = true) throws(UnionMountError) {
        let fd: FileDescriptor
        do {
            fd = try FileSystem.open(path, .readWrite, options: [.create, .noFollow], permissions: 0o600)
        } catch {
            throw UnionMountError.systemCall(
                "open", error, message: "cannot open lock \(path.readable)", input: path.readable)
        }
        do {
            guard try FileSystem.lock(fd, exclusive: exclusive, wait: wait) else {
                FileSystem.close(fd)
                return nil
            }
        } catch {
            FileSystem.close(fd)
            throw UnionMountError.systemCall(
                "flock", error, message: "cannot lock \(path.readable)", input: path.readable)
        }
        self.fd = fd
    }

    /// Unlocks (by closing the descriptor); the lock is held until this is called or the value goes away.
    consuming func release() {}

    deinit { FileSystem.close(fd) }
}
