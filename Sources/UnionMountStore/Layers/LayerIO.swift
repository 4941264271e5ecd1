import CUnionMountShim
import SystemPackage
import UnionMount

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `O_NOATIME` (Linux, every architecture Swift runs on: octal 01000000), hidden by Glibc's module without
/// `_GNU_SOURCE`.
private let openNoAccessTime: Int32 = 0o1000000

/// The file operations the layer code needs, on paths given as raw bytes (names may be any bytes but NUL).
/// Symbolic links are never followed; every failure is a `UnionMountError` naming the path.
enum LayerIO {
    static let slash = UInt8(ascii: "/")

    /// `directory/name` (`name` alone when `directory` is empty).
    static func join(_ directory: [UInt8], _ name: [UInt8]) -> [UInt8] {
        if directory.isEmpty { return name }
        return directory.last == slash ? directory + name : directory + [slash] + name
    }

    /// The bytes with a terminating NUL, to pass where C wants a path.
    static func cString(_ bytes: [UInt8]) -> [CChar] {
        var chars = bytes.map { CChar(bitPattern: $0) }
        chars.append(0)
        return chars
    }

    /// A path given by the caller, as bytes without trailing slashes (`/` stays `/`).
    static func bytes(_ path: FilePath) -> [UInt8] {
        var bytes = path.bytes
        while bytes.count > 1 && bytes.last == slash { bytes.removeLast() }
        return bytes
    }

    static func failure(_ call: String, _ what: String, _ path: [UInt8]) -> UnionMountError {
        UnionMountError.systemCall(
            call, system_errno(), message: "cannot \(what) \(path.readable)", input: path.readable)
    }

    /// lstat(2).
    static func status(_ path: [UInt8]) throws(UnionMountError) -> stat {
        var info = stat()
        guard lstat(cString(path), &info) == 0 else { throw failure("lstat", "examine", path) }
        return info
    }

    /// lstat(2); nil when nothing is there (ENOENT).
    static func statusIfPresent(_ path: [UInt8]) throws(UnionMountError) -> stat? {
        var info = stat()
        if lstat(cString(path), &info) == 0 { return info }
        if errno == ENOENT { return nil }
        throw failure("lstat", "examine", path)
    }

    /// The names in a directory (opendir(3)/readdir(3)), `.` and `..` excluded, sorted by their bytes.
    static func names(in directory: [UInt8]) throws(UnionMountError) -> [[UInt8]] {
        guard let handle = opendir(cString(directory)) else { throw failure("opendir", "read directory", directory) }
        defer { closedir(handle) }
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let entry = readdir(handle) else {
                if errno != 0 { throw failure("readdir", "read directory", directory) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
            names.append(name)
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// The names of a file's extended attributes (llistxattr(2)), sorted.
    static func xattrNames(_ path: [UInt8]) throws(UnionMountError) -> [String] {
        let cPath = cString(path)
        while true {
            let size = CUnionMount_llistxattr(cPath, nil, 0)
            guard size >= 0 else {
                if errno == ENOTSUP { return [] }
                throw failure("llistxattr", "list the extended attributes of", path)
            }
            if size == 0 { return [] }
            var buffer = [CChar](repeating: 0, count: size)
            let count = CUnionMount_llistxattr(cPath, &buffer, buffer.count)
            if count < 0 && errno == ERANGE { continue }
            guard count >= 0 else { throw failure("llistxattr", "list the extended attributes of", path) }
            let names = buffer[..<count].split(separator: 0).map {
                String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            return names.sorted()
        }
    }

    /// The value of one extended attribute (lgetxattr(2)); nil when the file does not have it.
    static func xattr(_ path: [UInt8], _ name: String) throws(UnionMountError) -> [UInt8]? {
        let cPath = cString(path)
        while true {
            let size = CUnionMount_lgetxattr(cPath, name, nil, 0)
            guard size >= 0 else {
                if errno == ENODATA || errno == ENOTSUP { return nil }
                throw failure("lgetxattr", "read the extended attribute \(name) of", path)
            }
            var value = [UInt8](repeating: 0, count: size)
            let count = value.withUnsafeMutableBytes { CUnionMount_lgetxattr(cPath, name, $0.baseAddress, $0.count) }
            if count < 0 && errno == ERANGE { continue }
            guard count >= 0 else { throw failure("lgetxattr", "read the extended attribute \(name) of", path) }
            return Array(value[..<count])
        }
    }

    /// Every extended attribute of a file, sorted by name.
    static func xattrs(_ path: [UInt8]) throws(UnionMountError) -> [(name: String, value: [UInt8])] {
        var result: [(name: String, value: [UInt8])] = []
        for name in try xattrNames(path) {
            if let value = try xattr(path, name) { result.append((name, value)) }
        }
        return result
    }

    /// lsetxattr(2).
    static func setXattr(_ path: [UInt8], _ name: String, _ value: [UInt8]) throws(UnionMountError) {
        let result = value.withUnsafeBytes { CUnionMount_lsetxattr(cString(path), name, $0.baseAddress, $0.count, 0) }
        guard result == 0 else { throw failure("lsetxattr", "set the extended attribute \(name) on", path) }
    }

    /// lremovexattr(2); a missing attribute is not an error.
    static func removeXattr(_ path: [UInt8], _ name: String) throws(UnionMountError) {
        guard CUnionMount_lremovexattr(cString(path), name) == 0 || errno == ENODATA else {
            throw failure("lremovexattr", "remove the extended attribute \(name) from", path)
        }
    }

    /// readlink(2): the target's bytes.
    static func linkTarget(_ path: [UInt8]) throws(UnionMountError) -> [UInt8] {
        var capacity = 256
        while true {
            var buffer = [CChar](repeating: 0, count: capacity)
            let count = readlink(cString(path), &buffer, capacity)
            guard count >= 0 else { throw failure("readlink", "read the symbolic link", path) }
            if count < capacity { return buffer[..<count].map { UInt8(bitPattern: $0) } }
            capacity *= 4
        }
    }

    /// lchown(2).
    static func setOwner(_ path: [UInt8], uid: uid_t, gid: gid_t) throws(UnionMountError) {
        guard lchown(cString(path), uid, gid) == 0 else { throw failure("lchown", "change the owner of", path) }
    }

    /// chmod(2) with the permission and special bits of `mode`; never called on a symbolic link.
    static func setMode(_ path: [UInt8], _ mode: mode_t) throws(UnionMountError) {
        guard chmod(cString(path), mode & 0o7777) == 0 else { throw failure("chmod", "change the mode of", path) }
    }

    /// utimensat(2) with `AT_SYMLINK_NOFOLLOW`: access and modification times to the nanosecond.
    static func setTimes(_ path: [UInt8], access: timespec, modification: timespec) throws(UnionMountError) {
        let times = [access, modification]
        guard utimensat(AT_FDCWD, cString(path), times, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw failure("utimensat", "set the times of", path)
        }
    }

    /// The access and modification times of `info` set on `path`.
    static func setTimes(_ path: [UInt8], of info: stat) throws(UnionMountError) {
        try setTimes(path, access: info.st_atim, modification: info.st_mtim)
    }

    /// mkdir(2) with mode 0700 (the caller sets the final mode).
    static func makeDirectory(_ path: [UInt8]) throws(UnionMountError) {
        guard mkdir(cString(path), 0o700) == 0 else { throw failure("mkdir", "create directory", path) }
    }

    /// mknod(2): a device, FIFO or socket node; the caller sets the final mode.
    static func makeNode(_ path: [UInt8], type: mode_t, device: dev_t) throws(UnionMountError) {
        guard mknod(cString(path), type | 0o600, device) == 0 else { throw failure("mknod", "create", path) }
    }

    /// symlink(2).
    static func makeSymlink(_ path: [UInt8], target: [UInt8]) throws(UnionMountError) {
        guard symlink(cString(target), cString(path)) == 0 else { throw failure("symlink", "create", path) }
    }

    /// link(2): `path` becomes another name of `existing`.
    static func makeLink(_ path: [UInt8], to existing: [UInt8]) throws(UnionMountError) {
        guard link(cString(existing), cString(path)) == 0 else { throw failure("link", "create hard link", path) }
    }

    /// rename(2) within one directory tree; `destination` must not exist (checked by the caller).
    static func move(_ source: [UInt8], to destination: [UInt8]) throws(UnionMountError) {
        guard rename(cString(source), cString(destination)) == 0 else { throw failure("rename", "rename", source) }
    }

    /// unlink(2).
    static func remove(_ path: [UInt8]) throws(UnionMountError) {
        guard unlink(cString(path)) == 0 else { throw failure("unlink", "remove", path) }
    }

    /// Removes `path` and, for a directory, everything below it (unlink(2), rmdir(2)); never follows links.
    static func removeTree(_ path: [UInt8]) throws(UnionMountError) {
        let info = try status(path)
        guard info.st_mode & S_IFMT == S_IFDIR else { return try remove(path) }
        for name in try names(in: path) { try removeTree(join(path, name)) }
        guard rmdir(cString(path)) == 0 else { throw failure("rmdir", "remove directory", path) }
    }

    /// Creates an empty regular file (open(2) with `O_CREAT|O_EXCL`); the caller sets the final mode.
    static func makeEmptyFile(_ path: [UInt8]) throws(UnionMountError) {
        let fd = open(cString(path), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("open", "create", path) }
        close(fd)
    }

    /// Copies the bytes of the regular file `source` into the new file `destination` (open(2), read(2),
    /// write(2)); the source is opened with `openNoAccessTime` where allowed so that reading does not touch it.
    static func copyContents(_ source: [UInt8], to destination: [UInt8]) throws(UnionMountError) {
        let flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC
        var input = open(cString(source), flags | openNoAccessTime)
        if input < 0 && errno == EPERM { input = open(cString(source), flags) }
        guard input >= 0 else { throw failure("open", "read", source) }
        defer { close(input) }
        let output = open(cString(destination), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw failure("open", "create", destination) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw failure("read", "read", source) }
            if count == 0 { return }
            var written = 0
            while written < count {
                let result = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, count - written) }
                if result < 0 && errno == EINTR { continue }
                guard result > 0 else { throw failure("write", "write", destination) }
                written += result
            }
        }
    }

    /// Calls `body` with successive chunks of the regular file at `path` (open(2), read(2)).
    static func readChunks(_ path: [UInt8], _ body: (UnsafeRawBufferPointer) -> Void) throws(UnionMountError) {
        let flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC
        var input = open(cString(path), flags | openNoAccessTime)
        if input < 0 && errno == EPERM { input = open(cString(path), flags) }
        guard input >= 0 else { throw failure("open", "read", path) }
        defer { close(input) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw failure("read", "read", path) }
            if count == 0 { return }
            buffer.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        }
    }
}

/// The identity of an inode, to find the other names of a hard-linked file.
struct InodeKey: Hashable {
    var device: UInt64
    var inode: UInt64

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}
