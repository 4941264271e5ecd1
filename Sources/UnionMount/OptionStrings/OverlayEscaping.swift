/// The two value grammars of overlay options (`fs/overlayfs/params.c`), over bytes.
///
/// - Legacy grammar (`lowerdir=`, `upperdir=`, `workdir=`): a `\` takes the next byte literally; unescaped
///   `,` separates options, unescaped `:` separates layers, `::` starts the data-only layers. The kernel
///   drops every backslash of upperdir/workdir values too, even through fsconfig(2).
/// - Raw grammar (`lowerdir+=`, `datadir+=`): the value is the path, byte for byte.
enum OverlayEscaping {

    /// Escapes a path for the legacy grammar: `\` → `\\`, `,` → `\,`, `:` → `\:`. A path with none of
    /// those bytes (nearly every path) is returned as it is, without a copy.
    static func escape(_ path: [UInt8]) -> [UInt8] {
        guard needsEscaping(path) else { return path }
        var out: [UInt8] = []
        out.reserveCapacity(escapedLength(path))
        appendEscaped(path, to: &out)
        return out
    }

    /// Appends `escape(path)` to `out` (one bulk copy when nothing needs escaping).
    static func appendEscaped(_ path: [UInt8], to out: inout [UInt8]) {
        guard needsEscaping(path) else {
            out.append(contentsOf: path)
            return
        }
        for byte in path {
            if byte == OverlayGrammar.backslash || byte == OverlayGrammar.comma || byte == OverlayGrammar.colon {
                out.append(OverlayGrammar.backslash)
            }
            out.append(byte)
        }
    }

    /// Whether the path holds a `\`, `,` or `:`; eight bytes at a time.
    static func needsEscaping(_ path: [UInt8]) -> Bool {
        path.withUnsafeBufferPointer { needsEscaping($0) }
    }

    /// Whether the bytes before the buffer's last one, a NUL, hold a `\`, `,` or `:`: strcspn(3) (through
    /// ``cStringPrefixLength(_:excluding:)``), which the C library runs 16 bytes at a time. A NUL inside the
    /// bytes (never in a `FilePath`) is looked past.
    static func needsEscaping(nulTerminated terminated: UnsafeBufferPointer<UInt8>) -> Bool {
        let length = terminated.count - 1
        let clean = terminated.withMemoryRebound(to: CChar.self) {
            cStringPrefixLength($0.baseAddress!, excluding: "\\,:")
        }
        if clean == length { return false }
        if terminated[clean] != 0 { return true }
        return needsEscaping(UnsafeBufferPointer(rebasing: terminated[(clean + 1)..<length]))
    }

    /// Whether the bytes hold a `\`, `,` or `:`; eight bytes at a time, without a branch per byte value.
    static func needsEscaping(_ path: UnsafeBufferPointer<UInt8>) -> Bool {
        let bytes = UnsafeRawBufferPointer(path)
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let backslashes = ones &* UInt64(OverlayGrammar.backslash)
        let commas = ones &* UInt64(OverlayGrammar.comma)
        let colons = ones &* UInt64(OverlayGrammar.colon)
        // (x - ones) & ~x has a high bit set in some byte exactly when x has a zero byte (the lowest zero byte
        // is always flagged), so this is nonzero when the word holds one of the three bytes.
        @inline(__always) func zeroBytes(_ x: UInt64) -> UInt64 { (x &- ones) & ~x }
        var offset = 0
        var found: UInt64 = 0
        while offset + 8 <= bytes.count {
            let word = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            found |= zeroBytes(word ^ backslashes) | zeroBytes(word ^ commas) | zeroBytes(word ^ colons)
            offset += 8
        }
        if found & highs != 0 { return true }
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == OverlayGrammar.backslash || byte == OverlayGrammar.comma || byte == OverlayGrammar.colon {
                return true
            }
            offset += 1
        }
        return false
    }

    /// The length `escape(path)` would have, without building it.
    static func escapedLength(_ path: [UInt8]) -> Int {
        guard needsEscaping(path) else { return path.count }
        var length = path.count
        for byte in path
        where byte == OverlayGrammar.backslash || byte == OverlayGrammar.comma || byte == OverlayGrammar.colon {
            length += 1
        }
        return length
    }

    /// Drops every backslash and keeps the byte after it (`ovl_unescape`). A trailing lone backslash is dropped.
    static func unescape<Bytes: Collection<UInt8>>(_ value: Bytes) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.count)
        var escaped = false
        for byte in value {
            if !escaped && byte == OverlayGrammar.backslash {
                escaped = true
                continue
            }
            escaped = false
            out.append(byte)
        }
        return out
    }

    /// Splits a mount(2) option string on commas not taken by a backslash (`ovl_next_opt`), except that an
    /// option starting `context="` (or `fscontext=`, `defcontext=`, `rootcontext=`) runs to its closing quote,
    /// commas included, as `selinux_sb_eat_lsm_opts` reads it before overlay sees the rest. A quote anywhere
    /// else is a plain byte of a path. Backslashes and quotes stay.
    static func splitOptions<Bytes: Collection<UInt8>>(_ data: Bytes) -> [ArraySlice<UInt8>] where Bytes.Index == Int {
        let bytes = ArraySlice(data)
        var result: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if index == start, let open = OverlayGrammar.quotedValueStart(bytes[start...]) {
                index = bytes[(open + 1)...].firstIndex(of: OverlayGrammar.quote).map { $0 + 1 } ?? bytes.endIndex
                continue
            }
            if byte == OverlayGrammar.backslash {
                index += 2
                continue
            }
            if byte == OverlayGrammar.comma {
                result.append(bytes[start..<index])
                start = index + 1
            }
            index += 1
        }
        result.append(bytes[start...])
        return result
    }

    /// Splits an option into key and value at the first `=`; a flag has no value.
    static func splitKeyValue(_ option: ArraySlice<UInt8>) -> (key: ArraySlice<UInt8>, value: ArraySlice<UInt8>?) {
        guard let equals = option.firstIndex(of: OverlayGrammar.equals) else { return (option, nil) }
        return (option[option.startIndex..<equals], option[(equals + 1)...])
    }

    /// A `lowerdir=` value split into layers, still escaped per layer.
    struct LowerdirLayers: Equatable {
        var lower: [ArraySlice<UInt8>]
        var data: [ArraySlice<UInt8>]
    }

    /// Why a `lowerdir=` value does not split.
    enum LowerdirError: Error, Equatable, CustomStringConvertible {
        case empty
        case leadingColon
        case trailingColon
        case tripleColon(offset: Int)
        case regularAfterData(offset: Int)
        case emptyLayer(offset: Int)

        var description: String {
            switch self {
            case .empty: "lowerdir is empty"
            case .leadingColon: "lowerdir starts with ':'"
            case .trailingColon: "lowerdir ends with an unescaped ':'"
            case .tripleColon(let offset): "more than two unescaped ':' in a row at byte \(offset)"
            case .regularAfterData(let offset): "a regular layer follows a data-only layer at byte \(offset)"
            case .emptyLayer(let offset): "empty layer at byte \(offset)"
            }
        }
    }

    /// Splits a `lowerdir=` value on unescaped `:` (next layer) and `::` (data-only layers follow), as
    /// `ovl_parse_param_split_lowerdirs` does. The layers keep their escapes; pass each to ``unescape(_:)``.
    static func splitLowerdir(_ value: ArraySlice<UInt8>) throws(LowerdirError) -> LowerdirLayers {
        guard !value.isEmpty else { throw .empty }
        var layers = LowerdirLayers(lower: [], data: [])
        var inData = false
        var start = value.startIndex
        var index = value.startIndex
        while index < value.endIndex {
            let byte = value[index]
            if byte == OverlayGrammar.backslash {
                index += 2
                continue
            }
            if byte != OverlayGrammar.colon {
                index += 1
                continue
            }
            // One layer ends at `index`; count the colons that follow.
            var colons = 1
            while index + colons < value.endIndex && value[index + colons] == OverlayGrammar.colon { colons += 1 }
            if colons > 2 { throw .tripleColon(offset: index - value.startIndex) }
            let layer = value[start..<index]
            if layer.isEmpty {
                throw start == value.startIndex ? .leadingColon : .emptyLayer(offset: start - value.startIndex)
            }
            if inData { layers.data.append(layer) } else { layers.lower.append(layer) }
            if colons == 2 {
                inData = true
            } else if inData {
                throw .regularAfterData(offset: index - value.startIndex)
            }
            index += colons
            start = index
        }
        let last = value[start..<value.endIndex]
        if last.isEmpty { throw start == value.startIndex ? .leadingColon : .trailingColon }
        if inData { layers.data.append(last) } else { layers.lower.append(last) }
        return layers
    }

    /// The value to pass to fsconfig(2): SELinux's fsconfig path (`selinux_fs_context_parse_param`) takes the
    /// label as given, so the quotes that the mount(2) string needs around commas are removed.
    static func fsconfigValue(_ value: String) -> String {
        // Most values are not quoted: answer those without copying their bytes.
        guard value.utf8.first == OverlayGrammar.quote else { return value }
        let bytes = Array(value.utf8)
        guard OverlayGrammar.isQuoted(bytes) else { return value }
        return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self)
    }
}
