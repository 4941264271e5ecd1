import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension FileSystem {
    /// Takes an flock(2) lock on the open file `fd`: exclusive or shared, waiting for it unless `wait` is false.
    /// The lock belongs to the open file description and goes with its last descriptor (or with the process).
    /// `EINTR` is retried.
    ///
    /// - Returns: false when `wait` is false and another open file description holds a conflicting lock
    ///   (`EWOULDBLOCK`).
    /// - Throws: the `Errno` of flock(2) otherwise.
    ///
    /// The corresponding system call is `flock(2)`.
    @discardableResult
    package static func lock(_ fd: FileDescriptor, exclusive: Bool = true, wait: Bool = true) throws(Errno) -> Bool {
        try injectFault("flock", nil)
        let operation = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB)
        do {
            _ = try valueOrErrno { flock(fd.rawValue, operation) }
            return true
        } catch  where error == .wouldBlock {
            return false
        }
    }

    /// Releases the flock(2) lock the open file description `fd` holds (`LOCK_UN`); the descriptor stays open.
    /// `EINTR` is retried; no other error can happen on a descriptor that holds a lock (`EBADF` and `EINVAL` are
    /// its only others), so none is reported.
    ///
    /// The corresponding system call is `flock(2)`.
    package static func unlock(_ fd: FileDescriptor) {
        _ = try? valueOrErrno { flock(fd.rawValue, LOCK_UN) }
    }
}
