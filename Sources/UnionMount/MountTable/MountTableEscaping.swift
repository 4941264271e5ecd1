import SystemPackage

extension MountEntry.OptionalField {
    /// Parses one tag of field 7 (`shared:N`, `master:N`, `propagate_from:N`, `unbindable`).
    init(parsing tag: UnsafeBufferPointer<UInt8>) {
        let colon = tag.firstIndex(of: UInt8(ascii: ":"))
        if let colon {
            let name = UnsafeBufferPointer(rebasing: tag[..<colon])
            let number = MountTableNumber.parseInt(UnsafeBufferPointer(rebasing: tag[(colon + 1)...]))
            if let number {
                if name.elementsEqual("shared".utf8) {
                    self = .shared(number)
                    return
                }
                if name.elementsEqual("master".utf8) {
                    self = .master(number)
                    return
                }
                if name.elementsEqual("propagate_from".utf8) {
                    self = .propagateFrom(number)
                    return
                }
            }
        } else if tag.elementsEqual("unbindable".utf8) {
            self = .unbindable
            return
        }
        self = .unknown(Array(tag).readable)
    }
}

// MARK: - Escaping and numbers

/// The octal escaping of `/proc/self/mountinfo` and `/proc/mounts` (`fs/proc_namespace.c` `mangle`,
/// `seq_show_option`, `seq_escape`): a byte is written as `\` and three octal digits.
enum MountTableEscaping {
    static let backslash = UInt8(ascii: "\\")

    @inline(__always)
    static func containsBackslash(_ field: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = field.baseAddress, field.count > 0 else { return false }
        return byteOffset(of: backslash, in: base, count: field.count) != nil
    }

    /// The byte an escape at `index` stands for: `\` followed by exactly three octal digits whose value fits a
    /// byte (the first digit is 0–3). Anything else is not an escape and stays as written.
    @inline(__always)
    static func escapedByte(_ field: UnsafeBufferPointer<UInt8>, at index: Int) -> UInt8? {
        guard index + 3 < field.count else { return nil }
        let first = field[index + 1] &- UInt8(ascii: "0")
        let second = field[index + 2] &- UInt8(ascii: "0")
        let third = field[index + 3] &- UInt8(ascii: "0")
        guard first < 4, second < 8, third < 8 else { return nil }
        return first << 6 | second << 3 | third
    }

    /// Decodes every `\ooo` escape; other backslashes are kept.
    static func decode(_ field: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        guard containsBackslash(field) else { return Array(field) }
        var out: [UInt8] = []
        out.reserveCapacity(field.count)
        var index = 0
        while index < field.count {
            let byte = field[index]
            if byte == backslash, let decoded = escapedByte(field, at: index) {
                out.append(decoded)
                index += 4
            } else {
                out.append(byte)
                index += 1
            }
        }
        return out
    }

    /// Decoded bytes as text: valid UTF-8 as is, other bytes as `\xNN`.
    @inline(__always)
    static func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var bits: UInt8 = 0
        for byte in bytes { bits |= byte }
        // Mount tables are nearly all ASCII, for which decoding needs no validation.
        if bits < 0x80 { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self) ?? Array(bytes).readable
    }

    /// Decoded options as one options field: each escaped (``encode(_:)``), joined with `,`.
    static func encodeList(_ options: [[UInt8]]) -> [UInt8] {
        var joined: [UInt8] = []
        for option in options where !option.isEmpty {
            if !joined.isEmpty { joined.append(UInt8(ascii: ",")) }
            joined.append(contentsOf: encode(option))
        }
        return joined
    }

    /// Decodes a field that may not be contiguous (tests, small inputs).
    static func decode(_ field: [UInt8]) -> [UInt8] { field.withUnsafeBufferPointer { decode($0) } }

    /// Escapes the bytes mountinfo escapes in any field: space, tab, newline, backslash, plus `#` and `,`, so a
    /// value can sit in a comma-separated option list or in the source field.
    static func encode(_ value: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.count)
        for byte in value {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), backslash, UInt8(ascii: ","),
                UInt8(ascii: "#"):
                out.append(backslash)
                out.append(UInt8(ascii: "0") + (byte >> 6))
                out.append(UInt8(ascii: "0") + ((byte >> 3) & 7))
                out.append(UInt8(ascii: "0") + (byte & 7))
            default:
                out.append(byte)
            }
        }
        return out
    }

    /// Calls `body` with each non-empty option of a comma-separated options field (mount options or superblock
    /// options), split on its raw commas, except inside an LSM label the kernel printed in double quotes.
    ///
    /// SELinux shows a label holding commas as `context="…:s0:c1,c2"` (`show_sid` in
    /// `security/selinux/hooks.c` quotes it and escapes any `"` inside), and the LSM options come before the
    /// filesystem's own. Only an option that starts with `context="`, `fscontext="`, `defcontext="` or
    /// `rootcontext="` is read to its closing quote: overlay prints a `"` in a layer path raw, so treating
    /// every quote as a delimiter would merge options.
    @inline(__always)
    static func forEachOption(of field: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var start = 0
        var index = 0
        while index <= field.count {
            if index == start,
                let offset = OverlayGrammar.quotedValueStart(UnsafeBufferPointer(rebasing: field[start...]))
            {
                var close = start + offset + 1
                while close < field.count && field[close] != OverlayGrammar.quote { close += 1 }
                index = close < field.count ? close + 1 : field.count
                continue
            }
            if index == field.count || field[index] == OverlayGrammar.comma {
                if index > start { body(UnsafeBufferPointer(rebasing: field[start..<index])) }
                start = index + 1
            }
            index += 1
        }
    }

    /// Calls `body` with each non-empty piece of `field` between `separator` bytes.
    @inline(__always)
    static func forEachPiece(
        of field: UnsafeBufferPointer<UInt8>, separator: UInt8, _ body: (UnsafeBufferPointer<UInt8>) -> Void
    ) {
        var start = 0
        var index = 0
        while index < field.count {
            if field[index] == separator {
                if index > start { body(UnsafeBufferPointer(rebasing: field[start..<index])) }
                start = index + 1
            }
            index += 1
        }
        if field.count > start { body(UnsafeBufferPointer(rebasing: field[start..<field.count])) }
    }
}

/// Defensive decimal parsing for mount tables: digits only, no sign, no overflow trap.
enum MountTableNumber {
    /// A non-negative decimal `Int`, or nil when the bytes are empty, contain a non-digit, or overflow.
    @inline(__always)
    static func parseInt(_ digits: UnsafeBufferPointer<UInt8>) -> Int? {
        guard !digits.isEmpty else { return nil }
        var value = 0
        for byte in digits {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(digit))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return value
    }

    /// A decimal `UInt32`, or nil (see ``parseInt(_:)``).
    @inline(__always)
    static func parseUInt32(_ digits: UnsafeBufferPointer<UInt8>) -> UInt32? {
        guard let value = parseInt(digits) else { return nil }
        return UInt32(exactly: value)
    }
}

extension FilePath {
    /// A path from raw bytes with a single copy; a NUL byte ends the path (a kernel path cannot contain one).
    init(platformBytes bytes: UnsafeBufferPointer<UInt8>) {
        self = withUnsafeTemporaryAllocation(of: CInterop.PlatformChar.self, capacity: bytes.count + 1) { buffer in
            guard let base = buffer.baseAddress else { return FilePath() }
            if let source = bytes.baseAddress, bytes.count > 0 {
                UnsafeMutableRawPointer(base).copyMemory(from: source, byteCount: bytes.count)
            }
            base[bytes.count] = 0
            return FilePath(platformString: base)
        }
    }
}
