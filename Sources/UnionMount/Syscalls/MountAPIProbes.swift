import CUnionMountShim

/// The new mount API's constants the feature probes pass to ``system_fsopen(_:_:)`` and
/// ``system_fsconfig(_:_:_:_:_:)``, so that code above `Syscalls/` needs no shim import; each is one load, inlined
/// where the executor reads it.
package enum MountAPIConstant {
    /// `FSOPEN_CLOEXEC`.
    package static var fsopenCloseOnExec: UInt32 {
        @inline(__always) get { CUnionMount_FSOPEN_CLOEXEC }
    }
    /// `FSCONFIG_SET_FLAG`.
    package static var setFlag: UInt32 {
        @inline(__always) get { CUnionMount_FSCONFIG_SET_FLAG }
    }
    /// `FSCONFIG_SET_STRING`.
    package static var setString: UInt32 {
        @inline(__always) get { CUnionMount_FSCONFIG_SET_STRING }
    }
    /// `FSCONFIG_SET_FD`.
    package static var setFileDescriptor: UInt32 {
        @inline(__always) get { CUnionMount_FSCONFIG_SET_FD }
    }
}

/// statmount(2) of the mount `mountID` (Linux 6.8+) in mount namespace `namespace` (0: the caller's), asking
/// for `mask`, into `buffer`; 0 or -1 with errno set.
///
/// The corresponding system call is `statmount(2)`.
package func system_statmount(
    _ mountID: UInt64, _ mask: UInt64, _ buffer: UnsafeMutableRawBufferPointer, namespace: UInt64 = 0
) -> CInt {
    CUnionMount_statmount(mountID, namespace, mask, buffer.baseAddress!, buffer.count, 0)
}

/// listmount(2) (Linux 6.8+): up to `buffer.count` unique ids of the mounts below `mountID` in mount namespace
/// `namespace` (0: the caller's), after the id `last` (0: from the first); the count, or -1 with errno set.
///
/// The corresponding system call is `listmount(2)`.
package func system_listmount(
    _ mountID: UInt64, _ buffer: UnsafeMutableBufferPointer<UInt64>, namespace: UInt64 = 0, after last: UInt64 = 0
) -> Int {
    CUnionMount_listmount(mountID, namespace, last, buffer.baseAddress!, buffer.count, 0)
}
