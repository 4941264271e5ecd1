import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension FileSystem {
    /// Why ``readAll(_:options:limit:)`` failed: the call that failed and its `errno`.
    package struct ReadFailure: Error, Equatable, Sendable {
        /// `"open"` or `"read"`.
        package var systemCall: String
        /// What the call set.
        package var errno: Errno

        /// A failure of `systemCall` with `errno`.
        package init(systemCall: String, errno: Errno) {
            self.systemCall = systemCall
            self.errno = errno
        }
    }

    /// The whole file at `path`, or its first `limit` bytes.
    ///
    /// The file is opened read-only with `O_CLOEXEC` and `options` (`.noFollow` for a store record,
    /// `.nonBlocking` so that a FIFO cannot hang a reader of sysfs). A regular file is read into one buffer of
    /// its size plus one, and once that size is read no read(2) is made to hear the end; a proc or sysfs file
    /// (which reports size 0) into a buffer that doubles until read(2) returns 0.
    /// `EINTR` is retried.
    ///
    /// - Throws: which call failed and its `errno`.
    ///
    /// The corresponding system calls are `openat(2)`, `fstat(2)` and `read(2)`.
    package static func readAll(
        _ path: FilePath, options: FileDescriptor.OpenOptions = [], limit: Int = .max
    ) throws(ReadFailure) -> [UInt8] {
        let fd: FileDescriptor
        do {
            fd = try open(path, .readOnly, options: options)
        } catch {
            throw ReadFailure(systemCall: "open", errno: error)
        }
        defer { close(fd) }
        do {
            return try readAll(fd, limit: limit)
        } catch {
            throw ReadFailure(systemCall: "read", errno: error)
        }
    }

    /// Everything left to read from `fd`, or its first `limit` bytes (see ``readAll(_:options:limit:)``).
    ///
    /// - Throws: the `Errno` of read(2).
    ///
    /// The corresponding system calls are `fstat(2)` and `read(2)`.
    package static func readAll(_ fd: FileDescriptor, limit: Int = .max) throws(Errno) -> [UInt8] {
        // Regular files report their size; proc files report 0 and are read in growing chunks.
        var capacity = 64 * 1024
        var regularSize: Int? = nil
        if let info = try? status(of: fd), info.size > 0, info.size < Int64(Int.max / 2) {
            capacity = Int(info.size) + 1
            if info.type == .regular { regularSize = Int(info.size) }
        }
        capacity = min(capacity, limit)
        var result: [UInt8] = []
        var failure: Errno?
        var atEnd = false
        while !atEnd && failure == nil && result.count < limit {
            let previous = result
            result = [UInt8](unsafeUninitializedCapacity: max(capacity, previous.count + 1)) { buffer, count in
                count = 0
                guard let base = buffer.baseAddress else {
                    failure = .noMemory
                    return
                }
                previous.withUnsafeBufferPointer { old in
                    if let oldBase = old.baseAddress, old.count > 0 {
                        base.update(from: oldBase, count: old.count)
                    }
                }
                count = previous.count
                let end = min(buffer.count, limit)
                while count < end {
                    let space = UnsafeMutableRawBufferPointer(start: base + count, count: end - count)
                    let got: Int
                    do throws(Errno) {
                        got = try read(fd, into: space)
                    } catch {
                        failure = error
                        return
                    }
                    if got == 0 {
                        atEnd = true
                        return
                    }
                    count += got
                    // All of the size fstat(2) gave for a regular file is read: no second call to hear 0.
                    if let regularSize, count >= regularSize {
                        atEnd = true
                        return
                    }
                }
            }
            let (doubled, overflow) = capacity.multipliedReportingOverflow(by: 2)
            if overflow {
                failure = .noMemory
            } else {
                capacity = min(doubled, limit)
            }
        }
        if let failure, !atEnd { throw failure }
        return result
    }

    /// Up to `count` bytes read from `fd` by one read(2) (fewer at the end of the file). `EINTR` is retried.
    ///
    /// - Throws: the `Errno` of read(2).
    ///
    /// The corresponding system call is `read(2)`.
    package static func read(_ fd: FileDescriptor, upTo count: Int) throws(Errno) -> [UInt8] {
        var failure: Errno?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(Errno) {
                initialized = try read(fd, into: UnsafeMutableRawBufferPointer(buffer))
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Reads up to `buffer.count` bytes from `fd` into `buffer`; 0 at the end of the file. `EINTR` is retried.
    ///
    /// - Throws: the `Errno` of read(2).
    ///
    /// The corresponding system call is `read(2)`.
    package static func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try injectFault("read", nil)
        return try valueOrErrno { system_read(fd.rawValue, buffer.baseAddress!, buffer.count) }
    }

    /// Reads up to `buffer.count` bytes at `offset` of `fd` into `buffer` (the file position does not move); 0 at
    /// the end of the file. `EINTR` is retried.
    ///
    /// - Throws: the `Errno` of pread(2).
    ///
    /// The corresponding system call is `pread64(2)`.
    package static func read(
        _ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, atOffset offset: Int64
    ) throws(Errno) -> Int {
        try injectFault("pread", nil)
        return try valueOrErrno { pread(fd.rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    /// Writes all of `bytes` to `fd`, in as many write(2) calls as it takes. `EINTR` is retried.
    ///
    /// - Throws: the `Errno` of write(2).
    ///
    /// The corresponding system call is `write(2)`.
    package static func writeAll(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer) throws(Errno) {
        try injectFault("write", nil)
        var written = 0
        while written < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[written...])
            written += try valueOrErrno { writeBytes(fd.rawValue, rest.baseAddress, rest.count) }
        }
    }

    /// Writes all of `bytes` to `fd` (the buffer form).
    ///
    /// - Throws: the `Errno` of write(2).
    ///
    /// The corresponding system call is `write(2)`.
    package static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws(Errno) {
        let failure = bytes.withUnsafeBytes { buffer -> Errno? in
            do throws(Errno) {
                try writeAll(fd, buffer)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }

    /// Writes `bytes` at `offset` of `fd` in one pwrite(2) (the buffer form).
    ///
    /// - Throws: the `Errno` of pwrite(2).
    ///
    /// The corresponding system call is `pwrite64(2)`.
    package static func write(_ fd: FileDescriptor, _ bytes: [UInt8], atOffset offset: Int64) throws(Errno) -> Int {
        let result = bytes.withUnsafeBytes { buffer -> Result<Int, Errno> in
            do throws(Errno) {
                return .success(try write(fd, buffer, atOffset: offset))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Writes `bytes` at `offset` of `fd` in one pwrite(2) (the file position does not move); returns how many
    /// were written.
    ///
    /// - Throws: the `Errno` of pwrite(2).
    ///
    /// The corresponding system call is `pwrite64(2)`.
    package static func write(
        _ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, atOffset offset: Int64
    ) throws(Errno) -> Int {
        try injectFault("pwrite", nil)
        return try valueOrErrno { pwrite(fd.rawValue, bytes.baseAddress, bytes.count, off_t(offset)) }
    }

    /// Cuts or extends the open file to `size` bytes.
    ///
    /// - Throws: the `Errno` of ftruncate(2).
    ///
    /// The corresponding system call is `ftruncate(2)`.
    package static func truncate(_ fd: FileDescriptor, size: Int64) throws(Errno) {
        try injectFault("ftruncate", nil)
        _ = try valueOrErrno { ftruncate(fd.rawValue, off_t(size)) }
    }

    /// Flushes the file's data and metadata to the device (for a directory: the names in it).
    ///
    /// - Throws: the `Errno` of fsync(2).
    ///
    /// The corresponding system call is `fsync(2)`.
    package static func sync(_ fd: FileDescriptor) throws(Errno) {
        try injectFault("fsync", nil)
        _ = try valueOrErrno { fsync(fd.rawValue) }
    }

    /// Flushes everything of the file system holding `fd` to the device.
    ///
    /// - Throws: the `Errno` of syncfs(2).
    ///
    /// The corresponding system call is `syncfs(2)`.
    package static func syncFilesystem(_ fd: FileDescriptor) throws(Errno) {
        try injectFault("syncfs", nil)
        _ = try valueOrErrno { CUnionMount_syncfs(fd.rawValue) }
    }
}

/// write(2) under a name the `FileSystem.write` overloads do not hide.
@inline(__always)
private func writeBytes(_ fd: CInt, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}
