import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An open directory stream (opendir(3)/fdopendir(3)), closed (closedir(3)) when the value goes away.
///
/// ``descriptor`` stays valid while the stream lives, for the *at() calls on the names it lists.
package struct DirectoryStream: ~Copyable {
    private let stream: OpaquePointer

    /// Opens the directory at `path`.
    ///
    /// - Throws: the `Errno` of opendir(3).
    ///
    /// The corresponding system calls are `openat(2)` with `O_DIRECTORY` (through opendir(3)).
    package init(_ path: FilePath) throws(Errno) {
        try FileSystem.injectFault("opendir", path)
        guard let stream = withPathCString(path, { opendir($0) }) else { throw Errno(rawValue: errno) }
        self.stream = stream
    }

    /// Takes over the open directory descriptor `fd` (closed with the stream, also when this throws).
    ///
    /// - Throws: the `Errno` of fdopendir(3).
    ///
    /// The corresponding library call is `fdopendir(3)`.
    package init(taking fd: FileDescriptor) throws(Errno) {
        do {
            try FileSystem.injectFault("fdopendir", nil)
        } catch {
            FileSystem.close(fd)
            throw error
        }
        guard let stream = fdopendir(fd.rawValue) else {
            let error = Errno(rawValue: errno)
            FileSystem.close(fd)
            throw error
        }
        self.stream = stream
    }

    /// The descriptor of the directory, for openat(2), fstatat(2), unlinkat(2) and the like.
    ///
    /// The corresponding library call is `dirfd(3)`.
    package var descriptor: FileDescriptor { FileDescriptor(rawValue: dirfd(stream)) }

    /// The names in the directory, `.` and `..` excluded, in the order the file system gives them.
    ///
    /// - Throws: the `Errno` of readdir(3) (getdents64(2)).
    ///
    /// The corresponding system call is `getdents64(2)` (through readdir(3)).
    package func names() throws(Errno) -> [[UInt8]] {
        try FileSystem.injectFault("readdir", nil)
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw Errno(rawValue: errno) }
                return names
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
            names.append(name)
        }
    }

    deinit { closedir(stream) }
}

extension FileSystem {
    /// The names in the directory at `path`, `.` and `..` excluded, in the order the file system gives them.
    ///
    /// - Throws: the `Errno` of opendir(3) or readdir(3).
    ///
    /// The corresponding system calls are `openat(2)` and `getdents64(2)` (through opendir(3)/readdir(3)).
    package static func names(in path: FilePath) throws(Errno) -> [[UInt8]] {
        try DirectoryStream(path).names()
    }

    /// Creates the directory `path` (relative to `directory` when given).
    ///
    /// - Throws: the `Errno` of mkdirat(2) (`EEXIST` when anything is there).
    ///
    /// The corresponding system call is `mkdirat(2)`.
    package static func makeDirectory(
        _ path: FilePath, permissions: UInt32, relativeTo directory: FileDescriptor? = nil
    ) throws(Errno) {
        try injectFault("mkdir", path)
        let at = directoryDescriptor(directory)
        _ = try valueOrErrno(path) { mkdirat(at, $0, mode_t(permissions)) }
    }

    /// Creates `path` and every missing directory above it, each with `permissions` (as `mkdir -p`); a component
    /// that exists already is left as it is.
    ///
    /// - Throws: the first `Errno` of mkdir(2) other than `EEXIST`.
    ///
    /// The corresponding system call is `mkdirat(2)`, once per component.
    package static func makeDirectories(_ path: FilePath, permissions: UInt32) throws(Errno) {
        var partial = FilePath(root: path.root)
        for component in path.components {
            partial.append(component)
            do {
                try makeDirectory(partial, permissions: permissions)
            } catch  where error == .fileExists {}
        }
    }

    /// Removes the empty directory `path`.
    ///
    /// - Throws: the `Errno` of rmdir(2).
    ///
    /// The corresponding system call is `rmdir(2)`.
    package static func removeDirectory(_ path: FilePath) throws(Errno) {
        try injectFault("rmdir", path)
        _ = try valueOrErrno(path) { rmdir($0) }
    }

    /// Removes the name `path` (relative to `directory` when given): a file's name, or with `directory: true`
    /// an empty directory (`AT_REMOVEDIR`).
    ///
    /// - Throws: the `Errno` of unlinkat(2).
    ///
    /// The corresponding system call is `unlinkat(2)`.
    package static func unlink(
        _ path: FilePath, isDirectory: Bool = false, relativeTo directory: FileDescriptor? = nil
    ) throws(Errno) {
        try injectFault(isDirectory ? "unlinkat" : "unlink", path)
        let at = directoryDescriptor(directory)
        _ = try valueOrErrno(path) { unlinkat(at, $0, isDirectory ? AT_REMOVEDIR : 0) }
    }
}
