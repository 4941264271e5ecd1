#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Why a benchmark stopped: a failed setup, a contender that failed, or a check of its answers.
public struct BenchmarkError: Error, CustomStringConvertible {
    /// What went wrong, for a person.
    public var description: String

    /// An error with this description.
    public init(description: String) {
        self.description = description
    }

    /// An error for a failed C call, with `strerror(errno)` appended.
    public static func systemCall(_ what: String, errno code: CInt = errno) -> BenchmarkError {
        BenchmarkError(description: "\(what): \(String(cString: strerror(code))) (errno \(code))")
    }
}
