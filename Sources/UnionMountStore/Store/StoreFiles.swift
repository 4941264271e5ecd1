import CUnionMountShim
import SystemPackage
import UnionMount

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The file operations the layer store is built from: small records written atomically, directories made and
/// synced, trees removed without ever crossing into a mount.
enum StoreFiles {
    /// The largest record file read (a container's record lists up to 500 layer ids); anything bigger is damage.
    static let maximumRecordSize = 128 * 1024

    /// The contents of a small file, nil when it does not exist (open(2), read(2)).
    static func read(_ path: FilePath) throws(UnionMountError) -> [UInt8]? {
        let fd = withPathCString(path) { open($0, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) }
        guard fd >= 0 else {
            let error = system_errno()
            if error == .noSuchFileOrDirectory { return nil }
            throw UnionMountError.systemCall(
                "open", error, message: "cannot read \(path.readable)", input: path.readable)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw UnionMountError.systemCall(
                    "read", system_errno(), message: "cannot read \(path.readable)", input: path.readable)
            }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
            guard bytes.count <= maximumRecordSize else {
                throw UnionMountError.malformed(
                    "\(path.readable) is larger than \(maximumRecordSize) bytes; it is not a store record",
                    input: path.readable)
            }
        }
    }

    /// Replaces `path` with `bytes` so that a reader, or a killed writer, sees the old contents or the new,
    /// never a mix: write(2) to a temporary file beside it and rename(2) it over `path`. When `durable`, the file
    /// is fsync(2)'ed before the rename and the directory after it, so a power cut keeps the new contents too.
    static func writeAtomically(_ bytes: [UInt8], to path: FilePath, durable: Bool = true) throws(UnionMountError) {
        let temporary = FilePath(bytes: path.bytes + Array(".tmp".utf8))
        let fd = withPathCString(temporary) { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644) }
        guard fd >= 0 else {
            throw UnionMountError.systemCall(
                "open", system_errno(), message: "cannot write \(temporary.readable)", input: path.readable)
        }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                let error = system_errno()
                close(fd)
                throw UnionMountError.systemCall(
                    "write", error, message: "cannot write \(temporary.readable)", input: path.readable)
            }
            written += count
        }
        let synced = durable ? fsync(fd) : 0
        let syncError = system_errno()
        close(fd)
        guard synced == 0 else {
            throw UnionMountError.systemCall(
                "fsync", syncError, message: "cannot sync \(temporary.readable)", input: path.readable)
        }
        try rename(temporary, to: path)
        if durable { try syncDirectory(path.removingLastComponent()) }
    }

    /// rename(2); with `replacing: false`, renameat2(2) `RENAME_NOREPLACE`, so an existing `target` is EEXIST.
    static func rename(_ source: FilePath, to target: FilePath, replacing: Bool = true) throws(UnionMountError) {
        let result = withPathCString(source) { from in
            withPathCString(target) { to in
                replacing
                    ? Glibc.rename(from, to)
                    : CUnionMount_renameat2(AT_FDCWD, from, AT_FDCWD, to, CUnionMount_RENAME_NOREPLACE)
            }
        }
        guard result == 0 else {
            throw UnionMountError.systemCall(
                replacing ? "rename" : "renameat2", system_errno(),
                message: "cannot rename \(source.readable) to \(target.readable)", input: target.readable)
        }
    }

    /// fsync(2) of a directory, so the names created, renamed or removed in it survive a power cut.
    static func syncDirectory(_ path: FilePath) throws(UnionMountError) {
        let fd = withPathCString(path) { open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else {
            throw UnionMountError.systemCall(
                "open", system_errno(), message: "cannot open directory \(path.readable)", input: path.readable)
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw UnionMountError.systemCall(
                "fsync", system_errno(), message: "cannot sync directory \(path.readable)", input: path.readable)
        }
    }

    /// mkdir(2); an existing directory is fine when `existing` says so.
    static func makeDirectory(_ path: FilePath, mode: mode_t = 0o755, existing: Bool = true) throws(UnionMountError) {
        guard withPathCString(path, { mkdir($0, mode) }) != 0 else { return }
        let error = system_errno()
        if error == .fileExists, existing, isDirectory(path) { return }
        throw UnionMountError.systemCall(
            "mkdir", error, message: "cannot create directory \(path.readable)", input: path.readable)
    }

    /// Whether `path` is a directory (lstat(2): a symlink to one is not).
    static func isDirectory(_ path: FilePath) -> Bool {
        var info = stat()
        return withPathCString(path) { lstat($0, &info) } == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// Whether anything exists at `path` (lstat(2)).
    static func exists(_ path: FilePath) -> Bool {
        var info = stat()
        return withPathCString(path) { lstat($0, &info) } == 0
    }

    /// The names in a directory, `.` and `..` excluded, sorted; empty when it does not exist
    /// (opendir(3), readdir(3)).
    static func names(in directory: FilePath) throws(UnionMountError) -> [[UInt8]] {
        guard let handle = withPathCString(directory, { opendir($0) }) else {
            let error = system_errno()
            if error == .noSuchFileOrDirectory { return [] }
            throw UnionMountError.systemCall(
                "opendir", error, message: "cannot read directory \(directory.readable)", input: directory.readable)
        }
        defer { closedir(handle) }
        return entries(of: handle).sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// The names readdir(3) gives for an open directory, `.` and `..` excluded.
    private static func entries(of handle: OpaquePointer) -> [[UInt8]] {
        var names: [[UInt8]] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name == Array(".".utf8) || name == Array("..".utf8) { continue }
            names.append(name)
        }
        return names
    }

    /// Removes the tree at `path` (absent is fine), depth first, through directory file descriptors
    /// (openat(2) with `O_NOFOLLOW`, unlinkat(2)), so a symlink is removed, never followed.
    ///
    /// It never enters another mount: a directory that is the root of a mount (statx(2) mount id, or another
    /// device) stops the removal with `UnionMountError.Code.busy` naming it, and whatever was already removed
    /// stays removed. This is what keeps data that is mounted on, or mounted from, out of reach.
    static func removeTree(_ path: FilePath) throws(UnionMountError) {
        var top = stat()
        guard withPathCString(path, { lstat($0, &top) }) == 0 else {
            let error = system_errno()
            if error == .noSuchFileOrDirectory { return }
            throw UnionMountError.systemCall(
                "lstat", error, message: "cannot remove \(path.readable)", input: path.readable)
        }
        if top.st_mode & S_IFMT != S_IFDIR {
            guard withPathCString(path, { unlink($0) }) == 0 || errno == ENOENT else {
                throw UnionMountError.systemCall(
                    "unlink", system_errno(), message: "cannot remove \(path.readable)", input: path.readable)
            }
            return
        }
        if MountTable.isMountPoint(path) { throw mounted(path) }
        let mountID = mountIdentifier(path)
        let fd = withPathCString(path) { open($0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else {
            if errno == ENOENT { return }
            throw UnionMountError.systemCall(
                "open", system_errno(), message: "cannot remove \(path.readable)", input: path.readable)
        }
        try removeContents(of: fd, path: path.bytes, device: top.st_dev, mountID: mountID)
        guard withPathCString(path, { rmdir($0) }) == 0 || errno == ENOENT else {
            throw UnionMountError.systemCall(
                "rmdir", system_errno(), message: "cannot remove \(path.readable)", input: path.readable)
        }
    }

    /// Empties the directory open as `fd` (which this closes).
    private static func removeContents(
        of fd: CInt, path: [UInt8], device: dev_t, mountID: UInt64?
    ) throws(UnionMountError) {
        guard let handle = fdopendir(fd) else {
            close(fd)
            throw UnionMountError.systemCall("fdopendir", system_errno(), message: "cannot read \(path.readable)")
        }
        defer { closedir(handle) }
        for name in entries(of: handle) {
            let child = path + [UInt8(ascii: "/")] + name
            let cName = name.map { CChar(bitPattern: $0) } + [0]
            var info = stat()
            guard fstatat(fd, cName, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                if errno == ENOENT { continue }
                throw UnionMountError.systemCall("fstatat", system_errno(), message: "cannot remove \(child.readable)")
            }
            if info.st_mode & S_IFMT == S_IFDIR {
                let childPath = FilePath(bytes: child)
                if info.st_dev != device || MountTable.isMountPoint(childPath)
                    || (mountID != nil && mountIdentifier(childPath) != mountID)
                {
                    throw mounted(childPath)
                }
                let childFD = openat(fd, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard childFD >= 0 else {
                    if errno == ENOENT { continue }  // removed meanwhile by another remover
                    throw UnionMountError.systemCall(
                        "openat", system_errno(), message: "cannot remove \(child.readable)")
                }
                try removeContents(of: childFD, path: child, device: device, mountID: mountID)
                StoreFaultInjection.point("remove-tree.directory-emptied")
                guard unlinkat(fd, cName, AT_REMOVEDIR) == 0 || errno == ENOENT else {
                    throw UnionMountError.systemCall(
                        "unlinkat", system_errno(), message: "cannot remove \(child.readable)")
                }
            } else {
                guard unlinkat(fd, cName, 0) == 0 || errno == ENOENT else {
                    throw UnionMountError.systemCall(
                        "unlinkat", system_errno(), message: "cannot remove \(child.readable)")
                }
            }
        }
    }

    /// The statx(2) mount id of `path`, not following a symlink.
    static func mountIdentifier(_ path: FilePath) -> UInt64? {
        var info = CUnionMount_statx_result()
        let noFollow: CInt = 0x100  // AT_SYMLINK_NOFOLLOW
        guard withPathCString(path, { CUnionMount_statx_mount(AT_FDCWD, $0, noFollow, 0, &info) }) == 0 else {
            return nil
        }
        return info.mount_id
    }

    private static func mounted(_ path: FilePath) -> UnionMountError {
        UnionMountError(
            code: .busy, message: "\(path.readable) is a mount point; refusing to remove anything below it",
            input: path.readable)
    }
}

extension FilePath {
    /// The path with one more component given as raw bytes (a name read from a directory).
    func appending(name: [UInt8]) -> FilePath {
        FilePath(bytes: bytes + (bytes.last == UInt8(ascii: "/") ? [] : [UInt8(ascii: "/")]) + name)
    }
}
