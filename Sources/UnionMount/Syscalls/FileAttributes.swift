import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension FileSystem {
    /// Sets the owner and group of `path` itself (a symbolic link is changed, not followed), relative to
    /// `directory` when given.
    ///
    /// - Throws: the `Errno` of lchown(2).
    ///
    /// The corresponding system call is `fchownat(2)` with `AT_SYMLINK_NOFOLLOW` (lchown(2)).
    package static func setOwner(
        _ path: FilePath, uid: UInt32, gid: UInt32, relativeTo directory: FileDescriptor? = nil
    ) throws(Errno) {
        try injectFault("lchown", path)
        let at = directoryDescriptor(directory)
        _ = try valueOrErrno(path) { fchownat(at, $0, uid, gid, AT_SYMLINK_NOFOLLOW) }
    }

    /// Sets the owner and group of an open file.
    ///
    /// - Throws: the `Errno` of fchown(2).
    ///
    /// The corresponding system call is `fchown(2)`.
    package static func setOwner(of fd: FileDescriptor, uid: UInt32, gid: UInt32) throws(Errno) {
        try injectFault("fchown", nil)
        _ = try valueOrErrno { fchown(fd.rawValue, uid, gid) }
    }

    /// Sets the permission and special bits (the low 12 bits of `permissions`) of an open file. Call it after
    /// ``setOwner(of:uid:gid:)``: a change of owner clears setuid and setgid.
    ///
    /// - Throws: the `Errno` of fchmod(2).
    ///
    /// The corresponding system call is `fchmod(2)`.
    package static func setPermissions(of fd: FileDescriptor, _ permissions: UInt32) throws(Errno) {
        try injectFault("fchmod", nil)
        _ = try valueOrErrno { fchmod(fd.rawValue, mode_t(permissions & 0o7777)) }
    }

    /// Sets the access and modification times of an open file, to the nanosecond.
    ///
    /// - Throws: the `Errno` of futimens(3) (utimensat(2) on the descriptor).
    ///
    /// The corresponding system call is `utimensat(2)` with a NULL path (futimens(3)).
    package static func setTimes(of fd: FileDescriptor, access: FileTime, modification: FileTime) throws(Errno) {
        try injectFault("futimens", nil)
        let times = [access.cValue, modification.cValue]
        _ = try valueOrErrno { futimens(fd.rawValue, times) }
    }

    /// Sets the permission and special bits of `path` (the low 12 bits of `permissions`), relative to
    /// `directory` when given; follows a symbolic link, so callers never pass one.
    ///
    /// - Throws: the `Errno` of chmod(2).
    ///
    /// The corresponding system call is `fchmodat(2)` (chmod(2)).
    package static func setPermissions(
        _ path: FilePath, _ permissions: UInt32, relativeTo directory: FileDescriptor? = nil
    ) throws(Errno) {
        try injectFault("chmod", path)
        let at = directoryDescriptor(directory)
        _ = try valueOrErrno(path) { fchmodat(at, $0, mode_t(permissions & 0o7777), 0) }
    }

    /// Sets the access and modification times of `path` itself, to the nanosecond, relative to `directory` when
    /// given.
    ///
    /// - Throws: the `Errno` of utimensat(2).
    ///
    /// The corresponding system call is `utimensat(2)` with `AT_SYMLINK_NOFOLLOW`.
    package static func setTimes(
        _ path: FilePath, access: FileTime, modification: FileTime, relativeTo directory: FileDescriptor? = nil
    ) throws(Errno) {
        try injectFault("utimensat", path)
        let times = [access.cValue, modification.cValue]
        let at = directoryDescriptor(directory)
        _ = try valueOrErrno(path) { utimensat(at, $0, times, AT_SYMLINK_NOFOLLOW) }
    }
}

extension FileSystem {
    /// The names of the extended attributes of `path` itself, in the order the file system gives them; empty
    /// when the file system has none (`ENOTSUP`).
    ///
    /// - Throws: the `Errno` of llistxattr(2).
    ///
    /// The corresponding system call is `llistxattr(2)`.
    package static func extendedAttributeNames(_ path: FilePath) throws(Errno) -> [String] {
        try injectFault("llistxattr", path)
        while true {
            let size: Int
            do {
                size = try valueOrErrno(path) { CUnionMount_llistxattr($0, nil, 0) }
            } catch  where error == .notSupported {
                return []
            }
            if size == 0 { return [] }
            var buffer = [CChar](repeating: 0, count: size)
            let count: Int
            do {
                count = try valueOrErrno(path) { CUnionMount_llistxattr($0, &buffer, buffer.count) }
            } catch  where error == .outOfRange {
                continue  // the list grew meanwhile
            }
            return buffer[..<count].split(separator: 0).map {
                String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
    }

    /// The value of the extended attribute `name` of `path` itself; nil when it has none (`ENODATA`) or the
    /// file system has no extended attributes (`ENOTSUP`).
    ///
    /// - Parameter sizeHint: the buffer first tried; a larger value is asked for its size and read again.
    /// - Throws: the `Errno` of lgetxattr(2).
    ///
    /// The corresponding system call is `lgetxattr(2)`.
    package static func extendedAttribute(
        _ path: FilePath, _ name: String, sizeHint: Int = 256
    ) throws(Errno) -> [UInt8]? {
        try injectFault("lgetxattr", path)
        return try readExtendedAttribute(path, name, capacity: sizeHint, CUnionMount_lgetxattr)
    }

    /// The value of `name` read by `get` (lgetxattr(2) or getxattr(2)) into a buffer of `capacity` bytes, then of
    /// the size the call asks for when that was too small; nil for `ENODATA` and `ENOTSUP`.
    static func readExtendedAttribute(
        _ path: FilePath, _ name: String, capacity: Int,
        _ get: (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int
    ) throws(Errno) -> [UInt8]? {
        var capacity = capacity
        while true {
            var value = [UInt8](repeating: 0, count: capacity)
            let count = value.withUnsafeMutableBytes { buffer in
                withPathCString(path) { get($0, name, buffer.baseAddress, buffer.count) }
            }
            if count >= 0 {
                value.removeSubrange(count...)
                return value
            }
            var error = Errno(rawValue: errno)
            if error == .outOfRange {
                // Too small: ask for the size (0 when it vanished meanwhile, which the next read reports).
                let size = withPathCString(path) { get($0, name, nil, 0) }
                if size >= 0 {
                    capacity = max(1, size)
                    continue
                }
                error = Errno(rawValue: errno)
            }
            if error == .noData || error == .notSupported { return nil }
            throw error
        }
    }

    /// Sets the extended attribute `name` of `path` itself to `value` (created or replaced).
    ///
    /// - Throws: the `Errno` of lsetxattr(2).
    ///
    /// The corresponding system call is `lsetxattr(2)`.
    package static func setExtendedAttribute(_ path: FilePath, _ name: String, _ value: [UInt8]) throws(Errno) {
        try injectFault("lsetxattr", path)
        let result = value.withUnsafeBytes { bytes in
            withPathCString(path) { CUnionMount_lsetxattr($0, name, bytes.baseAddress, bytes.count, 0) }
        }
        guard result == 0 else { throw Errno(rawValue: errno) }
    }

    /// Sets the extended attribute `name` of an open file (not an `O_PATH` descriptor) to `value`.
    ///
    /// - Throws: the `Errno` of fsetxattr(2).
    ///
    /// The corresponding system call is `fsetxattr(2)`.
    package static func setExtendedAttribute(of fd: FileDescriptor, _ name: String, _ value: [UInt8]) throws(Errno) {
        try injectFault("fsetxattr", nil)
        let result = value.withUnsafeBytes { bytes in
            CUnionMount_fsetxattr(fd.rawValue, name, bytes.baseAddress, bytes.count, 0)
        }
        guard result == 0 else { throw Errno(rawValue: errno) }
    }

    /// Sets the extended attribute `name` of the file an `O_PATH` descriptor names (a symbolic link, a device
    /// node or a FIFO, which cannot be opened for fsetxattr(2) without following or opening the device), through
    /// its `/proc/self/fd/<fd>` magic link: setxattr(2) jumps to the inode the descriptor holds and follows
    /// nothing further. Needs `/proc`.
    ///
    /// - Throws: the `Errno` of setxattr(2).
    ///
    /// The corresponding system call is `setxattr(2)` on `/proc/self/fd/<fd>`.
    package static func setExtendedAttribute(
        ofPathDescriptor fd: FileDescriptor, _ name: String, _ value: [UInt8]
    ) throws(Errno) {
        let path = FilePath("/proc/self/fd/\(fd.rawValue)")
        try injectFault("setxattr", path)
        let result = value.withUnsafeBytes { bytes in
            withPathCString(path) { CUnionMount_setxattr($0, name, bytes.baseAddress, bytes.count, 0) }
        }
        guard result == 0 else { throw Errno(rawValue: errno) }
    }

    /// Removes the extended attribute `name` of `path` itself.
    ///
    /// - Throws: the `Errno` of lremovexattr(2) (`ENODATA` when it has none).
    ///
    /// The corresponding system call is `lremovexattr(2)`.
    package static func removeExtendedAttribute(_ path: FilePath, _ name: String) throws(Errno) {
        try injectFault("lremovexattr", path)
        _ = try valueOrErrno(path) { CUnionMount_lremovexattr($0, name) }
    }
}
