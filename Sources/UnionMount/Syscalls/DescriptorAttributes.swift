import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension FileSystem {
    /// The names of the extended attributes of the file a descriptor holds (any descriptor, `O_PATH` ones
    /// included: a symbolic link, a device node, a FIFO), read through its `/proc/self/fd/<fd>` magic link, which
    /// jumps to the inode the descriptor holds and follows nothing further; empty when the file system has none
    /// (`ENOTSUP`). Needs `/proc`.
    ///
    /// - Throws: the `Errno` of listxattr(2).
    ///
    /// The corresponding system call is `listxattr(2)` on `/proc/self/fd/<fd>`.
    package static func extendedAttributeNames(ofDescriptor fd: FileDescriptor) throws(Errno) -> [String] {
        let path = FilePath("/proc/self/fd/\(fd.rawValue)")
        try injectFault("listxattr", path)
        while true {
            let size: Int
            do {
                size = try valueOrErrno(path) { CUnionMount_listxattr($0, nil, 0) }
            } catch  where error == .notSupported {
                return []
            }
            if size == 0 { return [] }
            var buffer = [CChar](repeating: 0, count: size)
            let count: Int
            do {
                count = try valueOrErrno(path) { CUnionMount_listxattr($0, &buffer, buffer.count) }
            } catch  where error == .outOfRange {
                continue  // the list grew meanwhile
            }
            return buffer[..<count].split(separator: 0).map {
                String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
    }

    /// The value of the extended attribute `name` of the file a descriptor holds (as
    /// ``extendedAttributeNames(ofDescriptor:)``); nil when it has none (`ENODATA`) or the file system has no
    /// extended attributes (`ENOTSUP`).
    ///
    /// - Throws: the `Errno` of getxattr(2).
    ///
    /// The corresponding system call is `getxattr(2)` on `/proc/self/fd/<fd>`.
    package static func extendedAttribute(ofDescriptor fd: FileDescriptor, _ name: String) throws(Errno) -> [UInt8]? {
        let path = FilePath("/proc/self/fd/\(fd.rawValue)")
        try injectFault("getxattr", path)
        return try readExtendedAttribute(path, name, capacity: 256, CUnionMount_getxattr)
    }

    /// The target of the symbolic link `name` in `directory`, as bytes, never following it.
    ///
    /// - Throws: the `Errno` of readlinkat(2).
    ///
    /// The corresponding system call is `readlinkat(2)`.
    package static func linkTarget(_ name: FilePath, relativeTo directory: FileDescriptor) throws(Errno) -> [UInt8] {
        try injectFault("readlink", name)
        var capacity = 256
        while true {
            var buffer = [UInt8](repeating: 0, count: capacity)
            let count = buffer.withUnsafeMutableBytes { buffer in
                withPathCString(name) {
                    readlinkat(
                        directory.rawValue, $0, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count)
                }
            }
            guard count >= 0 else { throw Errno(rawValue: errno) }
            if count < capacity { return Array(buffer[..<count]) }
            capacity *= 4
        }
    }
}
