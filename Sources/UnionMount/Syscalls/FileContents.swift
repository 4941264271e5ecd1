import SystemPackage

/// Reads a whole (proc) file: ``FileSystem/readAll(_:options:limit:)`` with the failure as a `UnionMountError`.
enum FileContents {
    /// The whole file, read into a buffer that grows until read(2) returns 0. `EINTR` is retried.
    ///
    /// The corresponding system calls are `openat(2)`, `fstat(2)` and `read(2)`.
    static func readAll(_ path: FilePath) throws(UnionMountError) -> [UInt8] {
        do {
            return try FileSystem.readAll(path)
        } catch {
            let name = path.readable
            let verb = error.systemCall == "open" ? "open" : "read"
            throw .systemCall(error.systemCall, error.errno, message: "cannot \(verb) \(name)", input: name)
        }
    }
}
