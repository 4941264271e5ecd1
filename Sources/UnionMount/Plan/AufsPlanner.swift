import SystemPackage

extension MountPlan {
    /// The most option slots any one aufs mount(2) or remount may carry: 84, the slots of one page of
    /// `struct au_opt` on x86-64. More branches in one `br:` list crash the aufs kernel (an oops, seen on aufs6.1);
    /// more `append:` verbs give `E2BIG`.
    public static let maximumAufsOptionSlots = 84

    /// Plans an aufs mount as mount(2) calls that each fit what the kernel reads in one call.
    ///
    /// The first call is `mount("none", target, "aufs", flags, "br:<b0>:<b1>…,<options>")`; every further call is
    /// `mount("none", target, "aufs", flags ∪ MS_REMOUNT, "append:<bN>,append:<bN+1>,…")`. This is the scheme of
    /// Docker's `aufsMount` (moby `daemon/graphdriver/aufs/aufs.go`), with both limits computed instead of
    /// Docker's fixed reserve:
    ///
    /// - **Bytes.** mount(2) copies one page of data and the kernel forces its last byte to NUL, so each call's data
    ///   is at most `pageSize - 1` bytes (4095); longer data would be cut silently.
    /// - **Option slots.** aufs parses one call into a page of `struct au_opt` (`aufs_fsctx_init`:
    ///   `PAGE_SIZE / sizeof(struct au_opt)` slots, the last kept for the terminator: 84 usable on x86-64). Past
    ///   them it does not fail cleanly: on a real aufs6.1 kernel, 85 `append:` verbs in one remount give `E2BIG`,
    ///   but 85 or more branches in one `br:` list crash the kernel (an oops in the option parser). So no call
    ///   ever carries more than 84 slots, whatever its byte count: `optionSlotsPerCall` may lower the limit, never
    ///   raise it. Each branch of a `br:` list and each `append:` takes one slot, every other option one slot
    ///   (counted conservatively: aufs skips ignored options such as `si=`, which the library does not emit).
    ///
    /// Branch 0 is the top branch and must be in the first call; the first call takes as many following branches
    /// as fit, and the options, which are sent only once. The rest are appended in order: aufs applies `append:`
    /// verbs left to right, each after the current last branch, so the final branch order is the spec's.
    ///
    /// - Parameters:
    ///   - spec: the aufs spec; it is validated first.
    ///   - target: the mount point.
    ///   - flags: `MS_*` flags for the first call; remounts add `MS_REMOUNT`.
    ///   - pageSize: the kernel's page size (`sysconf(_SC_PAGESIZE)`).
    ///   - optionSlotsPerCall: aufs' per-call option limit, at most ``maximumAufsOptionSlots``.
    /// - Returns: a plan with strategy ``MountStrategy/aufs`` and one
    ///   ``MountStep/mount(source:target:filesystemType:flags:data:workingDirectory:)`` per call.
    /// - Throws: ``UnionMountError`` with ``UnionMountError/Code/invalidArgument`` for `optionSlotsPerCall` outside
    ///   1…84, ``UnionMountError/Code/invalidSpec`` for an invalid spec, or
    ///   ``UnionMountError/Code/optionsTooLong`` (needed and allowed counts in the message) when branch 0 with the
    ///   options, or one appended branch, does not fit a call.
    public static func aufs(
        _ spec: AufsSpec,
        target: FilePath,
        flags: MountFlags = [],
        pageSize: Int = 4096,
        optionSlotsPerCall: Int = 84
    ) throws(UnionMountError) -> MountPlan {
        guard (1...maximumAufsOptionSlots).contains(optionSlotsPerCall) else {
            throw UnionMountError.invalidArgument(
                "aufs takes at most \(maximumAufsOptionSlots) option slots per call (more branches in one br: list "
                    + "crash the kernel), not \(optionSlotsPerCall)", input: "optionSlotsPerCall")
        }
        try spec.validate()
        let byteLimit = pageSize - 1
        let branches = spec.branches.map(\.optionBytes)
        let options = spec.options.optionBytes

        func tooLong(_ message: String, input: String) -> UnionMountError {
            UnionMountError(code: .optionsTooLong, message: message, input: input, spec: .aufs(spec))
        }

        // First call: `br:` + branch 0 [+ `:` + branch i …] + (`,` + option)…
        var data = Array("br:".utf8) + branches[0]
        let optionsLength = options.reduce(0) { $0 + 1 + $1.count }
        let firstLength = data.count + optionsLength
        guard firstLength <= byteLimit else {
            throw tooLong(
                "the first aufs mount call needs \(firstLength) bytes (br: with branch 0 and \(options.count) "
                    + "options) but mount(2) takes at most \(byteLimit) (page size \(pageSize) minus the final NUL)",
                input: "branches[0]")
        }
        guard 1 + options.count <= optionSlotsPerCall else {
            throw tooLong(
                "the first aufs mount call needs \(1 + options.count) option slots (branch 0 and \(options.count) "
                    + "options) but aufs takes at most \(optionSlotsPerCall) per call (E2BIG); its \(firstLength) "
                    + "bytes fit the allowed \(byteLimit)",
                input: "options")
        }
        var length = firstLength
        var next = 1
        while next < branches.count, length + 1 + branches[next].count <= byteLimit,
            next + 1 + options.count <= optionSlotsPerCall
        {
            data.append(AufsGrammar.colon)
            data += branches[next]
            length += 1 + branches[next].count
            next += 1
        }
        for option in options {
            data.append(AufsGrammar.comma)
            data += option
        }
        var steps: [MountStep] = [
            .mount(
                source: "none", target: target, filesystemType: "aufs", flags: flags, data: data, workingDirectory: nil)
        ]

        // Remounts: `append:<branch>` joined by `,`, each call within both limits.
        let prefix = Array("append:".utf8)
        let remountFlags = flags.union(.remount)
        var batch: [UInt8] = []
        var batchCount = 0
        func flush() {
            guard batchCount > 0 else { return }
            steps.append(
                .mount(
                    source: "none", target: target, filesystemType: "aufs", flags: remountFlags, data: batch,
                    workingDirectory: nil))
            batch = []
            batchCount = 0
        }
        while next < branches.count {
            let verbLength = prefix.count + branches[next].count
            guard verbLength <= byteLimit else {
                throw tooLong(
                    "appending branch \(next) needs \(verbLength) bytes (append:<branch>) but mount(2) takes at most "
                        + "\(byteLimit) (page size \(pageSize) minus the final NUL)",
                    input: "branches[\(next)]")
            }
            let separator = batchCount > 0 ? 1 : 0
            if batch.count + separator + verbLength > byteLimit || batchCount + 1 > optionSlotsPerCall {
                flush()
            }
            if batchCount > 0 { batch.append(AufsGrammar.comma) }
            batch += prefix + branches[next]
            batchCount += 1
            next += 1
        }
        flush()
        return MountPlan(strategy: .aufs, spec: .aufs(spec), steps: steps)
    }
}
