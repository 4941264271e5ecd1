import SystemPackage

extension OverlaySpec {
    /// The most bytes a mount(2) data string may have and still reach the kernel whole: 4095.
    ///
    /// mount(2) copies the data argument as one page (`copy_mount_options`, PAGE_SIZE 4096 on the common
    /// architectures) and overlay's `parse_monolithic` reads it as a C string whose byte 4095 the kernel forces
    /// to NUL. Longer data is cut there **without an error**: layers, `upperdir` or `workdir` silently vanish
    /// and a writable overlay can come up read-only. So a string from ``legacyOptionString(relativeTo:)``
    /// (which has no trailing NUL) must be at most this long. That check is the caller's (the planner's):
    /// when the string is longer, write the paths relative to a base directory or use the new mount API.
    public static let legacyOptionLimit = 4095

    /// The exact data bytes for mount(2) with type `overlay`, without a trailing NUL.
    ///
    /// Layout, as overlay's legacy parser (`ovl_parse_monolithic`, `ovl_parse_param_lowerdir`) reads it:
    /// `lowerdir=<l0>:<l1>…` with the data-only layers appended as `::<d0>::<d1>…`, then
    /// `,upperdir=<u>,workdir=<w>` when the overlay is writable, then every typed option and raw option of
    /// ``options`` in the order of ``OverlayOptions`` as `,key` or `,key=value` (raw values as given). Every
    /// path goes through the legacy escaping (`\` → `\\`, `,` → `\,`, `:` → `\:`), so a path like
    /// `x,upperdir=/etc` stays one layer: `lowerdir=x\,upperdir=/etc`. Space, tab, newline, `#`, `=` and
    /// non-UTF-8 bytes need no escaping in mount(2) data and are written as they are.
    ///
    /// With a `base`, every path is written relative to it (no leading `/`; the base itself becomes `.`),
    /// for a mount(2) call made with `base` as the working directory — the kernel resolves relative layers
    /// against the caller's cwd. This is how long layer lists fit in ``legacyOptionLimit``.
    ///
    /// The spec is validated first (``validate()``). The length is **not** checked here; compare it with
    /// ``legacyOptionLimit``.
    ///
    /// - Parameter base: the directory the paths are written relative to, or `nil` for the paths as given.
    /// - Returns: the option bytes; ``init(legacyOptionString:)`` parses them back.
    /// - Throws: ``UnionMountError/Code/invalidSpec`` when the spec is invalid, when a path is not `base` nor
    ///   inside it (by path components; `input` names the field, `base` when the base itself is empty), or
    ///   when a path contains a `,` followed by an LSM mount option name (`context=`, `fscontext=`,
    ///   `defcontext=`, `rootcontext=`, `seclabel`, `smackfs…`): SELinux and Smack take their options out of
    ///   mount(2) data first (`security_sb_eat_lsm_opts`), splitting on every comma whether escaped or not,
    ///   so such a path would set a security label and corrupt the layer list. Use the new mount API for it.
    public func legacyOptionString(relativeTo base: FilePath? = nil) throws(UnionMountError) -> [UInt8] {
        try validate()
        return try validatedLegacyOptionString(relativeTo: base)
    }

    /// ``legacyOptionString(relativeTo:)`` for a spec already validated.
    func validatedLegacyOptionString(relativeTo base: FilePath? = nil) throws(UnionMountError) -> [UInt8] {
        var capacity = 64
        for index in 0..<directoryCount { capacity += directory(directoryField(at: index)).length + 2 }
        var sink: [UInt8] = []
        sink.reserveCapacity(capacity)
        try writeLegacyOptionString(relativeTo: base, into: &sink)
        return sink
    }

    /// Appends the bytes of ``legacyOptionString(relativeTo:)`` for a validated spec to `sink`. Each path's
    /// bytes are read in place and copied once; a path with nothing to escape is one bulk copy.
    private func writeLegacyOptionString(relativeTo base: FilePath?, into sink: inout [UInt8]) throws(UnionMountError) {
        let baseBytes = base?.bytes
        if let baseBytes, baseBytes.isEmpty {
            throw .invalidSpec("the base directory is empty", input: "base")
        }
        // Writes one path's bytes (and their NUL) escaped; the LSM option name instead when it has one.
        func write(_ terminated: UnsafeBufferPointer<UInt8>) -> String? {
            guard OverlayEscaping.needsEscaping(nulTerminated: terminated) else {
                sink.append(contentsOf: terminated.withoutNul)
                return nil
            }
            return Self.writeEscaped(Array(terminated.withoutNul), into: &sink)
        }
        // Writes the directory at `index` as written (relative to the base when there is one), escaped.
        func writeDirectory(_ index: Int) throws(UnionMountError) {
            let field = directoryField(at: index)
            let path = directory(field)
            var lsmOption: String?
            if let baseBytes {
                let bytes = path.bytes
                guard let rest = OverlayPathComponents.components(of: bytes, after: baseBytes) else {
                    throw .invalidSpec(
                        "\(bytes.readable) is not inside the base directory \(base?.readable ?? "")", input: field.name)
                }
                let relative = rest.isEmpty ? [UInt8(ascii: ".")] : Array(rest.joined(separator: [UInt8(ascii: "/")]))
                lsmOption = (relative + [0]).withUnsafeBufferPointer(write)
            } else {
                lsmOption = path.withNulTerminatedBytes(write)
            }
            if let lsmOption { throw Self.lsmRefusal(lsmOption, field: field) }
        }

        sink.append("lowerdir=")
        if baseBytes == nil {
            // The layers' bytes in place through their arrays' buffers: no copy, no reference counting.
            var refused: (name: String, index: Int)? = nil
            let layers = lowerDirectories.count
            _ =
                lowerDirectories.allNulTerminatedBytes { index, terminated in
                    if index > 0 { sink.append(":") }
                    refused = write(terminated).map { ($0, index) }
                    return refused == nil
                }
                && dataDirectories.allNulTerminatedBytes { index, terminated in
                    sink.append("::")
                    refused = write(terminated).map { ($0, layers + index) }
                    return refused == nil
                }
            if let refused { throw Self.lsmRefusal(refused.name, field: directoryField(at: refused.index)) }
        } else {
            for index in 0..<(lowerDirectories.count + dataDirectories.count) {
                if index >= lowerDirectories.count {
                    sink.append("::")
                } else if index > 0 {
                    sink.append(":")
                }
                try writeDirectory(index)
            }
        }
        if upperDirectory != nil, workDirectory != nil {
            let upperIndex = lowerDirectories.count + dataDirectories.count
            sink.append(",upperdir=")
            try writeDirectory(upperIndex)
            sink.append(",workdir=")
            try writeDirectory(upperIndex + 1)
        }
        for (key, value) in options.keyValues {
            sink.append(",")
            sink.append(contentsOf: key.utf8)
            if let value {
                sink.append("=")
                sink.append(contentsOf: value.utf8)
            }
        }
    }

    /// Writes one path escaped for the legacy grammar; a path with a `,` that starts an LSM option is not
    /// written, and the option's name is returned.
    private static func writeEscaped(_ path: [UInt8], into sink: inout [UInt8]) -> String? {
        if let name = lsmOptionAfterComma(in: path) { return name }
        sink.append(contentsOf: OverlayEscaping.escape(path))
        return nil
    }

    /// The refusal of a path with a `,` that SELinux/Smack would read as the start of an option.
    private static func lsmRefusal(_ name: String, field: DirectoryField) -> UnionMountError {
        .invalidSpec(
            "the path contains ',\(name)', which SELinux/Smack would take out of mount(2) data as a security "
                + "option; mount it with the new mount API",
            input: field.name)
    }

    /// Parses mount(2) data for overlay back into a spec, as the kernel's legacy parser reads it.
    ///
    /// Options are split on commas not escaped by a backslash (`ovl_next_opt`); empty options and options
    /// with an empty key are skipped, as `vfs_parse_monolithic_sep` does. Then, per key:
    ///
    /// - `lowerdir=`: split on unescaped `:` (next layer) and `::` (data-only layers follow), each layer
    ///   legacy-unescaped (`ovl_parse_param_split_lowerdirs`, `ovl_unescape`). A later `lowerdir=` replaces
    ///   all earlier layers, like the kernel; an empty value just clears them. A value that does not split
    ///   (leading `:`, trailing `:`, `:::`, a regular layer after a data-only one, an empty layer) throws.
    /// - `lowerdir+=`, `datadir+=`: one raw path each (no unescaping), appended in order. A `lowerdir+`
    ///   after a `datadir+` throws ("regular lower layers cannot follow data layers"), and so does mixing
    ///   either with `lowerdir=` in any order (the kernel refuses one order and silently drops the other).
    /// - `upperdir=`, `workdir=`: one legacy-unescaped path; the last one wins.
    /// - Every typed key of ``OverlayOptions``: `default_permissions`, `volatile`, `userxattr`,
    ///   `override_creds` and `nooverride_creds` are flags (a value throws, "Unexpected value"); `index`,
    ///   `nfs_export`, `metacopy` take `on`/`off`; `redirect_dir`, `xino`, `uuid`, `verity`, `fsync` take
    ///   their enum's values (anything else, or no value, throws, "Bad value"). The last occurrence wins.
    /// - Anything else goes to ``OverlayOptions/additional`` in order, key and value as written (backslashes
    ///   kept); such a key or value must be UTF-8.
    ///
    /// The result is not validated; call ``validate()`` to learn whether the kernel would mount it.
    ///
    /// Round trip: for every spec that passes ``validate()`` and for which
    /// ``legacyOptionString(relativeTo:)`` succeeds, `OverlaySpec(legacyOptionString: spec.legacyOptionString())`
    /// equals the spec, with two exceptions: ``source`` is not part of the string, so the result's source is
    /// always `"overlay"`; and `options.userXattr == false` is written as nothing (the kernel has no
    /// `nouserxattr`), so it reads back as `nil`, "not given".
    ///
    /// - Parameter legacyOptionString: the data bytes, without a trailing NUL.
    /// - Throws: ``UnionMountError/Code/malformedInput`` with `input` naming the option (its key) that is
    ///   malformed, or `legacyOptionString` for a NUL byte (mount(2) would stop reading there).
    public init(legacyOptionString: some Collection<UInt8>) throws(UnionMountError) {
        let data = Array(legacyOptionString)
        if let nul = data.firstIndex(of: 0) {
            throw .malformed(
                "NUL byte at offset \(nul); mount(2) would ignore everything after it", input: "legacyOptionString")
        }
        self.init(lowerDirectories: [])
        var sawLegacyLowerdir = false
        var sawAddedLayer = false

        for option in OverlayEscaping.splitOptions(data) where !option.isEmpty {
            let (keyBytes, value) = OverlayEscaping.splitKeyValue(option)
            if keyBytes.isEmpty { continue }
            let key = String(decoding: keyBytes, as: UTF8.self)
            switch key {
            case "lowerdir":
                guard let value else { throw .malformed("lowerdir needs a value", input: key) }
                if sawAddedLayer {
                    throw .malformed("lowerdir= cannot be mixed with lowerdir+= or datadir+=", input: key)
                }
                sawLegacyLowerdir = true
                lowerDirectories = []
                dataDirectories = []
                if value.isEmpty { continue }
                let layers: OverlayEscaping.LowerdirLayers
                do {
                    layers = try OverlayEscaping.splitLowerdir(value)
                } catch {
                    throw .malformed("bad lowerdir: \(error.description)", input: key)
                }
                lowerDirectories = try layers.lower.map { (layer) throws(UnionMountError) in
                    try Self.legacyPath(layer, key: key)
                }
                dataDirectories = try layers.data.map { (layer) throws(UnionMountError) in
                    try Self.legacyPath(layer, key: key)
                }
            case "lowerdir+", "datadir+":
                guard let value, !value.isEmpty else { throw .malformed("\(key) needs a path", input: key) }
                if sawLegacyLowerdir {
                    throw .malformed("\(key) cannot be mixed with lowerdir=", input: key)
                }
                sawAddedLayer = true
                if key == "datadir+" {
                    dataDirectories.append(FilePath(bytes: value))
                } else {
                    if !dataDirectories.isEmpty {
                        throw .malformed("regular lower layers cannot follow data layers", input: key)
                    }
                    lowerDirectories.append(FilePath(bytes: value))
                }
            case "upperdir", "workdir":
                guard let value else { throw .malformed("\(key) needs a value", input: key) }
                let path = try Self.legacyPath(value, key: key)
                if key == "upperdir" { upperDirectory = path } else { workDirectory = path }
            default:
                if let field = OverlayOptions.field(forKey: key) {
                    try field.parse(&options, key, value)
                    continue
                }
                guard let rawKey = String(validating: keyBytes, as: UTF8.self) else {
                    throw .malformed("option key is not UTF-8", input: Array(keyBytes).readable)
                }
                var rawValue: String?
                if let value {
                    guard let string = String(validating: value, as: UTF8.self) else {
                        throw .malformed("option value is not UTF-8", input: rawKey)
                    }
                    rawValue = string
                }
                options.additional.append(OverlayOptions.RawOption(rawKey, rawValue))
            }
        }
    }

    /// A legacy-grammar path (`lowerdir` layer, `upperdir`, `workdir`) unescaped; empty ones are refused.
    private static func legacyPath(_ escaped: ArraySlice<UInt8>, key: String) throws(UnionMountError) -> FilePath {
        let bytes = OverlayEscaping.unescape(escaped)
        if bytes.isEmpty { throw .malformed("\(key) has an empty path", input: key) }
        return FilePath(bytes: bytes)
    }

    /// The LSM option name that a `,` in `path` would start, if any.
    ///
    /// SELinux (`selinux_sb_eat_lsm_opts`, `match_opt_prefix`) and Smack (`smack_sb_eat_lsm_opts`) split
    /// mount(2) data on commas without honouring overlay's backslash escape, and remove the options they own
    /// before overlay parses the rest.
    static func lsmOptionAfterComma(in path: [UInt8]) -> String? {
        let names = ["context=", "fscontext=", "defcontext=", "rootcontext=", "seclabel", "smackfs"]
        for (index, byte) in path.enumerated() where byte == OverlayGrammar.comma {
            let rest = path[(index + 1)...]
            if let name = names.first(where: { rest.starts(with: $0.utf8) }) { return name }
        }
        return nil
    }
}

extension [UInt8] {
    /// Appends a literal's bytes.
    fileprivate mutating func append(_ literal: StaticString) {
        literal.withUTF8Buffer { append(contentsOf: $0) }
    }
}
