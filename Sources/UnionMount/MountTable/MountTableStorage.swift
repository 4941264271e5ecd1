import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Where a field lies in its line: offsets relative to ``MountEntryFields/lineStart``.
struct ByteSpan: Hashable, Sendable {
    var start: UInt32
    var count: UInt32

    static let empty = ByteSpan(start: 0, count: 0)
}

/// The field positions of one entry inside its table's bytes.
struct MountEntryFields: Hashable, Sendable {
    var lineStart: Int
    var root: ByteSpan
    var mountPoint: ByteSpan
    var mountOptions: ByteSpan
    var optionalFields: ByteSpan
    var filesystemType: ByteSpan
    var source: ByteSpan
    var superOptions: ByteSpan

    static let empty = MountEntryFields(
        lineStart: 0, root: .empty, mountPoint: .empty, mountOptions: .empty, optionalFields: .empty,
        filesystemType: .empty, source: .empty, superOptions: .empty)
}

/// Everything about one entry but its bytes: the numbers, the origin and where the fields are.
struct MountEntryRecord: Hashable, Sendable {
    var mountID: Int
    var parentID: Int
    var major: UInt32
    var minor: UInt32
    var origin: MountEntry.Origin
    var fields: MountEntryFields
}

/// The bytes of one mount table file, shared by every entry parsed from it, or the bytes of one entry built from
/// values. Immutable.
///
/// A parsed table keeps nothing per line: an entry knows where its line starts, and its numbers and field
/// positions are read from the line again when asked for (the parser has checked the line, so this cannot
/// fail). That keeps parsing to one scan of the bytes and one small value per entry.
final class MountTableStorage: Sendable {
    /// How the entries of a storage find their fields.
    enum Layout: Sendable {
        /// `/proc/<pid>/mountinfo` lines, each checked by ``MountTableParser``; an entry's position is its line's
        /// first byte.
        case mountinfoLines
        /// `/proc/mounts` or fstab lines, each checked by ``MountTableParser``; the same positions.
        case mountsLines
        /// One entry, built from values: its fields as given (position 0).
        case single(MountEntryRecord)
    }

    let bytes: [UInt8]
    let layout: Layout

    init(_ bytes: [UInt8], layout: Layout) {
        self.bytes = bytes
        self.layout = layout
    }

    /// The storage of a mountinfo file's bytes.
    convenience init(_ bytes: [UInt8]) { self.init(bytes, layout: .mountinfoLines) }

    /// The origin every entry of this storage has.
    var origin: MountEntry.Origin {
        switch layout {
        case .mountinfoLines: .mountinfo
        case .mountsLines: .mounts
        case .single(let record): record.origin
        }
    }

    /// The numbers and fields of the entry at `position`.
    func record(at position: Int) -> MountEntryRecord {
        switch layout {
        case .single(let record):
            return record
        case .mountinfoLines:
            return bytes.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress, position < buffer.count else {
                    return Self.emptyRecord(.mountinfo)
                }
                let numbers = MountInfoLineReader.numbers(base, start: position, total: buffer.count)
                return MountEntryRecord(
                    mountID: numbers.mountID, parentID: numbers.parentID, major: numbers.major, minor: numbers.minor,
                    origin: .mountinfo, fields: MountInfoLineReader.fields(base, start: position, total: buffer.count))
            }
        case .mountsLines:
            return MountEntryRecord(
                mountID: -1, parentID: -1, major: 0, minor: 0, origin: .mounts, fields: fields(at: position))
        }
    }

    /// The field positions of the entry at `position`.
    func fields(at position: Int) -> MountEntryFields {
        switch layout {
        case .single(let record):
            return record.fields
        case .mountinfoLines:
            return bytes.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress, position < buffer.count else { return .empty }
                return MountInfoLineReader.fields(base, start: position, total: buffer.count)
            }
        case .mountsLines:
            return bytes.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress, position < buffer.count else { return .empty }
                let end = MountInfoLineReader.lineEnd(base, start: position, total: buffer.count)
                guard case .record(let record) = MountTableParser.parseMountsLine(base, start: position, end: end)
                else { return .empty }
                return record.fields
            }
        }
    }

    /// The mount ID, parent ID and device number of the entry at `position`.
    func numbers(at position: Int) -> (mountID: Int, parentID: Int, major: UInt32, minor: UInt32) {
        switch layout {
        case .single(let record):
            return (record.mountID, record.parentID, record.major, record.minor)
        case .mountinfoLines:
            return bytes.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress, position < buffer.count else { return (-1, -1, 0, 0) }
                return MountInfoLineReader.numbers(base, start: position, total: buffer.count)
            }
        case .mountsLines:
            return (-1, -1, 0, 0)
        }
    }

    private static func emptyRecord(_ origin: MountEntry.Origin) -> MountEntryRecord {
        MountEntryRecord(mountID: -1, parentID: -1, major: 0, minor: 0, origin: origin, fields: .empty)
    }

    /// Collects escaped fields for ``MountEntry``'s value initializers.
    struct Builder {
        var bytes: [UInt8] = []

        mutating func append(raw field: [UInt8]) -> ByteSpan {
            let start = bytes.count
            bytes.append(contentsOf: field)
            return ByteSpan(start: UInt32(clamping: start), count: UInt32(clamping: field.count))
        }

        mutating func append(escaping field: [UInt8]) -> ByteSpan {
            append(raw: MountTableEscaping.encode(field))
        }

        mutating func append(list: [[UInt8]]) -> ByteSpan {
            var joined: [UInt8] = []
            for item in list where !item.isEmpty {
                if !joined.isEmpty { joined.append(UInt8(ascii: ",")) }
                joined.append(contentsOf: MountTableEscaping.encode(item))
            }
            return append(raw: joined)
        }

        /// The storage of one entry with these numbers and fields (``MountEntryFields/lineStart`` 0).
        func finish(
            mountID: Int, parentID: Int, major: UInt32, minor: UInt32, origin: MountEntry.Origin,
            fields: MountEntryFields
        ) -> MountTableStorage {
            MountTableStorage(
                bytes,
                layout: .single(
                    MountEntryRecord(
                        mountID: mountID, parentID: parentID, major: major, minor: minor, origin: origin,
                        fields: fields)))
        }
    }

    // MARK: Fields

    /// Calls `body` with the raw bytes of a field.
    @inline(__always)
    func withField<R>(_ span: ByteSpan, line: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        bytes.withUnsafeBufferPointer { all in
            let start = line + Int(span.start)
            let end = start + Int(span.count)
            guard start >= 0, end <= all.count, start <= end else {
                return body(UnsafeBufferPointer(start: nil, count: 0))
            }
            return body(UnsafeBufferPointer(rebasing: all[start..<end]))
        }
    }

    func raw(_ span: ByteSpan, line: Int) -> [UInt8] { withField(span, line: line) { Array($0) } }

    func decoded(_ span: ByteSpan, line: Int) -> [UInt8] {
        withField(span, line: line) { MountTableEscaping.decode($0) }
    }

    func path(_ span: ByteSpan, line: Int) -> FilePath {
        withField(span, line: line) { field in
            guard MountTableEscaping.containsBackslash(field) else { return FilePath(platformBytes: field) }
            let decoded = MountTableEscaping.decode(field)
            return decoded.withUnsafeBufferPointer { FilePath(platformBytes: $0) }
        }
    }

    /// A comma-separated field split on its raw commas (an LSM label in quotes stays whole, see
    /// ``MountTableEscaping/forEachOption(of:_:)``), each piece decoded; empty pieces dropped.
    func decodedList(_ span: ByteSpan, line: Int) -> [[UInt8]] {
        withField(span, line: line) { field in
            var result: [[UInt8]] = []
            MountTableEscaping.forEachOption(of: field) { piece in
                result.append(MountTableEscaping.decode(piece))
            }
            return result
        }
    }

    /// A field decoded as text: valid UTF-8 as is, other bytes as `\xNN`.
    func decodedText(_ span: ByteSpan, line: Int) -> String {
        withField(span, line: line) { MountTableEscaping.text($0) }
    }

    /// ``decodedList(_:line:)`` as text.
    func decodedTextList(_ span: ByteSpan, line: Int) -> [String] {
        withField(span, line: line) { field in
            var result: [String] = []
            MountTableEscaping.forEachOption(of: field) { piece in
                result.append(MountTableEscaping.text(piece))
            }
            return result
        }
    }

    func listContains(_ span: ByteSpan, line: Int, option: StaticString) -> Bool {
        withField(span, line: line) { field in
            var found = false
            let wanted = UnsafeBufferPointer(start: option.utf8Start, count: option.utf8CodeUnitCount)
            MountTableEscaping.forEachOption(of: field) { piece in
                if !found && piece.elementsEqual(wanted) { found = true }
            }
            return found
        }
    }

    func optionalFields(_ span: ByteSpan, line: Int) -> [MountEntry.OptionalField] {
        withField(span, line: line) { field in
            var result: [MountEntry.OptionalField] = []
            MountTableEscaping.forEachPiece(of: field, separator: UInt8(ascii: " ")) { tag in
                result.append(MountEntry.OptionalField(parsing: tag))
            }
            return result
        }
    }

    func rawEqual(_ span: ByteSpan, line: Int, _ other: MountTableStorage, _ otherSpan: ByteSpan, line otherLine: Int)
        -> Bool
    {
        guard span.count == otherSpan.count else { return false }
        return withField(span, line: line) { left in
            other.withField(otherSpan, line: otherLine) { right in
                guard let leftBase = left.baseAddress, let rightBase = right.baseAddress else {
                    return left.count == right.count
                }
                return memcmp(leftBase, rightBase, left.count) == 0
            }
        }
    }

    func hashDecoded(_ span: ByteSpan, line: Int, into hasher: inout Hasher) {
        withField(span, line: line) { field in
            MountTableEscaping.hashDecoded(field, into: &hasher)
        }
        hasher.combine(UInt8(0))
    }

    func hashDecodedList(_ span: ByteSpan, line: Int, into hasher: inout Hasher) {
        withField(span, line: line) { field in
            var count = 0
            MountTableEscaping.forEachOption(of: field) { piece in
                MountTableEscaping.hashDecoded(piece, into: &hasher)
                hasher.combine(UInt8(ascii: ","))
                count += 1
            }
            hasher.combine(count)
        }
    }
}
