import SystemPackage

extension AufsSpec {
    /// Checks the spec against the rules aufs applies to mount data, before anything reaches the kernel.
    ///
    /// Mirrors `sfjro/aufs-standalone` `fs/aufs/fsctx.c` (`au_fsctx_parse_param`, `au_fsctx_parse_br`) and
    /// `fs/aufs/opts.c` (`au_opt_add`, `br_perm_val`, `br_attr_val`). Where aufs only warns and drops something
    /// (a misplaced attribute, a second copy-up-on-open attribute), this refuses it, so that what is mounted is what
    /// the spec says:
    ///
    /// - at least one branch; no branch path empty;
    /// - no branch path containing `,` (option separator), `:` (branch separator) or `=` (permission separator):
    ///   aufs has no escape syntax;
    /// - no branch given twice (compared as `FilePath` values; aufs compares the resolved directories, so aliases
    ///   through symbolic links, `.` or `..` still fail only at mount time, with `EINVAL` "duplicated");
    /// - `wh` only on `ro`/`rr` branches, `nolwh` and `moo` only on `rw` branches, at most one of `coo_reg`,
    ///   `coo_all`, `moo` per branch (aufs keeps the last one);
    /// - an `xino=` path that is not empty and has no `,`;
    /// - numbers in the ranges aufs accepts: `rdcache` 0...3600 (`AUFS_RDCACHE_MAX`), `dirwh` ≥ 0, `rdblk` 0 or
    ///   ≥ 255 (`NAME_MAX`; aufs refuses `0 < n < NAME_MAX`), `rdhash` ≥ 0, all within `Int32` (aufs parses them with
    ///   `kstrtoint`), `create=` seconds 0...3600 (`AUFS_MFS_MAX_SEC`) and watermarks ≥ 0. The `KMALLOC_MAX_SIZE`
    ///   caps on `rdblk` and `rdhash` depend on the kernel build and are not checked;
    /// - raw options (``AufsOptions/additional``): a key that is not empty and holds none of `,` `=` NUL, a value
    ///   without `,` or NUL; no key that would add, remove or change branches (`br`, `dirs`, `add`, `ins`, `append`,
    ///   `prepend`, `del`, `mod`, including the `key:` forms aufs rewrites to `key=`); no key a typed option already
    ///   models (use the typed property instead) and no `si` (aufs ignores it).
    ///
    /// The branch count is **not** limited here: aufs' compile-time maximum `AUFS_BRANCH_MAX` is 127 by default but
    /// can be built as 511, 1023 or 32767 (`CONFIG_AUFS_BRANCH_MAX_*`, readable from `/sys/fs/aufs/config` for module
    /// builds), so only the kernel knows; exceeding it fails with `ENOSPC` "number of branches exceeded".
    ///
    /// - Throws: ``UnionMountError`` with code ``UnionMountError/Code/invalidSpec`` and ``UnionMountError/input``
    ///   naming the field, e.g. `branches[4].path`, `branches[2].attributes[1]`, `options.externalInodeNumbers`,
    ///   `options.additional[0]`.
    public func validate() throws(UnionMountError) {
        guard !branches.isEmpty else {
            throw UnionMountError.invalidSpec("an aufs mount needs at least one branch", input: "branches")
        }
        var seen: [FilePath: Int] = [:]
        for (index, branch) in branches.enumerated() {
            try branch.validate(index: index)
            if let earlier = seen[branch.path] {
                throw UnionMountError.invalidSpec(
                    "branch \(index) repeats branch \(earlier) (\(branch.path.readable)); aufs refuses a duplicated "
                        + "branch with EINVAL",
                    input: "branches[\(index)].path")
            }
            seen[branch.path] = index
        }
        try options.validate()
    }
}

extension AufsBranch {
    /// Path and attribute rules of `au_opt_add` / `br_perm_val` for the branch at `index`.
    func validate(index: Int) throws(UnionMountError) {
        let field = "branches[\(index)]"
        let bytes = path.bytes
        guard !bytes.isEmpty else {
            throw UnionMountError.invalidSpec("branch \(index) has an empty path", input: "\(field).path")
        }
        for (byte, role) in AufsGrammar.forbiddenInBranchPath {
            if bytes.contains(byte) {
                throw UnionMountError.invalidSpec(
                    "branch \(index) path \(path.readable) contains '\(Character(Unicode.Scalar(byte)))', the aufs "
                        + "\(role); aufs has no escape syntax",
                    input: "\(field).path")
            }
        }
        var copyOrMoveOnOpen: (attribute: Attribute, index: Int)?
        for (attributeIndex, attribute) in attributes.enumerated() {
            let attributeField = "\(field).attributes[\(attributeIndex)]"
            switch attribute {
            case .whiteout where permission == .readWrite:
                throw UnionMountError.invalidSpec(
                    "'wh' applies only to ro and rr branches; aufs drops it from rw branch \(index) with a warning",
                    input: attributeField)
            case .noLinkedWhiteout where permission != .readWrite, .moveUpOnOpen where permission != .readWrite:
                throw UnionMountError.invalidSpec(
                    "'\(attribute.rawValue)' applies only to rw branches; aufs drops it from \(permission.rawValue) "
                        + "branch \(index) with a warning",
                    input: attributeField)
            default:
                break
            }
            if attribute == .copyUpOnOpenRegular || attribute == .copyUpOnOpenAll || attribute == .moveUpOnOpen {
                if let earlier = copyOrMoveOnOpen {
                    throw UnionMountError.invalidSpec(
                        "'\(attribute.rawValue)' conflicts with '\(earlier.attribute.rawValue)' "
                            + "(attributes[\(earlier.index)]) on branch \(index): coo_reg, coo_all and moo exclude "
                            + "each other and aufs keeps only the last",
                        input: attributeField)
                }
                copyOrMoveOnOpen = (attribute, attributeIndex)
            }
        }
    }
}

extension AufsOptions {
    /// Range and spelling rules of `au_fsctx_parse_param` for the typed options, and the raw-option rules.
    func validate() throws(UnionMountError) {
        if case .path(let xino) = externalInodeNumbers {
            let bytes = xino.bytes
            guard !bytes.isEmpty else {
                throw UnionMountError.invalidSpec("the xino path is empty", input: "options.externalInodeNumbers")
            }
            guard !bytes.contains(AufsGrammar.comma) else {
                throw UnionMountError.invalidSpec(
                    "the xino path \(xino.readable) contains ',', the option separator; aufs has no escape syntax",
                    input: "options.externalInodeNumbers")
            }
        }
        try Self.check(
            directoryWhiteoutThreshold, in: 0...AufsGrammar.int32Max, name: "dirwh",
            input: "options.directoryWhiteoutThreshold")
        try Self.check(
            readdirCacheSeconds, in: 0...AufsGrammar.readdirCacheMaximum, name: "rdcache",
            input: "options.readdirCacheSeconds")
        try Self.check(readdirHashSize, in: 0...AufsGrammar.int32Max, name: "rdhash", input: "options.readdirHashSize")
        if let size = readdirBlockSize {
            guard size == 0 || (AufsGrammar.nameMax...AufsGrammar.int32Max).contains(size) else {
                throw UnionMountError.invalidSpec(
                    "rdblk=\(size) is out of range: aufs takes 0 (automatic) or \(AufsGrammar.nameMax) (NAME_MAX) "
                        + "up to \(AufsGrammar.int32Max)",
                    input: "options.readdirBlockSize")
            }
        }
        if let createPolicy { try Self.validate(createPolicy) }
        for (index, option) in additional.enumerated() {
            try Self.validate(option, input: "options.additional[\(index)]")
        }
    }

    private static func check(_ value: Int?, in range: ClosedRange<Int>, name: String, input: String)
        throws(UnionMountError)
    {
        guard let value, !range.contains(value) else { return }
        throw UnionMountError.invalidSpec(
            "\(name)=\(value) is out of range: aufs takes \(range.lowerBound)...\(range.upperBound)", input: input)
    }

    private static func validate(_ policy: CreatePolicy) throws(UnionMountError) {
        let input = "options.createPolicy"
        var watermark: Int?
        var seconds: Int?
        switch policy {
        case .topDownParent, .roundRobin:
            break
        case .mostFreeSpace(let s), .parentMostFreeSpace(let s):
            seconds = s
        case .topDownMostFreeSpace(let w, let s), .mostFreeSpaceRoundRobin(let w, let s),
            .parentMostFreeSpaceRoundRobin(let w, let s):
            watermark = w
            seconds = s
        }
        if let watermark, watermark < 0 {
            throw UnionMountError.invalidSpec(
                "create= watermark \(watermark) is negative; aufs reads it as an unsigned 64-bit byte count",
                input: input)
        }
        if let seconds, !(0...AufsGrammar.mostFreeSpaceSecondsMaximum).contains(seconds) {
            throw UnionMountError.invalidSpec(
                "create= interval \(seconds) s is out of range: aufs takes "
                    + "0...\(AufsGrammar.mostFreeSpaceSecondsMaximum) (AUFS_MFS_MAX_SEC)",
                input: input)
        }
    }

    private static func validate(_ option: OverlayOptions.RawOption, input: String) throws(UnionMountError) {
        let key = option.key
        guard !key.isEmpty else {
            throw UnionMountError.invalidSpec("a raw option has an empty key; the kernel skips it", input: input)
        }
        for (byte, what) in [(AufsGrammar.comma, "','"), (AufsGrammar.equals, "'='"), (0, "a NUL byte")]
        where key.utf8.contains(byte) {
            throw UnionMountError.invalidSpec(
                "raw option key \(key.debugDescription) contains \(what); it would not reach aufs as one key",
                input: input)
        }
        if let value = option.value {
            for (byte, what) in [(AufsGrammar.comma, "','"), (0, "a NUL byte")] where value.utf8.contains(byte) {
                throw UnionMountError.invalidSpec(
                    "raw option \(key) has a value containing \(what); aufs has no escape syntax", input: input)
            }
        }
        let effectiveKey = AufsGrammar.effectiveKey(key)
        if AufsGrammar.branchKeys.contains(effectiveKey) {
            throw UnionMountError.invalidSpec(
                "raw option \(key.debugDescription) would change the branch list behind the spec's back; put "
                    + "branches in AufsSpec.branches",
                input: input)
        }
        if effectiveKey == "si" {
            throw UnionMountError.invalidSpec(
                "raw option si= names an existing aufs superblock and is ignored by aufs; drop it", input: input)
        }
        if let property = AufsGrammar.typedProperty(forKey: key, hasValue: option.value != nil) {
            throw UnionMountError.invalidSpec(
                "raw option \(key.debugDescription) is modelled by AufsOptions.\(property); set that instead",
                input: input)
        }
    }
}
