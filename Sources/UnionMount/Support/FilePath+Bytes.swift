import SystemPackage

extension FilePath {
    /// Creates a path from raw bytes, exactly as the kernel would see them.
    ///
    /// A NUL byte cannot be part of a path; callers validate before building one (see ``containsNUL``).
    package init<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        var chars = bytes.map { CChar(bitPattern: $0) }
        chars.append(0)
        self = chars.withUnsafeBufferPointer { FilePath(platformString: $0.baseAddress!) }
    }

    /// The path's bytes without the terminating NUL, exactly as they are handed to the kernel.
    ///
    /// One allocation (none for an empty path) and, where ``withNulTerminatedBytes(_:)`` has its fast path, no
    /// call into swift-system; callers on the mount path read each `FilePath` once and keep the bytes.
    package var bytes: [UInt8] {
        withNulTerminatedBytes { Array(UnsafeBufferPointer(start: $0.baseAddress, count: $0.count - 1)) }
    }

    /// Runs `body` with the path's bytes followed by their NUL (`count` is the length plus one).
    ///
    /// swift-system 1.x keeps a `FilePath` as one NUL-terminated `[CChar]`-shaped array; when a check made once
    /// per process confirms that layout (``FilePathLayout``), the bytes are read in place from that array's
    /// buffer, without reference counting. `withPlatformString` reaches the same bytes through five
    /// unspecialized generic calls, which cost more than the rest of a mount's planning (they run cold after
    /// each mount's kernel work). With any other layout, `withPlatformString` is used.
    @inline(__always)
    package func withNulTerminatedBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if FilePathLayout.isArrayBuffer {
            // `self` (borrowed for this call) keeps the buffer alive; the word is its address.
            let buffer = unsafeBitCast(self, to: UnsafeRawPointer.self)
            let count = buffer.load(fromByteOffset: FilePathLayout.countOffset, as: Int.self)
            let bytes = (buffer + FilePathLayout.elementsOffset).assumingMemoryBound(to: UInt8.self)
            return body(UnsafeBufferPointer(start: bytes, count: count))
        }
        // No NUL comes before a `FilePath`'s terminator, so its length is the C string's: strlen(3) without libc,
        // which this folder, below `Syscalls/`, does not call.
        let count = length + 1
        return withPlatformString { cString in
            body(
                UnsafeBufferPointer(start: UnsafeRawPointer(cString).assumingMemoryBound(to: UInt8.self), count: count))
        }
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// The bytes before the last one (a C string's bytes without its NUL).
    package var withoutNul: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: baseAddress, count: count - 1) }
}

extension Array where Element == UInt8 {
    /// Runs `body` with the bytes followed by a NUL in a temporary buffer (on the stack for values of fsconfig(2)'s
    /// size), for system calls that read a C string.
    @inline(__always)
    package func withNulTerminatedCopy<R>(_ body: (UnsafeRawPointer) -> R) -> R {
        withUnsafeBytes { source in
            withUnsafeTemporaryAllocation(byteCount: source.count + 1, alignment: 1) { buffer in
                if source.count > 0 {
                    buffer.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: source.count)
                }
                buffer[source.count] = 0
                return body(UnsafeRawPointer(buffer.baseAddress!))
            }
        }
    }
}

extension Array where Element == FilePath {
    /// Calls `body` with each path's index and its bytes followed by their NUL, in order, until it returns
    /// `false`; returns whether every call returned `true`.
    ///
    /// With ``FilePathLayout/isArrayBuffer`` the bytes are read in place through the array's own buffer, with
    /// no copy and no reference counting per path (the array keeps every path alive meanwhile).
    package func allNulTerminatedBytes(_ body: (Int, UnsafeBufferPointer<UInt8>) -> Bool) -> Bool {
        guard FilePathLayout.isArrayBuffer else {
            return indices.allSatisfy { index in self[index].withNulTerminatedBytes { body(index, $0) } }
        }
        return withUnsafeBytes { paths in
            for index in 0..<count {
                let buffer = paths.load(
                    fromByteOffset: index * MemoryLayout<FilePath>.stride, as: UnsafeRawPointer.self)
                let length = buffer.load(fromByteOffset: FilePathLayout.countOffset, as: Int.self)
                let bytes = (buffer + FilePathLayout.elementsOffset).assumingMemoryBound(to: UInt8.self)
                guard body(index, UnsafeBufferPointer(start: bytes, count: length)) else { return false }
            }
            return true
        }
    }
}

/// Whether `FilePath` is one word, the address of a Swift array buffer holding the path's bytes and a NUL, as in
/// swift-system 1.x; decided once per process without reading memory the check has not located.
enum FilePathLayout {
    /// Where an array buffer keeps its element count: after the object header (two words).
    static let countOffset = MemoryLayout<Int>.size * 2
    /// Where its elements start: after the header, the count and the capacity.
    static let elementsOffset = MemoryLayout<Int>.size * 4

    /// Whether ``FilePath/withNulTerminatedBytes(_:)`` may read the buffer directly.
    static let isArrayBuffer: Bool = {
        guard MemoryLayout<FilePath>.size == MemoryLayout<UnsafeRawPointer>.size,
            MemoryLayout<FilePath>.alignment == MemoryLayout<UnsafeRawPointer>.alignment
        else { return false }
        for text in ["/unionmount/file-path-layout-probe", "", "relative/probe"] {
            let probe = FilePath(text)
            let word = withUnsafeBytes(of: probe) { $0.load(as: UInt.self) }
            // The C string withPlatformString hands out must sit right after an array header at that address…
            let cString = probe.withPlatformString { UInt(bitPattern: $0) }
            guard word != 0, cString == word &+ UInt(elementsOffset) else { return false }
            // …and the count before it must be the length plus the NUL.
            let count = withExtendedLifetime(probe) {
                UnsafeRawPointer(bitPattern: word)!.load(fromByteOffset: countOffset, as: Int.self)
            }
            guard count == probe.length + 1, count == text.utf8.count + 1 else { return false }
        }
        return true
    }()
}
extension Array where Element == UInt8 {
    /// A readable rendering of bytes that may not be UTF-8: valid UTF-8 as is, other bytes as `\xNN`.
    package var readable: String {
        String(decoding: self, as: UTF8.self).utf8.elementsEqual(self)
            ? String(decoding: self, as: UTF8.self)
            : self.lossyEscaped
    }

    private var lossyEscaped: String {
        var out = ""
        var index = startIndex
        while index < endIndex {
            // Take the longest valid UTF-8 scalar at `index`, else escape one byte.
            var decoded = false
            for length in 1...4 where index + length <= endIndex {
                let slice = self[index..<(index + length)]
                if let scalar = String(validating: slice, as: UTF8.self), scalar.unicodeScalars.count == 1 {
                    out += scalar
                    index += length
                    decoded = true
                    break
                }
            }
            if !decoded {
                out += "\\x" + String(self[index], radix: 16, uppercase: true).leftPadded(to: 2)
                index += 1
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

extension FilePath {
    /// A readable rendering of the path for messages: UTF-8 as is, other bytes as `\xNN`.
    package var readable: String { bytes.readable }
}
