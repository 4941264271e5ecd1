import SystemPackage

// MARK: - Building

extension AufsBranch {
    /// `<path>=<perm>[+<attr>…]`: one element of a `br:` list and the argument of `append:`, as `au_opt_add` splits
    /// it (path up to the first `=`, then the permission, then `+`-joined attributes).
    var optionBytes: [UInt8] {
        path.bytes + [AufsGrammar.equals] + Array(permissionString.utf8)
    }
}

extension AufsOptions.CreatePolicy {
    /// The `create=` value as aufs' `au_wbr_create_policy` table spells it (`tdp`, `rr`, `mfs[:sec]`,
    /// `tdmfs:wmark[:sec]`, `mfsrr:wmark[:sec]`, `pmfs[:sec]`, `pmfsrr:wmark[:sec]`).
    var optionValue: String {
        func join(_ name: String, _ numbers: Int?...) -> String {
            ([name] + numbers.compactMap { $0.map(String.init) }).joined(separator: ":")
        }
        switch self {
        case .topDownParent: return "tdp"
        case .roundRobin: return "rr"
        case .mostFreeSpace(let seconds): return join("mfs", seconds)
        case .topDownMostFreeSpace(let watermark, let seconds): return join("tdmfs", watermark, seconds)
        case .mostFreeSpaceRoundRobin(let watermark, let seconds): return join("mfsrr", watermark, seconds)
        case .parentMostFreeSpace(let seconds): return join("pmfs", seconds)
        case .parentMostFreeSpaceRoundRobin(let watermark, let seconds): return join("pmfsrr", watermark, seconds)
        }
    }
}

extension AufsOptions {
    /// The options as mount data elements (no commas), in this fixed order:
    ///
    /// 1. `dio`/`nodio`, 2. `xino=<path>`/`noxino`, 3. `trunc_xino`/`notrunc_xino`, 4. `dirperm1`/`nodirperm1`
    ///    — Docker's `aufsMount` wrote `dio,xino=…,dirperm1`, so its layout comes out byte for byte;
    /// 5. `udba=`, 6. `plink`/`noplink`, 7. `shwh`/`noshwh`, 8. `create=`, 9. `cpup=`, 10. `diropq=w|a`,
    ///    11. `dirwh=N`, 12. `rdcache=N`, 13. `rdblk=N`, 14. `rdhash=N`, 15. `sum`/`nosum`,
    ///    16. `warn_perm`/`nowarn_perm`, 17. `verbose`/`noverbose`, 18. `dirren`/`nodirren`
    ///    — the order of aufs' option table;
    /// 19. ``additional``, as given.
    ///
    /// Every spelling is the canonical one of aufs6 `aufs_fsctx_paramspec`. aufs applies options by kind, not by
    /// position (`au_opts_mount`: simple flags, then branches, then xino, then udba), so the order only matters to
    /// people reading the string. Bytes, because an xino path need not be UTF-8.
    var optionBytes: [[UInt8]] {
        var result: [[UInt8]] = []
        func add(_ text: String) { result.append(Array(text.utf8)) }
        func add(_ flag: Bool?, _ on: String, _ off: String) {
            if let flag { add(flag ? on : off) }
        }
        add(directIO, "dio", "nodio")
        switch externalInodeNumbers {
        case .path(let path): result.append(Array("xino=".utf8) + path.bytes)
        case .disabled: add("noxino")
        case nil: break
        }
        add(truncateXino, "trunc_xino", "notrunc_xino")
        add(directoryPermissionFromTopOnly, "dirperm1", "nodirperm1")
        if let userDirectBranchAccess { add("udba=" + userDirectBranchAccess.rawValue) }
        add(pseudoLinks, "plink", "noplink")
        add(showWhiteouts, "shwh", "noshwh")
        if let createPolicy { add("create=" + createPolicy.optionValue) }
        if let copyUpPolicy { add("cpup=" + copyUpPolicy.rawValue) }
        if let opaqueDirectories { add("diropq=" + opaqueDirectories.rawValue) }
        if let directoryWhiteoutThreshold { add("dirwh=\(directoryWhiteoutThreshold)") }
        if let readdirCacheSeconds { add("rdcache=\(readdirCacheSeconds)") }
        if let readdirBlockSize { add("rdblk=\(readdirBlockSize)") }
        if let readdirHashSize { add("rdhash=\(readdirHashSize)") }
        add(sumFreeSpace, "sum", "nosum")
        add(warnPermission, "warn_perm", "nowarn_perm")
        add(verbose, "verbose", "noverbose")
        add(directoryRename, "dirren", "nodirren")
        for option in additional { add(option.description) }
        return result
    }

    /// ``optionBytes`` as text, in the same order; bytes that are not UTF-8 (only an xino path can have them) show
    /// as `\xNN`.
    var optionStrings: [String] { optionBytes.map(\.readable) }
}

extension AufsSpec {
    /// The mount(2) data for this spec: `br:<branch 0>:<branch 1>…` then `,<option>` for each of
    /// ``AufsOptions``' options, in the order documented there.
    ///
    /// This is the form aufs' `au_fsctx_parse_monolithic` reads (a `br:` list of `<path>=<perm>[+<attr>…]`, top
    /// branch first). The spec is validated first. The result is not checked against the page size or aufs'
    /// per-call option limit; ``MountPlan/aufs(_:target:flags:pageSize:optionSlotsPerCall:)`` splits long specs.
    ///
    /// - Throws: ``UnionMountError`` with code ``UnionMountError/Code/invalidSpec`` when ``validate()`` fails.
    public func optionString() throws(UnionMountError) -> [UInt8] {
        try validate()
        var data = Array("br:".utf8)
        for (index, branch) in branches.enumerated() {
            if index > 0 { data.append(AufsGrammar.colon) }
            data += branch.optionBytes
        }
        for option in options.optionBytes {
            data.append(AufsGrammar.comma)
            data += option
        }
        return data
    }
}

// MARK: - Parsing

extension AufsSpec {
    /// Reads aufs mount data, as aufs6 `au_fsctx_parse_monolithic` and the VFS' `generic_parse_monolithic` do.
    ///
    /// - The data is split on every `,` (aufs has no escapes). Empty elements are skipped, as fs_context does (the
    ///   pre-2022 `opts.c` parser stopped at the first one instead); an element starting with `=` is skipped too.
    /// - `br:`, `br=` and `dirs=` give branch lists (`dirs:` is not accepted by aufs and is kept as an unknown
    ///   option); several accumulate. A list is split on `:`; its first element must not be empty, and a later
    ///   empty element ends the list, the rest being dropped silently, as the kernel does.
    /// - A branch is `path[=perm[+attr…]]`, split at the first `=`. Without `=perm` the permission is `rw` for the
    ///   first branch of the `br` lists and `ro` otherwise, assuming a read-write mount. The kernel also picks `rr`
    ///   for a branch on squashfs, iso9660, cramfs or romfs, which a parser cannot know. `path=` means `ro`. An
    ///   unknown permission or attribute is an error here, where aufs only warns (and uses `ro` / drops the rest).
    /// - The branch verbs are applied in order: `append:`, `prepend:`, `add:N:`/`ins:N:` (N in 0...count),
    ///   `del:path`, `mod:path=perm`; the missing-permission default follows aufs (`rw` for `prepend` and index 0).
    /// - Typed options and aufs' aliases set ``options``: `create_policy=`, long policy names (`top-down-parent`,
    ///   `round-robin`, `most-free-space[:sec]`, `bottom-up-parent`, `bottom-up`), `copyup=`, `copyup_policy=`,
    ///   `diropq=whiteouted|always`, `udba=fsnotify`, `v`, `quiet`/`q`/`silent`, `rdblk=def`/`rdhash=def` (512 and
    ///   32). Numbers are read like `kstrtoint(…, 0)` (`0x` hex, leading-`0` octal). A repeated option: the last wins.
    /// - `si=` is ignored, so `/proc/mounts` text can be replayed (unescape its `\NNN` first). Every other key goes
    ///   to ``AufsOptions/additional`` in order (VFS flags such as `rw`, SELinux `context=`, `acl`, `wsum`, …).
    ///
    /// Only syntax is checked; call ``validate()`` for aufs' range and consistency rules. For every valid spec,
    /// `AufsSpec(optionString: spec.optionString()) == spec`.
    ///
    /// - Throws: ``UnionMountError`` with code ``UnionMountError/Code/malformedInput`` naming the element: a NUL
    ///   byte, a value on a flag or none on a valued option, an empty or unparsable branch, an unknown permission,
    ///   attribute or policy, a bad number, a verb naming a missing branch or an index out of range, a key or
    ///   value that is not UTF-8.
    public init(optionString: some Collection<UInt8>) throws(UnionMountError) {
        let data = Array(optionString)
        if let nul = data.firstIndex(of: 0) {
            throw UnionMountError.malformed(
                "aufs mount data holds a NUL byte at offset \(nul); the kernel would stop reading there",
                input: data.readable)
        }
        var parser = AufsDataParser()
        for element in data.split(separator: AufsGrammar.comma, omittingEmptySubsequences: false) {
            try parser.parse(element)
        }
        self.init(branches: parser.branches, options: parser.options)
    }
}

/// The state of one pass over aufs mount data: the branch list built so far and the options.
private struct AufsDataParser {
    var branches: [AufsBranch] = []
    var options = AufsOptions()
    /// How many branches the `br`/`dirs` lists gave so far (`a->bindex` in `fsctx.c`): the index that picks the
    /// default permission of the next list element.
    var listIndex = 0

    mutating func parse(_ element: ArraySlice<UInt8>) throws(UnionMountError) {
        guard !element.isEmpty else { return }
        let text = Array(element).readable
        let keyBytes: ArraySlice<UInt8>
        let value: ArraySlice<UInt8>?
        if let colonKey = AufsGrammar.colonKeys.first(where: { element.starts(with: ($0 + ":").utf8) }) {
            keyBytes = element.prefix(colonKey.utf8.count)
            value = element.dropFirst(colonKey.utf8.count + 1)
        } else if let equals = element.firstIndex(of: AufsGrammar.equals) {
            guard equals != element.startIndex else { return }  // `=value`: vfs_parse_monolithic_sep skips it
            keyBytes = element[..<equals]
            value = element[(equals + 1)...]
        } else {
            keyBytes = element
            value = nil
        }
        guard let key = String(validating: keyBytes, as: UTF8.self) else {
            throw UnionMountError.malformed("aufs option key is not UTF-8", input: text)
        }
        switch key {
        case "br", "dirs":
            try parseList(try Self.required(value, key, text), text: text)
        case "append":
            branches.append(try Self.branch(try Self.required(value, key, text), defaultIndex: 1))
        case "prepend":
            branches.insert(try Self.branch(try Self.required(value, key, text), defaultIndex: 0), at: 0)
        case "add", "ins":
            try parseAdd(try Self.required(value, key, text), text: text)
        case "del":
            let path = try Self.required(value, key, text)
            let index = try indexOfBranch(path, text: text)
            branches.remove(at: index)
        case "mod":
            try parseModify(try Self.required(value, key, text), text: text)
        case "si":
            _ = try Self.required(value, key, text)  // aufs ignores `si=<id>` silently
        case "xino":
            let path = try Self.required(value, key, text)
            options.externalInodeNumbers = .path(FilePath(bytes: path))
        case "noxino":
            try Self.noValue(value, key, text)
            options.externalInodeNumbers = .disabled
        case "trunc_xino" where value != nil:
            try keepRaw(key: key, value: value, text: text)
        case "udba":
            let name = try Self.string(try Self.required(value, key, text), text)
            guard let level = name == "fsnotify" ? .notify : AufsOptions.UserDirectBranchAccess(rawValue: name) else {
                throw UnionMountError.malformed("unknown udba level \(name.debugDescription)", input: text)
            }
            options.userDirectBranchAccess = level
        case "create", "create_policy":
            options.createPolicy = try Self.createPolicy(try Self.required(value, key, text), text: text)
        case "cpup", "copyup", "copyup_policy":
            let name = try Self.string(try Self.required(value, key, text), text)
            let policy: AufsOptions.CopyUpPolicy? =
                switch name {
                case "top-down-parent": .topDownParent
                case "bottom-up-parent": .bottomUpParent
                case "bottom-up": .bottomUp
                default: AufsOptions.CopyUpPolicy(rawValue: name)
                }
            guard let policy else {
                throw UnionMountError.malformed("unknown copy-up policy \(name.debugDescription)", input: text)
            }
            options.copyUpPolicy = policy
        case "diropq":
            switch try Self.string(try Self.required(value, key, text), text) {
            case "w", "whiteouted": options.opaqueDirectories = .whenWhiteouted
            case "a", "always": options.opaqueDirectories = .always
            case let other:
                throw UnionMountError.malformed("unknown diropq value \(other.debugDescription)", input: text)
            }
        case "dirwh":
            options.directoryWhiteoutThreshold = try Self.number(try Self.required(value, key, text), text)
        case "rdcache":
            options.readdirCacheSeconds = try Self.number(try Self.required(value, key, text), text)
        case "rdblk":
            options.readdirBlockSize = try Self.number(
                try Self.required(value, key, text), text, orDefault: AufsGrammar.readdirBlockDefault)
        case "rdhash":
            options.readdirHashSize = try Self.number(
                try Self.required(value, key, text), text, orDefault: AufsGrammar.readdirHashDefault)
        default:
            if let flag = AufsGrammar.flag(key) {
                try Self.noValue(value, key, text)
                options[keyPath: flag.property] = flag.value
            } else {
                try keepRaw(key: key, value: value, text: text)
            }
        }
    }

    private mutating func keepRaw(key: String, value: ArraySlice<UInt8>?, text: String) throws(UnionMountError) {
        var rawValue: String?
        if let value {
            guard let string = String(validating: value, as: UTF8.self) else {
                throw UnionMountError.malformed("the value of aufs option \(key) is not UTF-8", input: text)
            }
            rawValue = string
        }
        options.additional.append(OverlayOptions.RawOption(key, rawValue))
    }

    /// A `br`/`dirs` list (`au_fsctx_parse_br`): `strsep(":")` until the end or an empty element.
    private mutating func parseList(_ list: ArraySlice<UInt8>, text: String) throws(UnionMountError) {
        let elements = list.split(separator: AufsGrammar.colon, omittingEmptySubsequences: false)
        guard let first = elements.first, !first.isEmpty else {
            throw UnionMountError.malformed("the branch list starts with an empty element", input: text)
        }
        for element in elements {
            guard !element.isEmpty else { break }  // aufs ends the list at an empty element
            branches.append(try Self.branch(element, defaultIndex: listIndex))
            listIndex += 1
        }
    }

    /// `add:N:branch` / `ins:N:branch` (`au_fsctx_parse_add`): the index up to the first `:`.
    private mutating func parseAdd(_ value: ArraySlice<UInt8>, text: String) throws(UnionMountError) {
        guard let colon = value.firstIndex(of: AufsGrammar.colon) else {
            throw UnionMountError.malformed("add/ins needs <index>:<branch>", input: text)
        }
        guard let index = AufsGrammar.integer(value[..<colon]) else {
            throw UnionMountError.malformed("add/ins index is not an integer", input: text)
        }
        guard (0...branches.count).contains(index) else {
            throw UnionMountError.malformed(
                "add/ins index \(index) is outside 0...\(branches.count); aufs answers EDOM", input: text)
        }
        branches.insert(try Self.branch(value[(colon + 1)...], defaultIndex: index), at: index)
    }

    /// `mod:path=perm[+attr…]` (`au_fsctx_parse_mod`).
    private mutating func parseModify(_ value: ArraySlice<UInt8>, text: String) throws(UnionMountError) {
        guard let equals = value.firstIndex(of: AufsGrammar.equals) else {
            throw UnionMountError.malformed("mod needs <path>=<permission>", input: text)
        }
        let index = try indexOfBranch(value[..<equals], text: text)
        let (permission, attributes) = try Self.permission(value[(equals + 1)...], branch: text)
        branches[index].permission = permission
        branches[index].attributes = attributes
    }

    private func indexOfBranch(_ path: ArraySlice<UInt8>, text: String) throws(UnionMountError) -> Int {
        let wanted = FilePath(bytes: path)
        guard let index = branches.firstIndex(where: { $0.path == wanted }) else {
            throw UnionMountError.malformed("no branch \(wanted.readable) to change", input: text)
        }
        return index
    }

    /// One branch, `path[=perm[+attr…]]`, split at the first `=` (`au_opt_add`).
    private static func branch(_ element: ArraySlice<UInt8>, defaultIndex: Int) throws(UnionMountError)
        -> AufsBranch
    {
        let text = Array(element).readable
        let equals = element.firstIndex(of: AufsGrammar.equals)
        let path = element[..<(equals ?? element.endIndex)]
        guard !path.isEmpty else {
            throw UnionMountError.malformed("branch \(text.debugDescription) has an empty path", input: text)
        }
        guard let equals else {
            return AufsBranch(FilePath(bytes: path), defaultIndex == 0 ? .readWrite : .readOnly)
        }
        let (permission, attributes) = try permission(element[(equals + 1)...], branch: text)
        return AufsBranch(FilePath(bytes: path), permission, attributes: attributes)
    }

    /// `perm[+attr…]`; empty means `ro`, as in `au_opt_add`.
    private static func permission(_ text: ArraySlice<UInt8>, branch: String) throws(UnionMountError)
        -> (AufsBranch.Permission, [AufsBranch.Attribute])
    {
        guard !text.isEmpty else { return (.readOnly, []) }
        let parts = text.split(separator: AufsGrammar.plus, omittingEmptySubsequences: false)
        let name = Array(parts[0]).readable
        guard let permission = AufsBranch.Permission(rawValue: name) else {
            throw UnionMountError.malformed(
                "branch \(branch.debugDescription) has the unknown permission \(name.debugDescription) "
                    + "(aufs would warn and use ro)",
                input: branch)
        }
        var attributes: [AufsBranch.Attribute] = []
        for part in parts.dropFirst() {
            let name = Array(part).readable
            guard let attribute = AufsBranch.Attribute(rawValue: name) else {
                throw UnionMountError.malformed(
                    "branch \(branch.debugDescription) has the unknown attribute \(name.debugDescription) "
                        + "(aufs would warn and ignore the rest)",
                    input: branch)
            }
            attributes.append(attribute)
        }
        return (permission, attributes)
    }

    /// `create=` through aufs' `au_wbr_create_policy` table, long names included.
    private static func createPolicy(_ value: ArraySlice<UInt8>, text: String) throws(UnionMountError)
        -> AufsOptions.CreatePolicy
    {
        let parts = value.split(separator: AufsGrammar.colon, omittingEmptySubsequences: false)
        let name = Array(parts[0]).readable
        var numbers: [Int] = []
        for part in parts.dropFirst() {
            guard let number = AufsGrammar.integer(part) else {
                throw UnionMountError.malformed("create= has a bad number in \(Array(value).readable)", input: text)
            }
            numbers.append(number)
        }
        let policy: AufsOptions.CreatePolicy? =
            switch (name, numbers.count) {
            case ("tdp", 0), ("top-down-parent", 0): .topDownParent
            case ("rr", 0), ("round-robin", 0): .roundRobin
            case ("mfs", 0), ("most-free-space", 0): .mostFreeSpace(seconds: nil)
            case ("mfs", 1), ("most-free-space", 1): .mostFreeSpace(seconds: numbers[0])
            case ("tdmfs", 1): .topDownMostFreeSpace(lowWatermark: numbers[0], seconds: nil)
            case ("tdmfs", 2): .topDownMostFreeSpace(lowWatermark: numbers[0], seconds: numbers[1])
            case ("mfsrr", 1): .mostFreeSpaceRoundRobin(lowWatermark: numbers[0], seconds: nil)
            case ("mfsrr", 2): .mostFreeSpaceRoundRobin(lowWatermark: numbers[0], seconds: numbers[1])
            case ("pmfs", 0): .parentMostFreeSpace(seconds: nil)
            case ("pmfs", 1): .parentMostFreeSpace(seconds: numbers[0])
            case ("pmfsrr", 1): .parentMostFreeSpaceRoundRobin(lowWatermark: numbers[0], seconds: nil)
            case ("pmfsrr", 2): .parentMostFreeSpaceRoundRobin(lowWatermark: numbers[0], seconds: numbers[1])
            default: nil
            }
        guard let policy else {
            throw UnionMountError.malformed(
                "unknown create policy \(Array(value).readable.debugDescription)", input: text)
        }
        return policy
    }

    private static func required(_ value: ArraySlice<UInt8>?, _ key: String, _ text: String) throws(UnionMountError)
        -> ArraySlice<UInt8>
    {
        guard let value, !value.isEmpty else {
            throw UnionMountError.malformed("aufs option \(key) needs a value", input: text)
        }
        return value
    }

    private static func noValue(_ value: ArraySlice<UInt8>?, _ key: String, _ text: String) throws(UnionMountError) {
        guard value == nil else {
            throw UnionMountError.malformed("aufs option \(key) takes no value", input: text)
        }
    }

    private static func string(_ value: ArraySlice<UInt8>, _ text: String) throws(UnionMountError) -> String {
        guard let string = String(validating: value, as: UTF8.self) else {
            throw UnionMountError.malformed("aufs option value is not UTF-8", input: text)
        }
        return string
    }

    /// A number, or `def` for aufs' default (`rdblk=def`, `rdhash=def`).
    private static func number(_ value: ArraySlice<UInt8>, _ text: String, orDefault defaultValue: Int)
        throws(UnionMountError) -> Int
    {
        if value.elementsEqual("def".utf8) { return defaultValue }
        return try number(value, text)
    }

    private static func number(_ value: ArraySlice<UInt8>, _ text: String) throws(UnionMountError) -> Int {
        guard let number = AufsGrammar.integer(value) else {
            throw UnionMountError.malformed("aufs option value is not an integer", input: text)
        }
        return number
    }
}
