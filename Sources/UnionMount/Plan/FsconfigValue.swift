import SystemPackage

/// The bytes of one `FSCONFIG_SET_STRING` value (``MountStep/setString(key:value:)``), without a NUL.
///
/// A value is its bytes: two values are equal, hash, print and encode alike when their bytes are equal, however
/// they were made. A value made from a layer's path (``init(path:)``) or from a string keeps that path or string
/// rather than a copy of its bytes, so a plan shares its spec's path storage and planning copies no layer;
/// fsconfig(2) is handed the bytes in place when the plan runs.
public struct FsconfigValue: Sendable, Hashable, RandomAccessCollection, ExpressibleByStringLiteral,
    CustomStringConvertible
{
    /// Where the bytes are kept; every case reads as the same bytes.
    enum Storage: Sendable {
        /// A path's bytes, read in place (``FilePath/withNulTerminatedBytes(_:)``).
        case path(FilePath)
        /// A string's UTF-8 bytes.
        case text(String)
        /// Bytes of their own (an escaped path, a decoded value).
        case bytes([UInt8])
    }

    let storage: Storage

    /// A value of these bytes (copied).
    public init(_ bytes: some Sequence<UInt8>) { storage = .bytes(Array(bytes)) }

    /// A value of the string's UTF-8 bytes; the string is kept, not copied.
    public init(_ string: String) { storage = .text(string) }

    /// A value of the path's bytes, exactly as the kernel sees them; the path is kept, not copied.
    public init(path: FilePath) { storage = .path(path) }

    /// A value of the literal's UTF-8 bytes.
    public init(stringLiteral value: String) { storage = .text(value) }

    /// The bytes, as an array of their own.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// The bytes as text: UTF-8 as is, other bytes as `\xNN`.
    public var description: String { bytes.readable }

    /// Runs `body` with the bytes in place (no copy for a path or a native string).
    func withUnsafeBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        switch storage {
        case .path(let path): return path.withNulTerminatedBytes { body($0.withoutNul) }
        case .text(var text): return text.withUTF8(body)
        case .bytes(let bytes): return bytes.withUnsafeBufferPointer(body)
        }
    }

    /// Runs `body` with the bytes followed by a NUL, as fsconfig(2) reads a value: a path's own buffer, a
    /// string's C string, or a copy on the stack.
    @inline(__always)
    func withNulTerminatedBytes<R>(_ body: (UnsafeRawPointer) -> R) -> R {
        switch storage {
        case .path(let path): return path.withNulTerminatedBytes { body(UnsafeRawPointer($0.baseAddress!)) }
        case .text(let text): return text.withCString { body(UnsafeRawPointer($0)) }
        case .bytes(let bytes): return bytes.withNulTerminatedCopy(body)
        }
    }

    // MARK: RandomAccessCollection

    /// The first byte's index, 0.
    public var startIndex: Int { 0 }

    /// The number of bytes.
    public var endIndex: Int {
        switch storage {
        case .path(let path): path.withNulTerminatedBytes { $0.count - 1 }
        case .text(let text): text.utf8.count
        case .bytes(let bytes): bytes.count
        }
    }

    /// The byte at `position`.
    public subscript(position: Int) -> UInt8 {
        withUnsafeBytes { bytes in
            precondition(position >= 0 && position < bytes.count, "FsconfigValue index out of range")
            return bytes[position]
        }
    }

    // MARK: Hashable

    /// Whether both values hold the same bytes.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.withUnsafeBytes { left in
            rhs.withUnsafeBytes { right in
                left.count == right.count
                    && (left.count == 0 || bytesEqual(left.baseAddress!, right.baseAddress!, count: left.count))
            }
        }
    }

    /// Hashes the bytes.
    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes { bytes in
            hasher.combine(bytes.count)
            hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
        }
    }
}
