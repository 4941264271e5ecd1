import SystemPackage

/// Crash points between the steps of a multi-step change (the layer store's), for crash tests.
///
/// In a debug build, when the environment variable `UNIONMOUNT_STORE_CRASH_AT` is `n`, the process sends itself
/// `SIGKILL` on reaching the n-th point, and `UNIONMOUNT_STORE_CRASH_TRACE` (a file) collects the numbers and
/// names of the points passed, one per line. In a release build every point is empty and costs nothing.
package enum CrashPoints {
    #if ENABLE_MOCKING
        private struct Plan: @unchecked Sendable {
            var crashAt: Int?
            var trace: FileDescriptor?
        }
        private static let plan: Plan = {
            let crashAt = ProcessFacts.environment("UNIONMOUNT_STORE_CRASH_AT").flatMap { Int($0) }
            let trace = ProcessFacts.environment("UNIONMOUNT_STORE_CRASH_TRACE").flatMap { path in
                try? FileSystem.open(
                    FilePath(path), .writeOnly, options: [.create, .append], permissions: 0o600)
            }
            return Plan(crashAt: crashAt, trace: trace)
        }()
        nonisolated(unsafe) private static var passed = 0
        private static let counterLock = Mutex()
    #endif

    /// Marks the point `name` between two steps.
    ///
    /// The corresponding system calls (debug builds, when asked for) are `write(2)` and `kill(2)`.
    @inline(__always)
    package static func point(_ name: StaticString) {
        #if ENABLE_MOCKING
            guard plan.crashAt != nil || plan.trace != nil else { return }
            let count = counterLock.withLock {
                passed += 1
                return passed
            }
            if let trace = plan.trace {
                let line = Array("\(count) \(name)\n".utf8)
                _ = try? FileSystem.writeAll(trace, line)
            }
            if count == plan.crashAt { ProcessFacts.killSelf() }
        #endif
    }
}
