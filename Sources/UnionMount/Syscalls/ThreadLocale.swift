import CUnionMountShim

extension ProcessFacts {
    /// Runs `body` with this thread's character-type locale (`LC_CTYPE`) set to `name`, the process locale and
    /// other threads untouched; when the locale does not exist, with the thread's locale as it is.
    ///
    /// For C libraries whose output depends on the locale (libarchive converts tar names to UTF-8 from the
    /// locale's charset), so that the same input gives the same bytes whatever locale the program set.
    ///
    /// The corresponding library calls are `newlocale(3)`, `uselocale(3)` and `freelocale(3)`.
    package static func withCharacterLocale<Result, Failure: Error>(
        _ name: String, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        guard let token = CUnionMount_use_ctype_locale(name) else { return try body() }
        defer { CUnionMount_restore_locale(token) }
        return try body()
    }
}
