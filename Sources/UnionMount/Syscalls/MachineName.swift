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
