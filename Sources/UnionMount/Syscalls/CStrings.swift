#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The number of bytes at the start of the C string `string` that are none of the bytes of the C string
/// `excluded` (the index of the first excluded byte, or of the NUL).
///
/// The corresponding library call is `strcspn(3)`, which the C library runs many bytes at a time.
@inline(__always)
package func cStringPrefixLength(_ string: UnsafePointer<CChar>, excluding excluded: UnsafePointer<CChar>) -> Int {
    strcspn(string, excluded)
}
