import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    #error("UnionMount supports Linux only")
#endif

/// The file-system calls of UnionMount and UnionMountStore, one function per system call, in the style of
/// swift-system's syscall layer.
///
/// Every path is a `FilePath` (its bytes reach the kernel through `FilePath.withNulTerminatedBytes(_:)`, without
/// a copy where the layout allows); calls on a name inside an open directory take that directory's descriptor
/// (`relativeTo:`) and the name as a relative `FilePath`. A failure throws the `Errno` the call set; calls that
/// can be interrupted (open(2), read(2), write(2), flock(2) and the like) are retried on `EINTR`. Symbolic links
/// are not followed unless a call says so. Callers turn an `Errno` into the `UnionMountError` that names their
/// step.
///
/// In debug builds a test can make any of these calls fail, and see which were made, with
/// ``FileSystemFaults``; release builds compile that check away.
package enum FileSystem {}

extension FileSystem {
    /// The directory that relative paths resolve against when no descriptor is given (`AT_FDCWD`).
    @inline(__always)
    static func directoryDescriptor(_ directory: FileDescriptor?) -> CInt {
        directory?.rawValue ?? AT_FDCWD
    }

    /// Throws the `Errno` a test's ``FileSystemFaults`` scripts for the call `name` on `path` (debug builds
    /// only; nothing in a release build).
    @inline(__always)
    static func injectFault(_ name: StaticString, _ path: FilePath?) throws(Errno) {
        #if ENABLE_MOCKING
            if let faults = FileSystemFaults.current, let error = faults.answer(name, path) { throw error }
        #endif
    }

    /// Runs `call` with the path as a C string until it does not fail with `EINTR` (or once, when
    /// `retryOnInterrupt` is false); `-1` becomes the thrown `errno`.
    @inline(__always)
    static func valueOrErrno<R: FixedWidthInteger>(
        _ path: FilePath, retryOnInterrupt: Bool = true, _ call: (UnsafePointer<CChar>) -> R
    ) throws(Errno) -> R {
        while true {
            let result = withPathCString(path, call)
            if result != -1 { return result }
            let error = Errno(rawValue: errno)
            if retryOnInterrupt && error == .interrupted { continue }
            throw error
        }
    }

    /// Runs `call` until it does not fail with `EINTR` (or once, when `retryOnInterrupt` is false); `-1` becomes
    /// the thrown `errno`.
    @inline(__always)
    static func valueOrErrno<R: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ call: () -> R) throws(Errno) -> R {
        while true {
            let result = call()
            if result != -1 { return result }
            let error = Errno(rawValue: errno)
            if retryOnInterrupt && error == .interrupted { continue }
            throw error
        }
    }
}

extension FileSystem {
    /// Opens `path` (relative to `directory` when given, else to the working directory).
    ///
    /// `O_CLOEXEC` is always added. `EINTR` is retried.
    ///
    /// - Parameters:
    ///   - path: the file to open.
    ///   - mode: read, write or both.
    ///   - options: `O_*` flags (see also ``noAccessTime`` and ``pathOnly``).
    ///   - permissions: the mode of a file `O_CREAT` creates (before the umask).
    ///   - directory: the directory a relative `path` is looked up in.
    /// - Returns: the new descriptor; the caller closes it with ``close(_:)``.
    /// - Throws: the `Errno` of openat(2).
    ///
    /// The corresponding system call is `openat(2)`.
    package static func open(
        _ path: FilePath, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions = [],
        permissions: UInt32 = 0o600, relativeTo directory: FileDescriptor? = nil
    ) throws(Errno) -> FileDescriptor {
        try injectFault("open", path)
        let flags = mode.rawValue | options.rawValue | O_CLOEXEC
        let at = directoryDescriptor(directory)
        let fd = try valueOrErrno(path) { openat(at, $0, flags, mode_t(permissions)) }
        return FileDescriptor(rawValue: fd)
    }

    /// Closes a descriptor. Errors are ignored: on Linux the descriptor is gone even when close(2) fails
    /// (`EINTR` included), so there is nothing to retry.
    ///
    /// The corresponding system call is `close(2)`.
    package static func close(_ fd: FileDescriptor) {
        system_close(fd.rawValue)
    }
}

extension FileDescriptor.OpenOptions {
    /// `O_NOATIME`: reading does not update the file's access time (only the owner or a privileged process may
    /// ask; others get `EPERM`). Hidden by Swift's Glibc module without `_GNU_SOURCE`; octal 01000000 on every
    /// architecture Swift runs on.
    package static var noAccessTime: Self { Self(rawValue: 0o1000000) }

    /// `O_PATH`: a descriptor that only names the file (for *at() calls and fsconfig(2) `FSCONFIG_SET_FD`).
    package static var pathOnly: Self { Self(rawValue: 0o10000000) }
}
