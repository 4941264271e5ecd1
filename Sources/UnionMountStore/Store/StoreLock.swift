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

/// The store's `lock` file, opened once per ``LayerStore`` value and locked with flock(2) for each operation.
///
/// Speed: opening the lock file for every operation cost an openat(2) and a close(2) (about 3 µs per operation
/// in a C loop on the benchmark machine, see Benchmarks/README.md); an open descriptor is locked and unlocked instead (two flock(2) calls). Copies of
/// one `LayerStore` share this object and so one open file description, on which flock(2) does not exclude threads
/// of this process from each other: a mutex does that first. Another `LayerStore` value (or process) opens its own
/// description, which flock(2) excludes as before. The kernel drops the lock when the process dies, so a `SIGKILL`
/// never leaves the store locked.
final class StoreLockFile: Sendable {
    private let fd: FileDescriptor
    private let threads = ThreadMutex()
    let path: FilePath

    /// Opens (creating it when needed) the lock file at `path`, without locking it.
    init(_ path: FilePath) throws(UnionMountError) {
        do {
            fd = try FileSystem.open(path, .readWrite, options: [.create, .noFollow], permissions: 0o600)
        } catch {
            throw UnionMountError.systemCall(
                "open", error, message: "cannot open lock \(path.readable)", input: path.readable)
        }
        self.path = path
    }

    /// Runs `body` holding the lock exclusively: the mutex, then flock(2) `LOCK_EX`; `LOCK_UN` after it.
    func withLock<Result>(_ body: () throws(UnionMountError) -> Result) throws(UnionMountError) -> Result {
        try threads.withLock { () throws(UnionMountError) -> Result in
            do throws(Errno) {
                try FileSystem.lock(fd, exclusive: true, wait: true)
            } catch {
                throw UnionMountError.systemCall(
                    "flock", error, message: "cannot lock \(path.readable)", input: path.readable)
            }
            defer { FileSystem.unlock(fd) }
            return try body()
        }
    }

    deinit { FileSystem.close(fd) }
}
