import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension FileSystem {
    /// A new pipe whose two ends close on exec.
    ///
    /// pipe2(2) with `O_CLOEXEC`, looked up at run time (Swift's Glibc module hides the GNU declaration), or
    /// pipe(2) plus `FD_CLOEXEC` (fcntl(2)) where libc lacks it.
    ///
    /// - Returns: the read end and the write end; the caller closes both with ``close(_:)``.
    /// - Throws: the `Errno` of pipe2(2) or pipe(2).
    ///
    /// The corresponding system calls are `pipe2(2)` and `pipe(2)`.
    package static func makePipe() throws(Errno) -> (read: FileDescriptor, write: FileDescriptor) {
        var fds: [CInt] = [-1, -1]
        if let pipe2 = pipe2Function {
            guard fds.withUnsafeMutableBufferPointer({ pipe2($0.baseAddress!, O_CLOEXEC) }) == 0 else {
                throw Errno(rawValue: errno)
            }
        } else {
            guard pipe(&fds) == 0 else { throw Errno(rawValue: errno) }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<CInt>, CInt) -> CInt

    /// glibc's `pipe2`, found once.
    private static let pipe2Function: Pipe2? = libcFunction("pipe2", as: Pipe2.self)
}
