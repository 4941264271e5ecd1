#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Facts about the running process and machine that a few probes and test hooks need, each one libc call.
package enum ProcessFacts {
    /// The size of a memory page in bytes.
    ///
    /// The corresponding library call is `sysconf(3)` with `_SC_PAGESIZE`.
    package static var pageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }

    /// The calling process's id.
    ///
    /// The corresponding system call is `getpid(2)`.
    package static var processID: Int32 { getpid() }

    /// The soft limit on open descriptors (`RLIMIT_NOFILE`): every descriptor number must be below it. `Int.max`
    /// when unlimited or unknown.
    ///
    /// The corresponding system call is `getrlimit(2)`.
    package static var openFileLimit: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else {
            return .max
        }
        return Int(clamping: limit.rlim_cur)
    }

    /// The calling process's effective user id (in its user namespace).
    ///
    /// The corresponding system call is `geteuid(2)`.
    package static var effectiveUserID: UInt32 { geteuid() }

    /// The value of the environment variable `name`, nil when it is not set.
    ///
    /// The corresponding library call is `getenv(3)`.
    package static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// The monotonic clock in microseconds (`CLOCK_MONOTONIC`, which the kernel log also stamps with).
    ///
    /// The corresponding system call is `clock_gettime(2)`.
    package static func monotonicMicroseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000 + UInt64(time.tv_nsec) / 1000
    }

    /// The wall clock in whole seconds since the Unix epoch (`CLOCK_REALTIME`).
    ///
    /// The corresponding system call is `clock_gettime(2)`.
    package static func realtimeSeconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec)
    }

    /// Ends the process at once with `SIGKILL`, as a crash would (for crash tests).
    ///
    /// The corresponding system call is `kill(2)`.
    package static func killSelf() -> Never {
        kill(getpid(), SIGKILL)
        fatalError("SIGKILL did not end the process")
    }
}
