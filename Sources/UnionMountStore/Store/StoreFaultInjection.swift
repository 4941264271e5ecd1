import UnionMount
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Crash points between the store's steps, for the crash tests.
///
/// In a debug build, when the environment variable `UNIONMOUNT_STORE_CRASH_AT` is `n`, the process sends itself
/// `SIGKILL` on reaching the n-th point, and `UNIONMOUNT_STORE_CRASH_TRACE` (a file) collects the names of the
/// points passed. In a release build every point is empty and costs nothing.
enum StoreFaultInjection {
    #if ENABLE_MOCKING
        private struct Plan: @unchecked Sendable {
            var crashAt: Int?
            var trace: UnsafeMutablePointer<FILE>?
        }
        private static let plan: Plan = {
            let crashAt = getenv("UNIONMOUNT_STORE_CRASH_AT").flatMap { Int(String(cString: $0)) }
            let trace = getenv("UNIONMOUNT_STORE_CRASH_TRACE").flatMap { fopen($0, "a") }
            return Plan(crashAt: crashAt, trace: trace)
        }()
        nonisolated(unsafe) private static var passed = 0
        nonisolated(unsafe) private static let counterLock: UnsafeMutablePointer<pthread_mutex_t> = {
            let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
            pthread_mutex_init(lock, nil)
            return lock
        }()
    #endif

    /// Marks the point `name` between two steps.
    @inline(__always)
    static func point(_ name: StaticString) {
        #if ENABLE_MOCKING
            guard plan.crashAt != nil || plan.trace != nil else { return }
            pthread_mutex_lock(counterLock)
            passed += 1
            let count = passed
            pthread_mutex_unlock(counterLock)
            if let trace = plan.trace {
                fputs("\(count) \(name)\n", trace)
                fflush(trace)
            }
            if count == plan.crashAt { kill(getpid(), SIGKILL) }
        #endif
    }
}
