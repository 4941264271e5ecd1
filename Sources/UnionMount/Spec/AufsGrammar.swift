import SystemPackage

/// Byte-level pieces of the aufs mount data grammar (`fs/aufs/fsctx.c`, `fs/aufs/opts.c` of `sfjro/aufs-standalone`).
enum AufsGrammar {
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let equals = UInt8(ascii: "=")
    static let plus = UInt8(ascii: "+")

    /// Bytes a branch path cannot hold, with their role in the grammar.
    static let forbiddenInBranchPath: [(UInt8, String)] = [
        (comma, "option separator"), (colon, "branch separator"), (equals, "permission separator"),
    ]

    /// Option names aufs also accepts as `name:value` (`is_colonopt`); `dirs` is not one of them.
    static let colonKeys = ["br", "add", "ins", "append", "prepend", "del", "mod"]
    /// Every option that adds, removes or changes branches.
    static let branchKeys: Set<String> = ["br", "dirs", "add", "ins", "append", "prepend", "del", "mod"]

    /// `NAME_MAX`: the smallest non-zero `rdblk=` aufs accepts.
    static let nameMax = 255
    /// `AUFS_RDCACHE_MAX`.
    static let readdirCacheMaximum = 3600
    /// `AUFS_MFS_MAX_SEC`.
    static let mostFreeSpaceSecondsMaximum = 3600
    /// `AUFS_RDBLK_DEF`, what `rdblk=def` means.
    static let readdirBlockDefault = 512
    /// `AUFS_RDHASH_DEF`, what `rdhash=def` means.
    static let readdirHashDefault = 32
    /// aufs parses its numbers with `kstrtoint`.
    static let int32Max = Int(Int32.max)

    /// The key aufs sees for an option that starts with `key`: `is_colonopt` turns a leading `br:` (and the other
    /// colon options) into `br=`, so the name before the `:` is the key.
    static func effectiveKey(_ key: String) -> String {
        colonKeys.first { key.hasPrefix($0 + ":") } ?? key
    }

    /// The ``AufsOptions`` property that models `key` (given with or without a value), or `nil` when the parser
    /// keeps the key in ``AufsOptions/additional``.
    static func typedProperty(forKey key: String, hasValue: Bool) -> String? {
        switch key {
        case "xino", "noxino": "externalInodeNumbers"
        case "trunc_xino": hasValue ? nil : "truncateXino"  // `trunc_xino=<branch>` is a remount one-shot
        case "notrunc_xino": "truncateXino"
        case "udba": "userDirectBranchAccess"
        case "dio", "nodio": "directIO"
        case "dirperm1", "nodirperm1": "directoryPermissionFromTopOnly"
        case "plink", "noplink": "pseudoLinks"
        case "shwh", "noshwh": "showWhiteouts"
        case "create", "create_policy": "createPolicy"
        case "cpup", "copyup", "copyup_policy": "copyUpPolicy"
        case "diropq": "opaqueDirectories"
        case "dirwh": "directoryWhiteoutThreshold"
        case "rdcache": "readdirCacheSeconds"
        case "rdblk": "readdirBlockSize"
        case "rdhash": "readdirHashSize"
        case "sum", "nosum": "sumFreeSpace"
        case "warn_perm", "nowarn_perm": "warnPermission"
        case "verbose", "v", "noverbose", "quiet", "q", "silent": "verbose"
        case "dirren", "nodirren": "directoryRename"
        default: nil
        }
    }

    /// The `Bool?` property and value a flag option sets, for every typed flag.
    static func flag(_ key: String) -> (property: WritableKeyPath<AufsOptions, Bool?>, value: Bool)? {
        switch key {
        case "trunc_xino": (\.truncateXino, true)
        case "notrunc_xino": (\.truncateXino, false)
        case "dio": (\.directIO, true)
        case "nodio": (\.directIO, false)
        case "dirperm1": (\.directoryPermissionFromTopOnly, true)
        case "nodirperm1": (\.directoryPermissionFromTopOnly, false)
        case "plink": (\.pseudoLinks, true)
        case "noplink": (\.pseudoLinks, false)
        case "shwh": (\.showWhiteouts, true)
        case "noshwh": (\.showWhiteouts, false)
        case "sum": (\.sumFreeSpace, true)
        case "nosum": (\.sumFreeSpace, false)
        case "warn_perm": (\.warnPermission, true)
        case "nowarn_perm": (\.warnPermission, false)
        case "verbose", "v": (\.verbose, true)
        case "noverbose", "quiet", "q", "silent": (\.verbose, false)
        case "dirren": (\.directoryRename, true)
        case "nodirren": (\.directoryRename, false)
        default: nil
        }
    }

    /// Parses an integer as the kernel's `kstrtoint(s, 0, …)` does: optional sign, then `0x` hexadecimal, `0`
    /// octal or decimal; the whole text must be digits. `nil` when it is not a number or does not fit an `Int`.
    static func integer<Bytes: Collection<UInt8>>(_ text: Bytes) -> Int? {
        var digits = ArraySlice(text)
        var negative = false
        if let first = digits.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            negative = first == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        var radix = 10
        if digits.count >= 2, digits.first == UInt8(ascii: "0") {
            let second = digits[digits.startIndex + 1] | 0x20
            if second == UInt8(ascii: "x") {
                radix = 16
                digits = digits.dropFirst(2)
            } else {
                radix = 8
                digits = digits.dropFirst()
            }
        }
        guard !digits.isEmpty else { return nil }
        var value = 0
        for byte in digits {
            let digit: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = Int(byte - UInt8(ascii: "A")) + 10
            default: return nil
            }
            guard digit < radix else { return nil }
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: radix)
            let (sum, overflow2) = shifted.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return negative ? -value : value
    }
}
