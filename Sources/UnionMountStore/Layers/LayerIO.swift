import SystemPackage
import UnionMount

/// The file operations of the layer code, as thin wrappers of `FileSystem` that name the path in every
/// failure (`UnionMountError.systemCall` with "cannot <what> <path>"). Symbolic links are never followed.
///
/// Paths are `FilePath`s; a name read from a directory joins its directory with ``join(_:_:)-(FilePath,_)``.
/// Relative paths inside a tree (the keys of manifests and change lists) stay bytes.
enum LayerIO {
    static let slash = UInt8(ascii: "/")

    /// `directory/name`, for a file to call the kernel on.
    static func join(_ directory: FilePath, _ name: [UInt8]) -> FilePath {
        directory.appending(name: name)
    }

    /// `directory/name` as relative bytes (`name` alone when `directory` is empty).
    static func join(_ directory: [UInt8], _ name: [UInt8]) -> [UInt8] {
        if directory.isEmpty { return name }
        return directory.last == slash ? directory + name : directory + [slash] + name
    }

    static func failure(_ call: String, _ error: Errno, _ what: String, _ path: FilePath) -> UnionMountError {
        UnionMountError.systemCall(call, error, message: "cannot \(what) \(path.readable)", input: path.readable)
    }

    /// lstat(2).
    static func status(_ path: FilePath) throws(UnionMountError) -> FileStatus {
        do {
            return try FileSystem.status(path)
        } catch {
            throw failure("lstat", error, "examine", path)
        }
    }

    /// lstat(2); nil when nothing is there (ENOENT).
    static func statusIfPresent(_ path: FilePath) throws(UnionMountError) -> FileStatus? {
        do {
            return try FileSystem.statusIfPresent(path)
        } catch {
            throw failure("lstat", error, "examine", path)
        }
    }

    /// The names in a directory (opendir(3)/readdir(3)), `.` and `..` excluded, sorted by their bytes.
    static func names(in directory: FilePath) throws(UnionMountError) -> [[UInt8]] {
        let stream: DirectoryStream
        do {
            stream = try DirectoryStream(directory)
        } catch {
            throw failure("opendir", error, "read directory", directory)
        }
        do {
            return try stream.names().sorted { $0.lexicographicallyPrecedes($1) }
        } catch {
            throw failure("readdir", error, "read directory", directory)
        }
    }

    /// The names of a file's extended attributes (llistxattr(2)), sorted.
    static func xattrNames(_ path: FilePath) throws(UnionMountError) -> [String] {
        do {
            return try FileSystem.extendedAttributeNames(path).sorted()
        } catch {
            throw failure("llistxattr", error, "list the extended attributes of", path)
        }
    }

    /// The value of one extended attribute (lgetxattr(2)); nil when the file does not have it.
    static func xattr(_ path: FilePath, _ name: String) throws(UnionMountError) -> [UInt8]? {
        do {
            return try FileSystem.extendedAttribute(path, name)
        } catch {
            throw failure("lgetxattr", error, "read the extended attribute \(name) of", path)
        }
    }

    /// Every extended attribute of a file, sorted by name.
    static func xattrs(_ path: FilePath) throws(UnionMountError) -> [(name: String, value: [UInt8])] {
        var result: [(name: String, value: [UInt8])] = []
        for name in try xattrNames(path) {
            if let value = try xattr(path, name) { result.append((name, value)) }
        }
        return result
    }

    /// lsetxattr(2).
    static func setXattr(_ path: FilePath, _ name: String, _ value: [UInt8]) throws(UnionMountError) {
        do {
            try FileSystem.setExtendedAttribute(path, name, value)
        } catch {
            throw failure("lsetxattr", error, "set the extended attribute \(name) on", path)
        }
    }

    /// lremovexattr(2); a missing attribute is not an error.
    static func removeXattr(_ path: FilePath, _ name: String) throws(UnionMountError) {
        do {
            try FileSystem.removeExtendedAttribute(path, name)
        } catch  where error != .noData {
            throw failure("lremovexattr", error, "remove the extended attribute \(name) from", path)
        } catch {}
    }

    /// readlink(2): the target's bytes.
    static func linkTarget(_ path: FilePath) throws(UnionMountError) -> [UInt8] {
        do {
            return try FileSystem.linkTarget(path)
        } catch {
            throw failure("readlink", error, "read the symbolic link", path)
        }
    }

    /// lchown(2).
    static func setOwner(_ path: FilePath, uid: UInt32, gid: UInt32) throws(UnionMountError) {
        do {
            try FileSystem.setOwner(path, uid: uid, gid: gid)
        } catch {
            throw failure("lchown", error, "change the owner of", path)
        }
    }

    /// chmod(2) with the permission and special bits of `mode`; never called on a symbolic link.
    static func setMode(_ path: FilePath, _ mode: UInt32) throws(UnionMountError) {
        do {
            try FileSystem.setPermissions(path, mode)
        } catch {
            throw failure("chmod", error, "change the mode of", path)
        }
    }

    /// utimensat(2) with `AT_SYMLINK_NOFOLLOW`: access and modification times to the nanosecond.
    static func setTimes(_ path: FilePath, access: FileTime, modification: FileTime) throws(UnionMountError) {
        do {
            try FileSystem.setTimes(path, access: access, modification: modification)
        } catch {
            throw failure("utimensat", error, "set the times of", path)
        }
    }

    /// The access and modification times of `info` set on `path`.
    static func setTimes(_ path: FilePath, of info: FileStatus) throws(UnionMountError) {
        try setTimes(path, access: info.accessTime, modification: info.modificationTime)
    }

    /// mkdir(2) with mode 0700 (the caller sets the final mode).
    static func makeDirectory(_ path: FilePath) throws(UnionMountError) {
        do {
            try FileSystem.makeDirectory(path, permissions: 0o700)
        } catch {
            throw failure("mkdir", error, "create directory", path)
        }
    }

    /// mknod(2): a device, FIFO or socket node; the caller sets the final mode.
    static func makeNode(_ path: FilePath, type: FileKind, device: UInt64) throws(UnionMountError) {
        do {
            try FileSystem.makeNode(path, type: type, permissions: 0o600, device: device)
        } catch {
            throw failure("mknod", error, "create", path)
        }
    }

    /// symlink(2).
    static func makeSymlink(_ path: FilePath, target: [UInt8]) throws(UnionMountError) {
        do {
            try FileSystem.makeSymbolicLink(path, to: target)
        } catch {
            throw failure("symlink", error, "create", path)
        }
    }

    /// link(2): `path` becomes another name of `existing`.
    static func makeLink(_ path: FilePath, to existing: FilePath) throws(UnionMountError) {
        do {
            try FileSystem.makeHardLink(path, to: existing)
        } catch {
            throw failure("link", error, "create hard link", path)
        }
    }

    /// rename(2) within one directory tree; `destination` must not exist (checked by the caller).
    static func move(_ source: FilePath, to destination: FilePath) throws(UnionMountError) {
        do {
            try FileSystem.rename(source, to: destination)
        } catch {
            throw failure("rename", error, "rename", source)
        }
    }

    /// unlink(2).
    static func remove(_ path: FilePath) throws(UnionMountError) {
        do {
            try FileSystem.unlink(path)
        } catch {
            throw failure("unlink", error, "remove", path)
        }
    }

    /// Removes `path` and, for a directory, everything below it (unlink(2), rmdir(2)); never follows links.
    static func removeTree(_ path: FilePath) throws(UnionMountError) {
        let info = try status(path)
        guard info.type == .directory else { return try remove(path) }
        for name in try names(in: path) { try removeTree(join(path, name)) }
        do {
            try FileSystem.removeDirectory(path)
        } catch {
            throw failure("rmdir", error, "remove directory", path)
        }
    }

    /// Creates an empty regular file (open(2) with `O_CREAT|O_EXCL`); the caller sets the final mode.
    static func makeEmptyFile(_ path: FilePath) throws(UnionMountError) {
        do {
            let fd = try FileSystem.open(
                path, .writeOnly, options: [.create, .exclusiveCreate, .noFollow], permissions: 0o600)
            FileSystem.close(fd)
        } catch {
            throw failure("open", error, "create", path)
        }
    }

    /// Opens the regular file `path` for reading, with `O_NOATIME` where allowed so that reading does not touch
    /// its access time.
    private static func openForReading(_ path: FilePath) throws(UnionMountError) -> FileDescriptor {
        do {
            do {
                return try FileSystem.open(path, .readOnly, options: [.noFollow, .noAccessTime])
            } catch  where error == .notPermitted {
                return try FileSystem.open(path, .readOnly, options: [.noFollow])
            }
        } catch {
            throw failure("open", error, "read", path)
        }
    }

    /// Copies the bytes of the regular file `source` into the new file `destination` (open(2), read(2),
    /// write(2)).
    static func copyContents(_ source: FilePath, to destination: FilePath) throws(UnionMountError) {
        let input = try openForReading(source)
        defer { FileSystem.close(input) }
        let output: FileDescriptor
        do {
            output = try FileSystem.open(
                destination, .writeOnly, options: [.create, .exclusiveCreate, .noFollow], permissions: 0o600)
        } catch {
            throw failure("open", error, "create", destination)
        }
        defer { FileSystem.close(output) }
        var failed: UnionMountError?
        try readChunks(input, source) { chunk in
            guard failed == nil else { return }
            do throws(Errno) {
                try FileSystem.writeAll(output, chunk)
            } catch {
                failed = failure("write", error, "write", destination)
            }
        }
        if let failed { throw failed }
    }

    /// Calls `body` with successive chunks of the regular file at `path` (open(2), read(2)).
    static func readChunks(_ path: FilePath, _ body: (UnsafeRawBufferPointer) -> Void) throws(UnionMountError) {
        let input = try openForReading(path)
        defer { FileSystem.close(input) }
        try readChunks(input, path, body)
    }

    private static func readChunks(
        _ input: FileDescriptor, _ path: FilePath, _ body: (UnsafeRawBufferPointer) -> Void
    ) throws(UnionMountError) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { space -> Result<Int, Errno> in
                do throws(Errno) {
                    return .success(try FileSystem.read(input, into: space))
                } catch {
                    return .failure(error)
                }
            }
            switch count {
            case .failure(let error): throw failure("read", error, "read", path)
            case .success(0): return
            case .success(let count): buffer.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            }
        }
    }
}

/// The identity of an inode, to find the other names of a hard-linked file.
struct InodeKey: Hashable {
    var device: UInt64
    var inode: UInt64

    init(_ info: FileStatus) {
        device = info.device
        inode = info.inode
    }
}
