import UnionMount

/// Crash points between the store's steps, for the crash tests: see `CrashPoints` (in `Syscalls/`), which
/// holds the machinery; in a release build every point is empty and costs nothing.
///
/// Failing a single file call (an `ENOSPC` from a rename, an `EIO` from an fsync) is done one layer down, with
/// `FileSystemFaults`, which sees every call the store makes.
enum StoreFaultInjection {
    /// Marks the point `name` between two steps.
    @inline(__always)
    static func point(_ name: StaticString) {
        CrashPoints.point(name)
    }
}
