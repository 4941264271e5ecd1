#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The C library function `name` as a Swift function of `type`, nil when this libc lacks it.
///
/// For GNU functions that Swift's Glibc module hides (it is built without `_GNU_SOURCE`) or that only newer
/// versions have. The corresponding library call is `dlsym(3)` on the default symbol scope.
func libcFunction<Function>(_ name: String, as type: Function.Type) -> Function? {
    guard let symbol = dlsym(nil, name) else { return nil }
    return unsafeBitCast(symbol, to: type)
}
