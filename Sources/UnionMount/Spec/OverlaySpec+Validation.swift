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
        try idMapping?.validate()
    }

    /// How many directories the spec names: lower, data-only, upper and work.
    var directoryCount: Int {
        lowerDirectories.count + dataDirectories.count + (upperDirectory == nil ? 0 : 1)
            + (workDirectory == nil ? 0 : 1)
    }

    /// The field of the directory at `index` in the order lower, data-only, upper, work.
    func directoryField(at index: Int) -> DirectoryField {
        if index < lowerDirectories.count { return .lower(index) }
        let dataIndex = index - lowerDirectories.count
        if dataIndex < dataDirectories.count { return .data(dataIndex) }
        return dataIndex == dataDirectories.count && upperDirectory != nil ? .upper : .work
    }

    /// The path of one directory field; the field must exist in this spec.
    func directory(_ field: DirectoryField) -> FilePath {
        switch field {
        case .lower(let index): lowerDirectories[index]
        case .data(let index): dataDirectories[index]
        case .upper: upperDirectory!
        case .work: workDirectory!
        }
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

    /// The option keys a raw option may not use: the layer keys, every typed key and `source`.
    static let reservedOptionKeys: Set<String> = Set(
        ["lowerdir", "lowerdir+", "datadir+", "upperdir", "workdir", "source"] + OverlayOptions.table.flatMap(\.keys))

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
        // A path is empty when its bytes are only the NUL; the first empty one, in field order, is reported.
        var empty: Int? = nil
        _ = lowerDirectories.allNulTerminatedBytes { index, bytes in
            if bytes.count == 1 { empty = index }
            return empty == nil
        }
        if empty == nil {
            _ = dataDirectories.allNulTerminatedBytes { index, bytes in
                if bytes.count == 1 { empty = lowerDirectories.count + index }
                return empty == nil
            }
        }
        if empty == nil, upperDirectory?.isEmpty == true { empty = lowerDirectories.count + dataDirectories.count }
        if empty == nil, workDirectory?.isEmpty == true { empty = directoryCount - 1 }
        if let empty {
            throw .invalidSpec("the path is empty", input: directoryField(at: empty).name)
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
        if let (earlier, later) = firstDuplicateDirectory() {
            let laterName = directoryField(at: later).name
            throw .invalidSpec(
                "\(laterName) is the same directory as \(directoryField(at: earlier).name) "
                    + "(\(directory(directoryField(at: later)).readable))",
                input: laterName)
        }
        if let upperDirectory, let workDirectory {
            switch OverlayPathComponents.nesting(workDirectory, upperDirectory) {
            case .firstInsideSecond:
                throw .invalidSpec(
                    "the work directory is inside the upper directory "
                        + "(\"workdir and upperdir must be separate subtrees\")",
                    input: "workDirectory")
            case .secondInsideFirst:
                throw .invalidSpec(
                    "the upper directory is inside the work directory "
                        + "(\"workdir and upperdir must be separate subtrees\")",
                    input: "upperDirectory")
            case .separate, .same:
                break
            }
        }
    }

    /// The indices (in ``directoryField(at:)`` order) of the first directory equal to an earlier one, by bytes:
    /// pairwise for a few, through an open-addressing table of hashes in a temporary buffer for many. The bytes
    /// are read in place (no copy, no per-path allocation, no SipHash): validation runs on every mount, with up
    /// to 502 directories.
    func firstDuplicateDirectory() -> (earlier: Int, later: Int)? {
        let count = directoryCount
        if count <= 16 {
            for later in 0..<count {
                let path = directory(directoryField(at: later))
                for earlier in 0..<later where ByteHash.equal(directory(directoryField(at: earlier)), path) {
                    return (earlier, later)
                }
            }
            return nil
        }
        var capacity = 64
        while capacity < 2 * count { capacity *= 2 }
        let mask = capacity - 1
        // A slot holds 22 bits of the hash above the index bits and the index + 1 (at most 1,023); 0 is empty.
        let indexBits: UInt32 = 0x3FF
        precondition(count < Int(indexBits), "more directories than the duplicate table indexes")
        return ByteHash.withZeroedSlots(capacity) { slots in
            // Inserts the directory at `later`; the earlier index when its bytes are already there. Not inlined:
            // one copy of this code for the four kinds of directory keeps the mount path's code small.
            @inline(never) func insert(_ later: Int, _ terminated: UnsafeBufferPointer<UInt8>) -> Int? {
                let bytes = terminated.withoutNul
                let hash = ByteHash.hash(UnsafeRawBufferPointer(bytes))
                let tag = UInt32(truncatingIfNeeded: hash >> 32) & ~indexBits
                var slot = Int(truncatingIfNeeded: hash) & mask
                while slots[slot] != 0 {
                    let entry = slots[slot]
                    if entry & ~indexBits == tag {
                        let earlier = Int(entry & indexBits) - 1
                        let same = directory(directoryField(at: earlier)).withNulTerminatedBytes {
                            $0.count == terminated.count
                                && bytesEqual($0.baseAddress!, terminated.baseAddress!, count: $0.count)
                        }
                        if same { return earlier }
                    }
                    slot = (slot + 1) & mask
                }
                slots[slot] = tag | UInt32(later + 1)
                return nil
            }
            var found: (earlier: Int, later: Int)? = nil
            let layers = lowerDirectories.count
            _ =
                lowerDirectories.allNulTerminatedBytes { index, bytes in
                    found = insert(index, bytes).map { ($0, index) }
                    return found == nil
                }
                && dataDirectories.allNulTerminatedBytes { index, bytes in
                    found = insert(layers + index, bytes).map { ($0, layers + index) }
                    return found == nil
                }
            var next = layers + dataDirectories.count
            if found == nil, let upperDirectory {
                let index = next
                found = upperDirectory.withNulTerminatedBytes { insert(index, $0) }.map { ($0, index) }
                next += 1
            }
            if found == nil, let workDirectory {
                let index = next
                found = workDirectory.withNulTerminatedBytes { insert(index, $0) }.map { ($0, index) }
            }
            return found
        }
    }

    private func validateSource() throws(UnionMountError) {
        var source = self.source
        if source.withUTF8({ $0.count > 0 && byteOffset(of: 0, in: $0.baseAddress!, count: $0.count) != nil }) {
            throw .invalidSpec("the source contains a NUL byte", input: "source")
        }
    }

    private func validateRawOptions() throws(UnionMountError) {
        for (index, option) in options.additional.enumerated() {
            let field = "options.additional[\(index)]"
            let key = Array(option.key.utf8)
            if key.isEmpty { throw .invalidSpec("the option key is empty", input: field) }
            if key.contains(0) { throw .invalidSpec("the option key contains a NUL byte", input: field) }
            if key.contains(OverlayGrammar.comma) {
                throw .invalidSpec("the option key contains ',', which would start another option", input: field)
            }
            if key.contains(OverlayGrammar.equals) {
                throw .invalidSpec("the option key contains '=', which would start its value", input: field)
            }
            if key.contains(OverlayGrammar.backslash) {
                throw .invalidSpec("the option key contains '\\', which would escape the separator", input: field)
            }
            if Self.reservedOptionKeys.contains(option.key) {
                throw .invalidSpec(
                    "'\(option.key)' is set through the spec's own fields, not as a raw option", input: field)
            }
            guard let value = option.value.map({ Array($0.utf8) }) else { continue }
            if value.contains(0) { throw .invalidSpec("the option value contains a NUL byte", input: field) }
            if value.contains(OverlayGrammar.quote) {
                guard OverlayGrammar.quotableKeys.contains(option.key) else {
                    throw .invalidSpec(
                        "the option value contains '\"', which only context=, fscontext=, defcontext= and "
                            + "rootcontext= may use, around the whole value", input: field)
                }
                guard OverlayGrammar.isQuoted(value) else {
                    throw .invalidSpec(
                        "the option value has an unterminated or embedded '\"'; quote the whole value once",
                        input: field)
                }
            } else if value.contains(OverlayGrammar.comma) {
                throw .invalidSpec("the option value contains ',', which would start another option", input: field)
            }
            let trailingBackslashes = value.reversed().prefix { $0 == OverlayGrammar.backslash }.count
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
        nesting(path, base) == .firstInsideSecond
    }

    /// How two paths nest, by components.
    enum Nesting: Equatable {
        /// Neither is the other nor inside it.
        case separate
        /// The same components.
        case same
        /// The first path lies strictly below the second.
        case firstInsideSecond
        /// The second path lies strictly below the first.
        case secondInsideFirst
    }

    /// How two paths nest, by their bytes read in place.
    static func nesting(_ first: FilePath, _ second: FilePath) -> Nesting {
        first.withNulTerminatedBytes { first in
            second.withNulTerminatedBytes { second in
                nesting(first.withoutNul, second.withoutNul)
            }
        }
    }

    /// How `first` and `second` nest, in one pass over both (components found with memchr, compared with
    /// memcmp). A rooted and a relative path are always separate.
    static func nesting(_ first: [UInt8], _ second: [UInt8]) -> Nesting {
        first.withUnsafeBufferPointer { first in
            second.withUnsafeBufferPointer { second in nesting(first, second) }
        }
    }

    private static func nesting(_ first: UnsafeBufferPointer<UInt8>, _ second: UnsafeBufferPointer<UInt8>) -> Nesting {
        let slash = UInt8(ascii: "/")
        guard (first.first == slash) == (second.first == slash) else { return .separate }
        func nextComponent(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) -> Range<Int>? {
            while index < bytes.count && bytes[index] == slash { index += 1 }
            guard index < bytes.count else { return nil }
            let start = index
            if let found = byteOffset(of: slash, in: bytes.baseAddress! + index, count: bytes.count - index) {
                index += found
            } else {
                index = bytes.count
            }
            return start..<index
        }
        var firstIndex = 0
        var secondIndex = 0
        while true {
            switch (nextComponent(first, &firstIndex), nextComponent(second, &secondIndex)) {
            case (nil, nil): return .same
            case (.some, nil): return .firstInsideSecond
            case (nil, .some): return .secondInsideFirst
            case (.some(let own), .some(let other)):
                guard own.count == other.count,
                    bytesEqual(
                        first.baseAddress! + own.lowerBound, second.baseAddress! + other.lowerBound, count: own.count)
                else { return .separate }
            }
        }
    }
}

extension UInt64 {
    fileprivate func rotated(by count: UInt64) -> UInt64 { (self << count) | (self >> (64 - count)) }
}

/// A fast, unkeyed hash and equality over byte strings, for duplicate checks within one spec (at most a few
/// hundred paths of the caller's own, so no flooding concern).
enum ByteHash {
    /// A 64-bit hash of the bytes, eight at a time.
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15
        let count = bytes.count
        var hash: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(count)
        if count < 8 {
            var word: UInt64 = 0
            for offset in 0..<count { word |= UInt64(bytes[offset]) << (8 * UInt64(offset)) }
            hash = (hash ^ word) &* multiplier
        } else {
            var offset = 0
            while offset + 8 <= count {
                hash = ((hash ^ bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* multiplier)
                    .rotated(by: 29)
                offset += 8
            }
            // The last eight bytes, overlapping the words above when the count is not a multiple of eight.
            hash = (hash ^ bytes.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)) &* multiplier
        }
        hash ^= hash >> 29
        hash = hash &* 0xBF58_476D_1CE4_E5B9
        return hash ^ (hash >> 32)
    }

    /// Runs `body` with `capacity` (a power of two, at most 1,024) zeroed table slots on the stack
    /// (`withUnsafeTemporaryAllocation` would take the heap above 1 KiB).
    static func withZeroedSlots<R>(_ capacity: Int, _ body: (UnsafeMutableBufferPointer<UInt32>) -> R) -> R {
        precondition(capacity <= 1024, "duplicate table over 1,024 slots")
        if capacity <= 256 {
            return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: capacity) { slots in
                slots.initialize(repeating: 0)
                return body(slots)
            }
        }
        var table = InlineArray<1024, UInt32>(repeating: 0)
        var span = table.mutableSpan
        return span.withUnsafeMutableBufferPointer { body(UnsafeMutableBufferPointer(rebasing: $0[..<capacity])) }
    }

    /// Whether two paths have the same bytes (memcmp, in place).
    static func equal(_ lhs: FilePath, _ rhs: FilePath) -> Bool {
        lhs.withNulTerminatedBytes { left in
            rhs.withNulTerminatedBytes { right in
                left.count == right.count && bytesEqual(left.baseAddress!, right.baseAddress!, count: left.count)
            }
        }
    }
}
