import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What lstat(2) or stat(2) says about a file, as Swift values.
package struct FileStatus: Sendable, Hashable {
    /// The file type (`st_mode & S_IFMT`).
    package var type: FileKind
    /// The permission and special bits (`st_mode & 07777`).
    package var permissions: UInt32
    /// The owner (`st_uid`).
    package var uid: UInt32
    /// The group (`st_gid`).
    package var gid: UInt32
    /// The size in bytes (`st_size`).
    package var size: Int64
    /// The number of names of the inode (`st_nlink`).
    package var linkCount: UInt64
    /// The device the file is on (`st_dev`).
    package var device: UInt64
    /// The inode number (`st_ino`).
    package var inode: UInt64
    /// For a device node, the device it stands for (`st_rdev`).
    package var specialDevice: UInt64
    /// The last access (`st_atim`).
    package var accessTime: FileTime
    /// The last modification of the contents (`st_mtim`).
    package var modificationTime: FileTime

    init(_ info: stat) {
        type = FileKind(mode: info.st_mode)
        permissions = UInt32(info.st_mode & 0o7777)
        uid = info.st_uid
        gid = info.st_gid
        size = Int64(info.st_size)
        linkCount = UInt64(info.st_nlink)
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        specialDevice = UInt64(info.st_rdev)
        accessTime = FileTime(info.st_atim)
        modificationTime = FileTime(info.st_mtim)
    }

    /// `st_mode`: the type bits and the permission bits.
    package var mode: UInt32 { type.modeBits | permissions }

    /// Whether the file is a whiteout of overlay's form: a character device 0/0.
    package var isWhiteoutDevice: Bool { type == .characterDevice && specialDevice == 0 }
}

/// A file type (named apart from swift-system's `FileType`), as the `S_IFMT` bits of `st_mode` give it.
package enum FileKind: Sendable, Hashable {
    /// `S_IFREG`.
    case regular
    /// `S_IFDIR`.
    case directory
    /// `S_IFLNK`.
    case symbolicLink
    /// `S_IFCHR`.
    case characterDevice
    /// `S_IFBLK`.
    case blockDevice
    /// `S_IFIFO`.
    case fifo
    /// `S_IFSOCK`.
    case socket

    init(mode: mode_t) {
        switch mode & S_IFMT {
        case S_IFREG: self = .regular
        case S_IFDIR: self = .directory
        case S_IFLNK: self = .symbolicLink
        case S_IFCHR: self = .characterDevice
        case S_IFBLK: self = .blockDevice
        case S_IFIFO: self = .fifo
        default: self = .socket
        }
    }

    /// The `S_IFMT` bits of the type, as mknod(2) takes them.
    package var modeBits: UInt32 {
        switch self {
        case .regular: UInt32(S_IFREG)
        case .directory: UInt32(S_IFDIR)
        case .symbolicLink: UInt32(S_IFLNK)
        case .characterDevice: UInt32(S_IFCHR)
        case .blockDevice: UInt32(S_IFBLK)
        case .fifo: UInt32(S_IFIFO)
        case .socket: UInt32(S_IFSOCK)
        }
    }
}

/// A file time to the nanosecond (a `timespec`).
package struct FileTime: Sendable, Hashable {
    /// Seconds since the epoch (`tv_sec`).
    package var seconds: Int
    /// Nanoseconds within the second, 0 to 999,999,999 (`tv_nsec`).
    package var nanoseconds: Int

    /// A time of `seconds` and `nanoseconds`.
    package init(seconds: Int, nanoseconds: Int) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    init(_ time: timespec) {
        seconds = Int(time.tv_sec)
        nanoseconds = Int(time.tv_nsec)
    }

    var cValue: timespec { timespec(tv_sec: seconds, tv_nsec: nanoseconds) }
}

/// The mount facts statx(2) gives for one path.
package struct MountIdentity: Sendable, Hashable {
    /// The mount id (`STATX_MNT_ID`, or `STATX_MNT_ID_UNIQUE` when asked for and known).
    package var mountID: UInt64
    /// Whether ``mountID`` is the unique id (`STATX_MNT_ID_UNIQUE` in `stx_mask`).
    package var isUnique: Bool
    /// Whether the kernel gave a mount id at all (`STATX_MNT_ID` or `STATX_MNT_ID_UNIQUE`; Linux 5.8+).
    package var hasMountID: Bool
    /// Whether the path is the root of a mount (`STATX_ATTR_MOUNT_ROOT`, when the kernel says).
    package var isMountRoot: Bool?
    /// The device, as major and minor numbers.
    package var device: (major: UInt32, minor: UInt32) { (deviceMajor, deviceMinor) }
    /// The inode number.
    package var inode: UInt64
    let deviceMajor: UInt32
    let deviceMinor: UInt32
    /// Whether the path (as followed or not) is a directory (`stx_mode`).
    package var isDirectory: Bool = false
}

extension FileStatus {
    /// The major and minor numbers of ``specialDevice``.
    ///
    /// The corresponding library calls are `major(3)` and `minor(3)`.
    package var specialDeviceNumbers: (major: UInt32, minor: UInt32) {
        (CUnionMount_major(specialDevice), CUnionMount_minor(specialDevice))
    }
}

extension FileSystem {
    /// The device number of `major` and `minor`, as mknod(2) takes it.
    ///
    /// The corresponding library call is `makedev(3)`.
    package static func deviceNumber(major: UInt32, minor: UInt32) -> UInt64 {
        CUnionMount_makedev(major, minor)
    }

    /// The status of `path`; a symbolic link itself unless `followingLinks`.
    ///
    /// - Parameters:
    ///   - path: the file (relative to `directory` when given).
    ///   - followingLinks: whether to describe what a symbolic link points to (stat(2)) rather than the link
    ///     (lstat(2)).
    ///   - directory: the directory a relative `path` is looked up in.
    /// - Throws: the `Errno` of fstatat(2).
    ///
    /// The corresponding system call is `fstatat(2)` (what lstat(2) and stat(2) are made of).
    package static func status(
        _ path: FilePath, followingLinks: Bool = false, relativeTo directory: FileDescriptor? = nil
    ) throws(Errno) -> FileStatus {
        try injectFault(followingLinks ? "stat" : "lstat", path)
        var info = stat()
        let at = directoryDescriptor(directory)
        let flags = followingLinks ? 0 : AT_SYMLINK_NOFOLLOW
        _ = try valueOrErrno(path) { fstatat(at, $0, &info, flags) }
        return FileStatus(info)
    }

    /// The status of `path`, or nil when nothing is there (`ENOENT`).
    ///
    /// The corresponding system call is `fstatat(2)`.
    package static func statusIfPresent(
        _ path: FilePath, followingLinks: Bool = false, relativeTo directory: FileDescriptor? = nil
    ) throws(Errno) -> FileStatus? {
        do {
            return try status(path, followingLinks: followingLinks, relativeTo: directory)
        } catch  where error == .noSuchFileOrDirectory {
            return nil
        }
    }

    /// The status of an open file.
    ///
    /// The corresponding system call is `fstat(2)`.
    package static func status(of fd: FileDescriptor) throws(Errno) -> FileStatus {
        try injectFault("fstat", nil)
        var info = stat()
        _ = try valueOrErrno { fstat(fd.rawValue, &info) }
        return FileStatus(info)
    }

    /// Whether anything is at `path` (a dangling symbolic link counts): lstat(2) succeeds.
    ///
    /// The corresponding system call is `fstatat(2)`.
    package static func exists(_ path: FilePath) -> Bool {
        (try? status(path)) != nil
    }

    /// Whether `path` is a directory (a symbolic link to one only when `followingLinks`).
    ///
    /// The corresponding system call is `fstatat(2)`.
    package static func isDirectory(_ path: FilePath, followingLinks: Bool = false) -> Bool {
        (try? status(path, followingLinks: followingLinks))?.type == .directory
    }

    /// The mount facts of `path`: its mount id (the unique one when `unique` and the kernel has it), whether it
    /// is a mount root, its device and inode.
    ///
    /// - Throws: the `Errno` of statx(2).
    ///
    /// The corresponding system call is `statx(2)`.
    package static func mountIdentity(
        _ path: FilePath, followingLinks: Bool = true, unique: Bool = false,
        relativeTo directory: FileDescriptor? = nil
    ) throws(Errno) -> MountIdentity {
        try injectFault("statx", path)
        var info = CUnionMount_statx_result()
        let at = directoryDescriptor(directory)
        let flags = followingLinks ? 0 : AT_SYMLINK_NOFOLLOW
        _ = try valueOrErrno(path) { CUnionMount_statx_mount(at, $0, flags, unique ? 1 : 0, &info) }
        let knowsRoot = info.attributes_mask & CUnionMount_STATX_ATTR_MOUNT_ROOT != 0
        return MountIdentity(
            mountID: info.mount_id, isUnique: UInt64(info.mask) & CUnionMount_STATX_MNT_ID_UNIQUE != 0,
            hasMountID: UInt64(info.mask) & (CUnionMount_STATX_MNT_ID | CUnionMount_STATX_MNT_ID_UNIQUE) != 0,
            isMountRoot: knowsRoot ? info.attributes & CUnionMount_STATX_ATTR_MOUNT_ROOT != 0 : nil,
            inode: info.ino, deviceMajor: info.dev_major, deviceMinor: info.dev_minor,
            isDirectory: mode_t(info.mode) & S_IFMT == S_IFDIR)
    }

    /// Whether the file system holding `path` is mounted read-only (`ST_RDONLY`).
    ///
    /// - Throws: the `Errno` of statvfs(3).
    ///
    /// The corresponding system call is `statfs(2)` (through statvfs(3)).
    package static func isOnReadOnlyFilesystem(_ path: FilePath) throws(Errno) -> Bool {
        try injectFault("statvfs", path)
        var info = statvfs()
        _ = try valueOrErrno(path) { statvfs($0, &info) }
        return info.f_flag & UInt(ST_RDONLY) != 0
    }

    /// What ``isAccessible(_:_:)`` checks.
    package struct Access: OptionSet, Sendable {
        /// The raw `*_OK` bits.
        package var rawValue: CInt
        /// Creates the set from `*_OK` bits.
        package init(rawValue: CInt) { self.rawValue = rawValue }
        /// `R_OK`.
        package static let read = Access(rawValue: R_OK)
        /// `W_OK`.
        package static let write = Access(rawValue: W_OK)
        /// `X_OK`.
        package static let execute = Access(rawValue: X_OK)
    }

    /// Whether the process's real ids may access `path` as `access` says.
    ///
    /// The corresponding system call is `access(2)`.
    package static func isAccessible(_ path: FilePath, _ wanted: Access) -> Bool {
        guard (try? injectFault("access", path)) != nil else { return false }
        return withPathCString(path) { access($0, wanted.rawValue) } == 0
    }
}
