import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension FileSystem {
    /// How openat2(2) may resolve a path (its `RESOLVE_*` flags).
    package struct Resolution: OptionSet, Sendable, Hashable {
        /// The raw `RESOLVE_*` bits.
        package var rawValue: UInt64
        /// Creates the set from `RESOLVE_*` bits.
        package init(rawValue: UInt64) { self.rawValue = rawValue }

        /// `RESOLVE_IN_ROOT`: the directory is the root of the lookup: `..` at it stays there, and absolute paths
        /// and absolute symbolic link targets start from it.
        package static let inRoot = Resolution(rawValue: CUnionMount_RESOLVE_IN_ROOT)
        /// `RESOLVE_BENEATH`: the lookup fails (`EXDEV`) rather than leave the directory.
        package static let beneath = Resolution(rawValue: CUnionMount_RESOLVE_BENEATH)
        /// `RESOLVE_NO_MAGICLINKS`: no `/proc` magic link (`/proc/self/fd/N`, `/proc/PID/root`).
        package static let noMagicLinks = Resolution(rawValue: CUnionMount_RESOLVE_NO_MAGICLINKS)
        /// `RESOLVE_NO_SYMLINKS`: no symbolic link in any component (`ELOOP`).
        package static let noSymbolicLinks = Resolution(rawValue: CUnionMount_RESOLVE_NO_SYMLINKS)
        /// `RESOLVE_NO_XDEV`: no mount point crossed (`EXDEV`), bind mounts included.
        package static let noCrossDevice = Resolution(rawValue: CUnionMount_RESOLVE_NO_XDEV)
    }

    /// Opens `path` relative to `directory` with openat2(2), resolved as `resolution` says: the kernel, not
    /// this process, keeps every component (symbolic links included) inside `directory`.
    ///
    /// `O_CLOEXEC` is always added. `EINTR` is retried; `EAGAIN` (a rename raced the lookup, with
    /// `RESOLVE_IN_ROOT`/`RESOLVE_BENEATH`) is retried too.
    ///
    /// - Parameters:
    ///   - path: a path relative to `directory` (an absolute one starts at `directory` with ``Resolution/inRoot``).
    ///   - mode: read, write or both (`.readOnly` with ``FileDescriptor/OpenOptions/pathOnly``).
    ///   - options: `O_*` flags.
    ///   - permissions: the mode of a file `O_CREAT` creates; must be 0 without `O_CREAT` (openat2 checks it).
    ///   - directory: the root of the lookup.
    ///   - resolution: the `RESOLVE_*` flags.
    /// - Returns: the new descriptor; the caller closes it with ``close(_:)``.
    /// - Throws: the `Errno` of openat2(2): `ELOOP` for a symbolic link under ``Resolution/noSymbolicLinks``,
    ///   `EXDEV` for a mount crossing, `ENOSYS` before Linux 5.6.
    ///
    /// The corresponding system call is `openat2(2)`.
    package static func openConfined(
        _ path: FilePath, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions = [],
        permissions: UInt32 = 0, in directory: FileDescriptor, resolution: Resolution
    ) throws(Errno) -> FileDescriptor {
        try injectFault("openat2", path)
        let flags = UInt64(UInt32(bitPattern: mode.rawValue | options.rawValue | O_CLOEXEC))
        while true {
            do {
                let fd = try valueOrErrno(path) {
                    CUnionMount_openat2(directory.rawValue, $0, flags, UInt64(permissions), resolution.rawValue)
                }
                return FileDescriptor(rawValue: fd)
            } catch  where error == .resourceTemporarilyUnavailable {
                continue
            }
        }
    }
}
