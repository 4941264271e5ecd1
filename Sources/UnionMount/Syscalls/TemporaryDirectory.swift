import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension FileSystem {
    /// Creates a new directory (mode 0700) named `template` with its trailing `XXXXXX` replaced by characters
    /// that make the name unique.
    ///
    /// - Returns: the directory's path.
    /// - Throws: the `Errno` of mkdtemp(3) (`EINVAL` when `template` does not end in `XXXXXX`).
    ///
    /// The corresponding library call is `mkdtemp(3)` (mkdir(2) of candidate names).
    package static func makeTemporaryDirectory(_ template: FilePath) throws(Errno) -> FilePath {
        try injectFault("mkdtemp", template)
        var name = template.bytes.map { CChar(bitPattern: $0) } + [0]
        guard mkdtemp(&name) != nil else { throw Errno(rawValue: errno) }
        return FilePath(platformString: name)
    }
}
