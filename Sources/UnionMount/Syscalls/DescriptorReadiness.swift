import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension FileSystem {
    /// Makes reads from `fd` return `EAGAIN` instead of waiting (`O_NONBLOCK`); a failure is ignored.
    ///
    /// The corresponding system call is `fcntl(2)` (`F_GETFL`, then `F_SETFL`).
    package static func setNonBlocking(_ fd: FileDescriptor) {
        _ = fcntl(fd.rawValue, F_SETFL, fcntl(fd.rawValue, F_GETFL) | O_NONBLOCK)
    }

    /// Waits until `fd` has something to read (or its end), at most `milliseconds`; an interruption or a
    /// failure just ends the wait early.
    ///
    /// The corresponding system call is `poll(2)`.
    package static func waitUntilReadable(_ fd: FileDescriptor, milliseconds: CInt) {
        var poller = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
        _ = poll(&poller, 1, milliseconds)
    }
}
