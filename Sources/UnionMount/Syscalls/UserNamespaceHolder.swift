import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A user namespace made for an id mapping, from outside it: a helper child process is cloned into a new user
/// namespace (clone(2) `CLONE_NEWUSER`, so the calling process never calls unshare(2)), its
/// `/proc/<pid>/uid_map` and `gid_map` are written from here, its `/proc/<pid>/ns/user` is opened, and the
/// child is released (it waits on a pipe) and reaped. The namespace lives as long as the descriptor (and what
/// was mapped through it).
package enum UserNamespaceHolder {
    /// Why the namespace could not be made: the call, its errno and the file it was about.
    package struct Failure: Error, Sendable {
        package let call: String
        package let errno: Errno
        package let file: String?
    }

    /// Creates a user namespace whose `uid_map` and `gid_map` are `uidMap` and `gidMap` (the files' text:
    /// `inside outside count` lines) and returns a descriptor of it (`O_RDONLY | O_CLOEXEC`).
    ///
    /// The system calls are pipe2(2), clone(2), open(2)+write(2)+close(2) of each map, open(2) of
    /// `ns/user`, close(2) of the pipe and waitpid(2).
    package static func create(uidMap: [UInt8], gidMap: [UInt8]) throws(Failure) -> FileDescriptor {
        let ends: (read: FileDescriptor, write: FileDescriptor)
        do {
            ends = try FileSystem.makePipe()
        } catch {
            throw Failure(call: "pipe2", errno: error, file: nil)
        }
        var writeEnd = ends.write.rawValue
        defer {
            if writeEnd >= 0 { system_close(writeEnd) }
        }
        let pid = CUnionMount_clone_user_namespace_holder(ends.read.rawValue, writeEnd)
        let cloneError = system_errno()
        system_close(ends.read.rawValue)
        guard pid > 0 else { throw Failure(call: "clone", errno: cloneError, file: nil) }
        defer {
            // Releasing the child: end of file on its pipe; then reap it.
            system_close(writeEnd)
            writeEnd = -1
            var status: CInt = 0
            while ChildProcess.wait(pid, status: &status, noHang: false) < 0 && system_errno() == .interrupted {}
        }
        let directory = "/proc/\(pid)"
        for (name, map) in [("uid_map", uidMap), ("gid_map", gidMap)] {
            let file = FilePath("\(directory)/\(name)")
            do throws(Errno) {
                let fd = try FileSystem.open(file, .writeOnly)
                defer { FileSystem.close(fd) }
                // The kernel takes a map whole, in the first write(2) (a map is far below a page).
                try FileSystem.writeAll(fd, map)
            } catch {
                throw Failure(call: "write", errno: error, file: file.string)
            }
        }
        let namespace = FilePath("\(directory)/ns/user")
        do {
            return try FileSystem.open(namespace, .readOnly)
        } catch {
            throw Failure(call: "open", errno: error, file: namespace.string)
        }
    }
}
