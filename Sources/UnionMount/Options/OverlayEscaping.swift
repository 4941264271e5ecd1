/// The two value grammars of overlay options (`fs/overlayfs/params.c`), over bytes.
///
/// - Legacy grammar (`lowerdir=`, `upperdir=`, `workdir=`): a `\` takes the next byte literally; unescaped
///   `,` separates options, unescaped `:` separates layers, `::` starts the data-only layers. The kernel
///   drops every backslash of upperdir/workdir values too, even through fsconfig(2).
/// - Raw grammar (`lowerdir+=`, `datadir+=`): the value is the path, byte for byte.
enum OverlayEscaping {
    static let backslash = UInt8(ascii: "\\")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let equals = UInt8(ascii: "=")

    /// Escapes a path for the legacy grammar: `\` → `\\`, `,` → `\,`, `:` → `\:`.
    static func escape(_ path: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(path.count + 4)
        for byte in path {
            if byte == backslash || byte == comma || byte == colon { out.append(backslash) }
            out.append(byte)
        }
        return out
    }

    /// The length `escape(path)` would have, without building it.
    static func escapedLength(_ path: [UInt8]) -> Int {
        var length = path.count
        for byte in path where byte == backslash || byte == comma || byte == colon { length += 1 }
        return length
    }

    /// Drops every backslash and keeps the byte after it (`ovl_unescape`). A trailing lone backslash is dropped.
    static func unescape<Bytes: Collection<UInt8>>(_ value: Bytes) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.count)
        var escaped = false
        for byte in value {
            if !escaped && byte == backslash {
                escaped = true
                continue
            }
            escaped = false
            out.append(byte)
        }
        return out
    }

    /// Splits a mount(2) option string on commas not taken by a backslash (`ovl_next_opt`); backslashes stay.
    static func splitOptions<Bytes: Collection<UInt8>>(_ data: Bytes) -> [ArraySlice<UInt8>] where Bytes.Index == Int {
        let bytes = ArraySlice(data)
        var result: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == backslash {
                index += 2
                continue
            }
            if byte == comma {
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
        guard let equals = option.firstIndex(of: equals) else { return (option, nil) }
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
            if byte == backslash {
                index += 2
                continue
            }
            if byte != colon {
                index += 1
                continue
            }
            // One layer ends at `index`; count the colons that follow.
            var colons = 1
            while index + colons < value.endIndex && value[index + colons] == colon { colons += 1 }
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
}
