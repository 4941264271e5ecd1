#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension ProcessFacts {
    /// The machine's hardware name as the kernel reports it (`x86_64`, `aarch64`, `armv7l`): the platform an
    /// image index entry is picked for.
    ///
    /// The corresponding system call is `uname(2)` (its `machine` field).
    package static var machine: String {
        var names = utsname()
        guard uname(&names) == 0 else { return "unknown" }
        return withUnsafeBytes(of: &names.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// The major and minor numbers of a kernel release (`6.12.57+deb13-amd64` is 6.12), (0, 0) when it has none.
    package static func kernelVersion(_ release: String = kernelRelease) -> (major: Int, minor: Int) {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return numbers.count == 2 ? (numbers[0], numbers[1]) : (0, 0)
    }

    /// The running kernel's release (`6.12.57+deb13-amd64`).
    ///
    /// The corresponding system call is `uname(2)` (its `release` field).
    package static var kernelRelease: String {
        var names = utsname()
        guard uname(&names) == 0 else { return "" }
        return withUnsafeBytes(of: &names.release) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
