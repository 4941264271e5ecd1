import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reads a whole (proc) file with read(2).
enum FileContents {
    /// The whole file, read into a buffer that grows until read(2) returns 0. `EINTR` is retried.
    static func readAll(_ path: FilePath) throws(UnionMountError) -> [UInt8] {
        let name = path.readable
        let descriptor: FileDescriptor
        do {
            descriptor = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec], retryOnInterrupt: true)
        } catch {
            throw .systemCall("open", (error as? Errno) ?? .ioError, message: "cannot open \(name)", input: name)
        }
        defer { try? descriptor.close() }

        // Regular files report their size; proc files report 0 and are read in growing chunks.
        var status = stat()
        var capacity = 64 * 1024
        if fstat(descriptor.rawValue, &status) == 0, status.st_size > 0, status.st_size < Int.max / 2 {
            capacity = Int(status.st_size) + 1
        }
        var result: [UInt8] = []
        var failure: Errno?
        var atEnd = false
        while !atEnd && failure == nil {
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
                while count < buffer.count {
                    let space = UnsafeMutableRawBufferPointer(start: base + count, count: buffer.count - count)
                    let got: Int
                    do {
                        got = try descriptor.read(into: space, retryOnInterrupt: true)
                    } catch {
                        failure = (error as? Errno) ?? .ioError
                        return
                    }
                    if got == 0 {
                        atEnd = true
                        return
                    }
                    count += got
                }
            }
            let (doubled, overflow) = capacity.multipliedReportingOverflow(by: 2)
            if overflow {
                failure = .noMemory
            } else {
                capacity = doubled
            }
        }
        if let failure, !atEnd {
            throw .systemCall("read", failure, message: "cannot read \(name)", input: name)
        }
        return result
    }
}
