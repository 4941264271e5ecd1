import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension FilePath {
    /// Creates a path from raw bytes, exactly as the kernel would see them.
    ///
    /// A NUL byte cannot be part of a path; callers validate before building one (see ``containsNUL``).
    init<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        var chars = bytes.map { CChar(bitPattern: $0) }
        chars.append(0)
        self = chars.withUnsafeBufferPointer { FilePath(platformString: $0.baseAddress!) }
    }

    /// The path's bytes without the terminating NUL, exactly as they are handed to the kernel.
    var bytes: [UInt8] {
        withPlatformString { cString in
            Array(UnsafeRawBufferPointer(start: cString, count: strlen(cString)))
        }
    }
}

extension Array where Element == UInt8 {
    /// A readable rendering of bytes that may not be UTF-8: valid UTF-8 as is, other bytes as `\xNN`.
    var readable: String {
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
    var readable: String { bytes.readable }
}

/// A path as a dictionary key, hashed in one pass over its bytes without copying them (`FilePath`'s own hash
/// goes byte by byte); validation runs on every mount and checks hundreds of layers for duplicates.
struct PathKey: Hashable {
    let path: FilePath

    init(_ path: FilePath) { self.path = path }

    func hash(into hasher: inout Hasher) {
        path.withPlatformString { hasher.combine(bytes: UnsafeRawBufferPointer(start: $0, count: strlen($0))) }
    }

    static func == (lhs: PathKey, rhs: PathKey) -> Bool {
        lhs.path.withPlatformString { left in rhs.path.withPlatformString { right in strcmp(left, right) == 0 } }
    }
}
