import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension FileSystem {
    /// Renames `source` to `target`: over an existing `target` when `replacing`, else failing with `EEXIST`
    /// (renameat2(2) `RENAME_NOREPLACE`).
    ///
    /// - Throws: the `Errno` of rename(2) or renameat2(2).
    ///
    /// The corresponding system calls are `rename(2)` and `renameat2(2)`.
    package static func rename(_ source: FilePath, to target: FilePath, replacing: Bool = true) throws(Errno) {
        try injectFault(replacing ? "rename" : "renameat2", source)
        _ = try valueOrErrno(source) { from in
            withPathCString(target) { to in
                replacing
                    ? renameat(AT_FDCWD, from, AT_FDCWD, to)
                    : CUnionMount_renameat2(AT_FDCWD, from, AT_FDCWD, to, CUnionMount_RENAME_NOREPLACE)
            }
        }
    }

    /// Creates the symbolic link `path` (relative to `directory` when given) pointing to `target`.
    ///
    /// The target is raw bytes (any but NUL), kept exactly: it is not a path to normalize (a `FilePath` would
    /// drop its doubled and trailing slashes), and ``linkTarget(_:)`` gives the same bytes back.
    ///
    /// - Throws: the `Errno` of symlinkat(2).
    ///
    /// The corresponding system call is `symlinkat(2)`.
    package static func makeSymbolicLink(
        _ path: FilePath, to target: [UInt8], relativeTo directory: FileDescriptor? = nil
    ) throws(Errno) {
        try injectFault("symlink", path)
        let terminated = target.map { CChar(bitPattern: $0) } + [0]
        let at = directoryDescriptor(directory)
        _ = try valueOrErrno(path) { link in symlinkat(terminated, at, link) }
    }

    /// The target of the symbolic link `path`, as bytes.
    ///
    /// - Throws: the `Errno` of readlink(2).
    ///
    /// The corresponding system call is `readlinkat(2)`.
    package static func linkTarget(_ path: FilePath) throws(Errno) -> [UInt8] {
        try injectFault("readlink", path)
        var capacity = 256
        while true {
            var buffer = [UInt8](repeating: 0, count: capacity)
            let count = buffer.withUnsafeMutableBytes { buffer in
                withPathCString(path) {
                    readlinkat(AT_FDCWD, $0, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count)
                }
            }
            guard count >= 0 else { throw Errno(rawValue: errno) }
            if count < capacity { return Array(buffer[..<count]) }
            capacity *= 4
        }
    }

    /// Makes `path` another name of the file `existing` (a hard link; a symbolic link is linked itself, never
    /// followed), each relative to its directory when given.
    ///
    /// - Throws: the `Errno` of link(2).
    ///
    /// The corresponding system call is `linkat(2)` (without `AT_SYMLINK_FOLLOW`).
    package static func makeHardLink(
        _ path: FilePath, relativeTo directory: FileDescriptor? = nil, to existing: FilePath,
        existingRelativeTo existingDirectory: FileDescriptor? = nil
    ) throws(Errno) {
        try injectFault("link", path)
        let at = directoryDescriptor(directory)
        let from = directoryDescriptor(existingDirectory)
        _ = try valueOrErrno(path) { new in withPathCString(existing) { linkat(from, $0, at, new, 0) } }
    }

    /// Creates the node `path` (relative to `directory` when given) of `type` (a device, FIFO or socket; a character device 0/0 is overlay's
    /// whiteout) with `permissions`, standing for `device`.
    ///
    /// - Throws: the `Errno` of mknod(2).
    ///
    /// The corresponding system call is `mknodat(2)`.
    package static func makeNode(
        _ path: FilePath, type: FileKind, permissions: UInt32, device: UInt64 = 0,
        relativeTo directory: FileDescriptor? = nil
    ) throws(Errno) {
        try injectFault("mknod", path)
        let mode = mode_t(type.modeBits | (permissions & 0o7777))
        let at = directoryDescriptor(directory)
        _ = try valueOrErrno(path) { mknodat(at, $0, mode, dev_t(device)) }
    }
}
