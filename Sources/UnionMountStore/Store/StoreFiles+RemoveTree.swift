import SystemPackage
import UnionMount

extension StoreFiles {
    /// Removes the tree at `path` (absent is fine), depth first, through directory file descriptors
    /// (openat(2) with `O_NOFOLLOW`, unlinkat(2)), so a symlink is removed, never followed.
    ///
    /// It never enters another mount: a directory that is the root of a mount (statx(2) mount id, or another
    /// device) stops the removal with `UnionMountError.Code.busy` naming it, and whatever was already removed
    /// stays removed. This is what keeps data that is mounted on, or mounted from, out of reach.
    package static func removeTree(_ path: FilePath) throws(UnionMountError) {
        let top: FileStatus
        do {
            top = try FileSystem.status(path)
        } catch {
            if error == .noSuchFileOrDirectory { return }
            throw UnionMountError.systemCall(
                "lstat", error, message: "cannot remove \(path.readable)", input: path.readable)
        }
        if top.type != .directory {
            do {
                try FileSystem.unlink(path)
            } catch  where error != .noSuchFileOrDirectory {
                throw UnionMountError.systemCall(
                    "unlink", error, message: "cannot remove \(path.readable)", input: path.readable)
            } catch {}
            return
        }
        if MountTable.isMountPoint(path) { throw mounted(path) }
        let mountID = mountIdentifier(path)
        let fd: FileDescriptor
        do {
            fd = try FileSystem.open(path, .readOnly, options: [.directory, .noFollow])
        } catch {
            if error == .noSuchFileOrDirectory { return }
            throw UnionMountError.systemCall(
                "open", error, message: "cannot remove \(path.readable)", input: path.readable)
        }
        try removeContents(of: fd, path: path, device: top.device, mountID: mountID)
        do {
            try FileSystem.removeDirectory(path)
        } catch  where error != .noSuchFileOrDirectory {
            throw UnionMountError.systemCall(
                "rmdir", error, message: "cannot remove \(path.readable)", input: path.readable)
        } catch {}
    }

    /// Empties the directory open as `fd` (which this closes).
    private static func removeContents(
        of fd: FileDescriptor, path: FilePath, device: UInt64, mountID: UInt64?
    ) throws(UnionMountError) {
        let stream: DirectoryStream
        do {
            stream = try DirectoryStream(taking: fd)
        } catch {
            throw UnionMountError.systemCall("fdopendir", error, message: "cannot read \(path.readable)")
        }
        let names: [[UInt8]]
        do {
            names = try stream.names()
        } catch {
            throw UnionMountError.systemCall("readdir", error, message: "cannot read \(path.readable)")
        }
        let directory = stream.descriptor
        for name in names {
            let child = path.appending(name: name)
            let relative = FilePath(bytes: name)
            let info: FileStatus
            do {
                info = try FileSystem.status(relative, relativeTo: directory)
            } catch {
                if error == .noSuchFileOrDirectory { continue }
                throw UnionMountError.systemCall("fstatat", error, message: "cannot remove \(child.readable)")
            }
            if info.type == .directory {
                if info.device != device || MountTable.isMountPoint(child)
                    || (mountID != nil && mountIdentifier(child) != mountID)
                {
                    throw mounted(child)
                }
                let childFD: FileDescriptor
                do {
                    childFD = try FileSystem.open(
                        relative, .readOnly, options: [.directory, .noFollow], relativeTo: directory)
                } catch {
                    if error == .noSuchFileOrDirectory { continue }  // removed meanwhile by another remover
                    throw UnionMountError.systemCall("openat", error, message: "cannot remove \(child.readable)")
                }
                try removeContents(of: childFD, path: child, device: device, mountID: mountID)
                StoreFaultInjection.point("remove-tree.directory-emptied")
            }
            do {
                try FileSystem.unlink(relative, isDirectory: info.type == .directory, relativeTo: directory)
            } catch  where error != .noSuchFileOrDirectory {
                throw UnionMountError.systemCall("unlinkat", error, message: "cannot remove \(child.readable)")
            } catch {}
        }
    }

    /// The statx(2) mount id of `path`, not following a symlink.
    static func mountIdentifier(_ path: FilePath) -> UInt64? {
        (try? FileSystem.mountIdentity(path, followingLinks: false))?.mountID
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
