import CUnionMountShim

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// The constants the executor and the unmount code pass to the `system_*` mount wrappers, so that code above
// `Syscalls/` needs neither libc nor the shim. Each is one load; they sit on the mount path.

extension MountAPIConstant {
    /// `FSCONFIG_CMD_CREATE`, the fsconfig(2) command that creates the superblock.
    package static var create: UInt32 {
        @inline(__always) get { CUnionMount_FSCONFIG_CMD_CREATE }
    }

    /// `FSMOUNT_CLOEXEC`, the fsmount(2) flag that closes the mount's descriptor on exec.
    package static var fsmountCloseOnExec: UInt32 {
        @inline(__always) get { CUnionMount_FSMOUNT_CLOEXEC }
    }

    /// `O_PATH | O_DIRECTORY | O_CLOEXEC`: the open(2) flags of a directory's descriptor that fsconfig(2)
    /// `FSCONFIG_SET_FD` or a mount(2) made from that directory is given.
    package static var directoryPathOpenFlags: CInt {
        @inline(__always) get { CUnionMount_O_PATH | O_DIRECTORY | O_CLOEXEC }
    }
}

/// The flags of umount2(2).
package enum UnmountFlag {
    /// `MNT_DETACH`: umount2(2) detaches the mount at once and frees it when it is no longer busy.
    package static var detach: CInt {
        @inline(__always) get { CInt(MNT_DETACH) }
    }

    /// `UMOUNT_NOFOLLOW`: umount2(2) does not follow a symbolic link at the target (8 on Linux; Swift's Glibc
    /// module does not export it).
    package static var noFollow: CInt {
        @inline(__always) get { 8 }
    }
}
