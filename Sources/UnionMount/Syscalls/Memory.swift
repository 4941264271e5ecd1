#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Whether `count` bytes at `first` and at `second` are the same.
///
/// The corresponding library call is `memcmp(3)`.
@inline(__always)
package func bytesEqual(_ first: UnsafeRawPointer, _ second: UnsafeRawPointer, count: Int) -> Bool {
    memcmp(first, second, count) == 0
}

/// The offset of the first `byte` in the `count` bytes at `start`, nil when there is none.
///
/// The corresponding library call is `memchr(3)`.
@inline(__always)
package func byteOffset(of byte: UInt8, in start: UnsafeRawPointer, count: Int) -> Int? {
    guard let found = memchr(start, CInt(byte), count) else { return nil }
    return UnsafeRawPointer(found) - start
}
