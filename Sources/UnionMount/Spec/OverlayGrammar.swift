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

    /// The index of the opening quote when `option` starts `<quotable key>="`, else nil: the one rule for where a
    /// quoted label begins, in mount(2) data (`selinux_sb_eat_lsm_opts`) and in mountinfo (`show_sid`).
    @inline(__always)
    static func quotedValueStart<Bytes: Collection<UInt8>>(_ option: Bytes) -> Bytes.Index? {
        // Every quotable key ends in "context"; only options starting with c, f, d or r can be one.
        guard let first = option.first,
            first == UInt8(ascii: "c") || first == UInt8(ascii: "f") || first == UInt8(ascii: "d")
                || first == UInt8(ascii: "r")
        else { return nil }
        for key in quotableKeyBytes where option.starts(with: key) {
            let afterKey = option.index(option.startIndex, offsetBy: key.count)
            guard afterKey != option.endIndex, option[afterKey] == equals else { continue }
            let open = option.index(after: afterKey)
            guard open != option.endIndex, option[open] == quote else { continue }
            return open
        }
        return nil
    }

    /// ``quotableKeys`` as bytes.
    private static let quotableKeyBytes: [[UInt8]] = quotableKeys.map { Array($0.utf8) }

    /// Whether `value` is one double-quoted string: a quote at each end and none inside.
    static func isQuoted(_ value: some Collection<UInt8>) -> Bool {
        value.count >= 2 && value.first == quote && value.reversed().first == quote
            && value.dropFirst().dropLast().allSatisfy { $0 != quote }
    }
}
