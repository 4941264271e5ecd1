import SystemPackage

extension OverlaySpec {
    /// Checks the spec against the rules overlayfs enforces, before any system call is made.
    ///
    /// The checks mirror what `fs/overlayfs/params.c` (`ovl_parse_param`, `ovl_fs_params_verify`) and
    /// `fs/overlayfs/super.c` (`ovl_get_lowerstack`, `ovl_get_workdir`) refuse, as far as they can be decided
    /// from the spec's bytes alone; everything that needs the filesystem (existence, same mount, overlapping
    /// layers through symlinks or relative paths) is left to the kernel and to ``Diagnosis``.
    ///
    /// Rules, in the order they are checked; the thrown error has code ``UnionMountError/Code/invalidSpec``
    /// and ``UnionMountError/input`` names the offending field:
    ///
    /// - At least one lower layer (`lowerDirectories`); data-only layers need one too (`dataDirectories[0]`).
    /// - No empty path (`lowerDirectories[i]`, `dataDirectories[i]`, `upperDirectory`, `workDirectory`).
    ///   Relative paths are allowed: the kernel resolves them against the caller's working directory.
    /// - An upper directory needs a work directory and a work directory needs an upper one (both reported
    ///   on `workDirectory`; the kernel says "missing 'workdir'", or silently ignores a lone workdir).
    /// - At most ``maximumLayerCount`` lower plus data-only layers (`OVL_MAX_STACK`); `input` names the first
    ///   layer over the limit and the message gives the count.
    /// - Without an upper directory, at least two layers (`lowerDirectories`): "at least 2 lowerdir are
    ///   needed while upperdir nonexistent". Like the kernel's `ctx->nr`, data-only layers count, so one
    ///   lower plus one data-only layer (a composefs-style mount) is accepted.
    /// - No directory named twice, by equal bytes, across lower, data, upper and work; `input` is the later
    ///   field and the message names both (the kernel answers `ELOOP`).
    /// - The work directory is not inside the upper directory nor the other way round, compared by path
    ///   components (`/a` is not inside `/ab`): "workdir and upperdir must be separate subtrees".
    /// - No NUL byte in ``source``.
    /// - Each raw option in ``OverlayOptions/additional`` (`options.additional[i]`): a non-empty key without
    ///   NUL, `,`, `=` or `\`; a value without NUL or `,` that does not end in an unpaired `\` (which would
    ///   escape the comma after it, `ovl_next_opt`); and no key the spec models elsewhere — the layer keys
    ///   `lowerdir`, `lowerdir+`, `datadir+`, `upperdir`, `workdir`, every typed option key of
    ///   ``OverlayOptions`` (including `nooverride_creds`) and `source` — so that layers and typed options
    ///   cannot be smuggled past these checks.
    /// - Typed options the kernel refuses together (`input` names the first option of the kernel's
    ///   "conflicting options: a,b" message):
    ///   `nfsExport == true` with `index == false` (`options.nfsExport`);
    ///   `nfsExport == true` with `metacopy == true` (`options.nfsExport`);
    ///   `metacopy == true` with `redirectDirectory == .nofollow`, or, with an upper directory, `.off` or
    ///   `.follow` (`options.metacopy`);
    ///   `userXattr == true` with `metacopy == true` or `redirectDirectory` `.on`/`.follow`
    ///   (`options.userXattr`);
    ///   `volatile` with an `fsync` other than `.volatile` (`options.volatile`; the kernel takes the last of
    ///   the two silently, so the spec is ambiguous).
    ///
    /// Not checked: combinations whose outcome depends on module parameters (`redirect_dir=off` resolves
    /// through `redirect_always_follow`), nested lower layers (the kernel's `ELOOP` needs real paths), and the
    /// size of the option string (the planner's job, see ``legacyOptionLimit``).
    ///
    /// A spec that passes can be turned into a mount(2) string with ``legacyOptionString(relativeTo:)``; the
    /// string parses back to the same spec except that ``source`` is not part of it and
    /// `options.userXattr == false` reads back as `nil` (see ``init(legacyOptionString:)``).
    ///
    /// - Throws: ``UnionMountError`` with code ``UnionMountError/Code/invalidSpec``.
    public func validate() throws(UnionMountError) {
        try validateLayerCounts()
        try validateLayerPaths()
        try validateSource()
        try validateRawOptions()
        try validateOptionConflicts()
    }

    /// A directory field of the spec; its name (`lowerDirectories[3]`) is only formatted for an error.
    enum DirectoryField: Equatable {
        case lower(Int), data(Int), upper, work

        /// The field's name as errors show it.
        var name: String {
            switch self {
            case .lower(let index): "lowerDirectories[\(index)]"
            case .data(let index): "dataDirectories[\(index)]"
            case .upper: "upperDirectory"
            case .work: "workDirectory"
            }
        }
    }

    /// Every directory of the spec with its field, in order: lower, data, upper, work.
    var namedDirectories: [(field: DirectoryField, path: FilePath)] {
        var result: [(field: DirectoryField, path: FilePath)] = []
        result.reserveCapacity(lowerDirectories.count + dataDirectories.count + 2)
        for (index, path) in lowerDirectories.enumerated() { result.append((.lower(index), path)) }
        for (index, path) in dataDirectories.enumerated() { result.append((.data(index), path)) }
        if let upperDirectory { result.append((.upper, upperDirectory)) }
        if let workDirectory { result.append((.work, workDirectory)) }
        return result
    }

    /// The option keys a raw option may not use: the layer keys, every typed key and `source`.
    static let reservedOptionKeys: Set<String> = [
        "lowerdir", "lowerdir+", "datadir+", "upperdir", "workdir",
        "default_permissions", "redirect_dir", "index", "nfs_export", "xino", "metacopy", "volatile",
        "userxattr", "uuid", "verity", "fsync", "override_creds", "nooverride_creds",
        "source",
    ]

    private func validateLayerCounts() throws(UnionMountError) {
        if lowerDirectories.isEmpty {
            if !dataDirectories.isEmpty {
                throw .invalidSpec(
                    "data-only layers need at least one lower layer (\"at least one non-data lowerdir is required\")",
                    input: "dataDirectories[0]")
            }
            throw .invalidSpec(
                "at least one lower layer is needed (\"missing 'lowerdir'\")", input: "lowerDirectories")
        }
        let layerCount = lowerDirectories.count + dataDirectories.count
        if layerCount > Self.maximumLayerCount {
            let first = Self.maximumLayerCount
            let field =
                first < lowerDirectories.count
                ? "lowerDirectories[\(first)]"
                : "dataDirectories[\(first - lowerDirectories.count)]"
            throw .invalidSpec(
                "\(layerCount) lower and data-only layers, the limit is \(Self.maximumLayerCount) (OVL_MAX_STACK)",
                input: field)
        }
    }

    private func validateLayerPaths() throws(UnionMountError) {
        let named = namedDirectories
        for entry in named where entry.path.isEmpty {
            throw .invalidSpec("the path is empty", input: entry.field.name)
        }
        switch (upperDirectory, workDirectory) {
        case (.some, nil):
            throw .invalidSpec(
                "an upper directory needs a work directory (\"missing 'workdir'\")", input: "workDirectory")
        case (nil, .some):
            throw .invalidSpec("a work directory is only used with an upper directory", input: "workDirectory")
        default:
            break
        }
        if upperDirectory == nil && lowerDirectories.count + dataDirectories.count < 2 {
            throw .invalidSpec(
                "at least 2 lower layers are needed without an upper directory", input: "lowerDirectories")
        }
        if let (earlier, later) = Self.firstDuplicate(named.map(\.path)) {
            throw .invalidSpec(
                "\(named[later].field.name) is the same directory as \(named[earlier].field.name) "
                    + "(\(named[later].path.readable))",
                input: named[later].field.name)
        }
        if let upperDirectory, let workDirectory {
            let upper = upperDirectory.bytes
            let work = workDirectory.bytes
            if OverlayPathComponents.isStrictlyInside(work, upper) {
                throw .invalidSpec(
                    "the work directory is inside the upper directory "
                        + "(\"workdir and upperdir must be separate subtrees\")",
                    input: "workDirectory")
            }
            if OverlayPathComponents.isStrictlyInside(upper, work) {
                throw .invalidSpec(
                    "the upper directory is inside the work directory "
                        + "(\"workdir and upperdir must be separate subtrees\")",
                    input: "upperDirectory")
            }
        }
    }

    /// The indices of the first path equal to an earlier one: pairwise for a few paths (no allocation), by
    /// hashing for many (validation runs on every mount, with up to 502 directories).
    private static func firstDuplicate(_ paths: [FilePath]) -> (earlier: Int, later: Int)? {
        if paths.count <= 16 {
            for later in paths.indices {
                for earlier in 0..<later where paths[earlier] == paths[later] { return (earlier, later) }
            }
            return nil
        }
        var seen: [PathKey: Int] = [:]
        seen.reserveCapacity(paths.count)
        for (index, path) in paths.enumerated() {
            if let earlier = seen.updateValue(index, forKey: PathKey(path)) { return (earlier, index) }
        }
        return nil
    }

    private func validateSource() throws(UnionMountError) {
        if source.utf8.contains(0) {
            throw .invalidSpec("the source contains a NUL byte", input: "source")
        }
    }

    private func validateRawOptions() throws(UnionMountError) {
        for (index, option) in options.additional.enumerated() {
            let field = "options.additional[\(index)]"
            let key = Array(option.key.utf8)
            if key.isEmpty { throw .invalidSpec("the option key is empty", input: field) }
            if key.contains(0) { throw .invalidSpec("the option key contains a NUL byte", input: field) }
            if key.contains(OverlayEscaping.comma) {
                throw .invalidSpec("the option key contains ',', which would start another option", input: field)
            }
            if key.contains(OverlayEscaping.equals) {
                throw .invalidSpec("the option key contains '=', which would start its value", input: field)
            }
            if key.contains(OverlayEscaping.backslash) {
                throw .invalidSpec("the option key contains '\\', which would escape the separator", input: field)
            }
            if Self.reservedOptionKeys.contains(option.key) {
                throw .invalidSpec(
                    "'\(option.key)' is set through the spec's own fields, not as a raw option", input: field)
            }
            guard let value = option.value.map({ Array($0.utf8) }) else { continue }
            if value.contains(0) { throw .invalidSpec("the option value contains a NUL byte", input: field) }
            if value.contains(OverlayEscaping.comma) {
                throw .invalidSpec("the option value contains ',', which would start another option", input: field)
            }
            let trailingBackslashes = value.reversed().prefix { $0 == OverlayEscaping.backslash }.count
            if trailingBackslashes % 2 == 1 {
                throw .invalidSpec(
                    "the option value ends in an unpaired '\\', which would escape the next separator", input: field)
            }
        }
    }

    private func validateOptionConflicts() throws(UnionMountError) {
        let options = self.options
        if options.nfsExport == true && options.index == false {
            throw .invalidSpec("conflicting options: nfs_export=on,index=off", input: "options.nfsExport")
        }
        if options.nfsExport == true && options.metacopy == true {
            throw .invalidSpec("conflicting options: nfs_export=on,metacopy=on", input: "options.nfsExport")
        }
        if options.metacopy == true, let redirect = options.redirectDirectory {
            // Without an upper directory `follow` is promoted to `on`; `off` depends on redirect_always_follow.
            let conflicts =
                redirect == .nofollow
                || (upperDirectory != nil && (redirect == .off || redirect == .follow))
            if conflicts {
                throw .invalidSpec(
                    "conflicting options: metacopy=on,redirect_dir=\(redirect.rawValue)", input: "options.metacopy")
            }
        }
        if options.userXattr == true {
            if options.metacopy == true {
                throw .invalidSpec("conflicting options: userxattr,metacopy=on", input: "options.userXattr")
            }
            if let redirect = options.redirectDirectory, redirect == .on || redirect == .follow {
                throw .invalidSpec(
                    "conflicting options: userxattr,redirect_dir=\(redirect.rawValue)", input: "options.userXattr")
            }
        }
        if options.volatile, let fsync = options.fsync, fsync != .volatile {
            throw .invalidSpec(
                "conflicting options: volatile,fsync=\(fsync.rawValue) (volatile means fsync=volatile)",
                input: "options.volatile")
        }
    }
}

/// Path comparison by components over raw bytes, as the kernel's path walk sees them: `/a` is not inside `/ab`.
///
/// Components are the non-empty runs between `/`; a path starting with `/` is rooted. A rooted and a relative
/// path are never inside each other (the relative one depends on the working directory).
enum OverlayPathComponents {
    /// Whether the path starts with `/`, and its non-empty components.
    static func split(_ path: [UInt8]) -> (rooted: Bool, components: [ArraySlice<UInt8>]) {
        let slash = UInt8(ascii: "/")
        let rooted = path.first == slash
        let components = path.split(separator: slash, omittingEmptySubsequences: true)
        return (rooted, components)
    }

    /// The components of `path` after those of `base`, or `nil` when `path` is neither `base` nor inside it.
    static func components(of path: [UInt8], after base: [UInt8]) -> [ArraySlice<UInt8>]? {
        let path = split(path)
        let base = split(base)
        guard path.rooted == base.rooted, path.components.count >= base.components.count else { return nil }
        for (own, other) in zip(path.components, base.components) where !own.elementsEqual(other) { return nil }
        return Array(path.components.dropFirst(base.components.count))
    }

    /// Whether `path` lies strictly below `base`, compared component by component without allocating
    /// (validation runs on every mount).
    static func isStrictlyInside(_ path: [UInt8], _ base: [UInt8]) -> Bool {
        let slash = UInt8(ascii: "/")
        guard (path.first == slash) == (base.first == slash) else { return false }
        func nextComponent(_ bytes: [UInt8], _ index: inout Int) -> Range<Int>? {
            while index < bytes.count && bytes[index] == slash { index += 1 }
            guard index < bytes.count else { return nil }
            let start = index
            while index < bytes.count && bytes[index] != slash { index += 1 }
            return start..<index
        }
        var pathIndex = 0
        var baseIndex = 0
        while let component = nextComponent(base, &baseIndex) {
            guard let own = nextComponent(path, &pathIndex), path[own].elementsEqual(base[component]) else {
                return false
            }
        }
        return nextComponent(path, &pathIndex) != nil
    }
}
