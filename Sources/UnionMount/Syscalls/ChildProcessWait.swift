#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension ChildProcess {
    /// Reaps the child `pid` once it has ended, storing its wait status in `status`; with `noHang`, returns 0 at
    /// once while it is still running (`WNOHANG`).
    ///
    /// - Returns: `pid` when it was reaped, 0 (with `noHang`) while it runs, or -1 with errno set (``system_errno()``;
    ///   `EINTR` when a signal interrupted the wait).
    ///
    /// The corresponding system call is `waitpid(2)`.
    package static func wait(_ pid: Int32, status: inout CInt, noHang: Bool) -> Int32 {
        waitpid(pid, &status, noHang ? WNOHANG : 0)
    }
}
