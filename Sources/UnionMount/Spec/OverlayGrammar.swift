/// The bytes and keys that overlay's option language gives a meaning (`fs/overlayfs/params.c`, and SELinux's
/// `selinux_sb_eat_lsm_opts`, which reads mount(2) data first): what validation refuses in a spec, and what
/// ``OverlayEscaping`` escapes and splits on.
enum OverlayGrammar {
    /// Takes the next byte literally in the legacy grammar.
    static let backslash = UInt8(ascii: "\\")
    /// Separates options.
    static let comma = UInt8(ascii: ",")
    /// The double quote that SELinux honours around a label holding commas.
    static let quote = UInt8(ascii: "\"")
    /// Separates layers in `lowerdir=` (`::` starts the data-only ones).
    static let colon = UInt8(ascii: ":")
    /// Separates an option's key from its value.
    static let equals = UInt8(ascii: "=")

    /// The LSM options whose value may be double-quoted to hold commas (`selinux_sb_eat_lsm_opts`).
    static let quotableKeys: Set<String> = ["context", "fscontext", "defcontext", "rootcontext"]

    /// Whether `value` is one double-quoted string: a quote at each end and none inside.
    static func isQuoted(_ value: some Collection<UInt8>) -> Bool {
        value.count >= 2 && value.first == quote && value.reversed().first == quote
            && value.dropFirst().dropLast().allSatisfy { $0 != quote }
    }
}
