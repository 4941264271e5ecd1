#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// execve(2)'s limit on the bytes of the arguments and the environment together (`ARG_MAX`).
///
/// `@usableFromInline` because a public default argument (of `MountPlan.fuseOverlayfs`) reads it.
///
/// The corresponding library call is `sysconf(3)` with `_SC_ARG_MAX`.
@usableFromInline
package func processArgumentLimit() -> Int {
    Int(sysconf(Int32(_SC_ARG_MAX)))
}
