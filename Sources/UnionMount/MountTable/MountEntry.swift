import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    #error("UnionMount supports Linux only")
#endif

/// One mount, as a line of `/proc/self/mountinfo` or of `/proc/mounts` (or any fstab-shaped file) describes it.
///
/// A `/proc/self/mountinfo` line (proc(5), `fs/proc_namespace.c` `show_mountinfo`) has the fields
/// `mountID parentID major:minor root mountPoint mountOptions [optional fields…] - type source superOptions`.
/// A `/proc/mounts` line (`show_vfsmnt`) has `source mountPoint type options 0 0`; see ``Origin-swift.enum``
/// for how such an entry fills the fields it lacks.
///
/// Every text field is kept exactly as the file had it and decoded when you ask for it: the kernel's `\ooo`
/// octal escapes are decoded *after* the line was split into fields and an option field was split on its
/// raw commas, so an escaped comma (`\054`) stays inside its option. All entries parsed from one file share
/// that file's bytes, which makes parsing cheap; the price is that a text property is computed on every
/// access (store it if you use it in a loop) and that one retained entry keeps the whole table's bytes alive.
///
/// Equality and hashing compare the decoded bytes of every field (not the normalized ``FilePath`` values),
/// the numbers and the ``origin``.
public struct MountEntry: Sendable, Hashable, CustomStringConvertible {
    /// Which file format an entry was read from.
    public enum Origin: String, Sendable, Hashable {
        /// `/proc/<pid>/mountinfo` (proc(5)): every field is known.
        case mountinfo
        /// `/proc/mounts`, `/proc/<pid>/mounts` or an fstab-shaped file (fstab(5)). These have no mount IDs, no
        /// device number, no root and no optional fields, and one options field that merges the per-mount
        /// and the superblock options. Such an entry has ``mountID`` and ``parentID`` `-1`, ``major`` and
        /// ``minor`` `0`, ``root`` `/`, no ``optionalFields``, and both ``mountOptions`` and ``superOptions``
        /// return the one options field (split and decoded the same way).
        case mounts
    }

    /// A propagation tag from field 7 of `/proc/self/mountinfo` (mount_namespaces(7)).
    public enum OptionalField: Sendable, Hashable, CustomStringConvertible {
        /// `shared:N`: the mount is in peer group N.
        case shared(Int)
        /// `master:N`: the mount is a slave of peer group N.
        case master(Int)
        /// `propagate_from:N`: the slave receives from peer group N, the closest dominant group visible here.
        case propagateFrom(Int)
        /// `unbindable`: the mount cannot be bind-mounted.
        case unbindable
        /// A tag this library does not know, or a known tag whose number does not parse; kept as written.
        case unknown(String)

        /// The tag as mountinfo prints it, e.g. `shared:3`.
        public var description: String {
            switch self {
            case .shared(let group): "shared:\(group)"
            case .master(let group): "master:\(group)"
            case .propagateFrom(let group): "propagate_from:\(group)"
            case .unbindable: "unbindable"
            case .unknown(let text): text
            }
        }
    }

    /// Field 1 of `/proc/self/mountinfo`: the mount ID (reused after an unmount); `-1` for a `/proc/mounts` entry.
    public let mountID: Int
    /// Field 2 of `/proc/self/mountinfo`: the parent's mount ID (itself for the namespace root, possibly a mount
    /// outside the reader's view); `-1` for a `/proc/mounts` entry.
    public let parentID: Int
    /// Field 3 of `/proc/self/mountinfo`, before the colon: the major number of the filesystem's `st_dev`;
    /// `0` for a `/proc/mounts` entry.
    public let major: UInt32
    /// Field 3 of `/proc/self/mountinfo`, after the colon: the minor number of the filesystem's `st_dev`;
    /// `0` for a `/proc/mounts` entry.
    public let minor: UInt32
    /// The file format the entry came from.
    public let origin: Origin

    let storage: MountTableStorage
    let fields: MountEntryFields

    init(
        mountID: Int, parentID: Int, major: UInt32, minor: UInt32, origin: Origin, storage: MountTableStorage,
        fields: MountEntryFields
    ) {
        self.mountID = mountID
        self.parentID = parentID
        self.major = major
        self.minor = minor
        self.origin = origin
        self.storage = storage
        self.fields = fields
    }

    /// Creates an entry from decoded values, e.g. for tests or to describe a mount that is about to be made.
    ///
    /// The values are stored escaped the way `/proc/self/mountinfo` escapes them, so the entry behaves exactly
    /// like a parsed one. Empty options are dropped, as they are when parsing; a NUL byte cannot be part of a
    /// path and ends ``root`` and ``mountPoint`` early. With `origin` ``Origin-swift.enum/mounts``, `root`,
    /// `optionalFields` and `mountOptions` are ignored: such an entry has one options field, `superOptions`.
    public init(
        mountID: Int = -1,
        parentID: Int = -1,
        major: UInt32 = 0,
        minor: UInt32 = 0,
        root: FilePath = "/",
        mountPoint: FilePath,
        mountOptions: [String] = [],
        optionalFields: [OptionalField] = [],
        filesystemType: String,
        sourceBytes: [UInt8],
        superOptions: [[UInt8]] = [],
        origin: Origin = .mountinfo
    ) {
        // A `/proc/mounts` entry has no root and no optional fields, and one options field.
        let fromMounts = origin == .mounts
        var builder = MountTableStorage.Builder()
        let rootSpan = fromMounts ? ByteSpan.empty : builder.append(escaping: root.bytes)
        let mountPointSpan = builder.append(escaping: mountPoint.bytes)
        let optionalSpan =
            fromMounts
            ? ByteSpan.empty
            : builder.append(raw: Array(optionalFields.map(\.description).joined(separator: " ").utf8))
        let typeSpan = builder.append(escaping: Array(filesystemType.utf8))
        let sourceSpan = builder.append(escaping: sourceBytes)
        let superSpan = builder.append(list: superOptions)
        let mountOptionsSpan = fromMounts ? superSpan : builder.append(list: mountOptions.map { Array($0.utf8) })
        self.init(
            mountID: mountID, parentID: parentID, major: major, minor: minor, origin: origin,
            storage: builder.finish(),
            fields: MountEntryFields(
                lineStart: 0, root: rootSpan, mountPoint: mountPointSpan, mountOptions: mountOptionsSpan,
                optionalFields: optionalSpan, filesystemType: typeSpan, source: sourceSpan, superOptions: superSpan))
    }

    /// Creates an entry from decoded values with a textual source (see the other initializer).
    public init(
        mountID: Int = -1,
        parentID: Int = -1,
        major: UInt32 = 0,
        minor: UInt32 = 0,
        root: FilePath = "/",
        mountPoint: FilePath,
        mountOptions: [String] = [],
        optionalFields: [OptionalField] = [],
        filesystemType: String,
        source: String,
        superOptions: [String] = [],
        origin: Origin = .mountinfo
    ) {
        self.init(
            mountID: mountID, parentID: parentID, major: major, minor: minor, root: root, mountPoint: mountPoint,
            mountOptions: mountOptions, optionalFields: optionalFields, filesystemType: filesystemType,
            sourceBytes: Array(source.utf8), superOptions: superOptions.map { Array($0.utf8) }, origin: origin)
    }

    // MARK: Fields

    /// Field 4 of `/proc/self/mountinfo`, decoded: the directory inside the filesystem that is the mount's root
    /// (`/` unless a bind mount or subtree); `/` for a `/proc/mounts` entry.
    public var root: FilePath {
        origin == .mounts ? FilePath("/") : storage.path(fields.root, line: fields.lineStart)
    }

    /// The decoded bytes of ``root``, exactly as the kernel printed them (no ``FilePath`` normalization).
    public var rootBytes: [UInt8] {
        origin == .mounts ? [UInt8(ascii: "/")] : storage.decoded(fields.root, line: fields.lineStart)
    }

    /// Field 5 of `/proc/self/mountinfo` (field 2 of `/proc/mounts`), decoded: where the mount is, relative to
    /// the reader's root.
    public var mountPoint: FilePath { storage.path(fields.mountPoint, line: fields.lineStart) }

    /// The decoded bytes of ``mountPoint``, exactly as the kernel printed them (no ``FilePath`` normalization).
    public var mountPointBytes: [UInt8] { storage.decoded(fields.mountPoint, line: fields.lineStart) }

    /// Field 6 of `/proc/self/mountinfo`, split on `,` and decoded: the per-mount options (`ro`/`rw`, `nosuid`,
    /// `nodev`, `noexec`, `relatime`, …). For a `/proc/mounts` entry, the merged options field.
    public var mountOptions: [String] { storage.decodedTextList(fields.mountOptions, line: fields.lineStart) }

    /// Field 7 of `/proc/self/mountinfo`: the propagation tags, in order; empty for a `/proc/mounts` entry.
    public var optionalFields: [OptionalField] {
        storage.optionalFields(fields.optionalFields, line: fields.lineStart)
    }

    /// Field 9 of `/proc/self/mountinfo` (field 3 of `/proc/mounts`), decoded: the filesystem type, with its
    /// subtype if any (`fuse.sshfs`).
    public var filesystemType: String { storage.decodedText(fields.filesystemType, line: fields.lineStart) }

    /// Field 10 of `/proc/self/mountinfo` (field 1 of `/proc/mounts`), decoded: the filesystem-specific source,
    /// e.g. a device, `none`, or empty. Byte for byte; see ``source`` for text.
    public var sourceBytes: [UInt8] { storage.decoded(fields.source, line: fields.lineStart) }

    /// ``sourceBytes`` as text: valid UTF-8 as is, other bytes as `\xNN`.
    public var source: String { storage.decodedText(fields.source, line: fields.lineStart) }

    /// Field 11 of `/proc/self/mountinfo`: the superblock options, split on the raw commas of the file first and
    /// then octal-decoded each, so a value containing an escaped comma (`\054`) stays one option. Empty
    /// options are dropped. For a `/proc/mounts` entry, the merged options field.
    public var superOptions: [[UInt8]] { storage.decodedList(fields.superOptions, line: fields.lineStart) }

    /// ``superOptions`` as text: valid UTF-8 as is, other bytes as `\xNN`.
    public var superOptionStrings: [String] {
        storage.decodedTextList(fields.superOptions, line: fields.lineStart)
    }

    /// Whether the mount is read-only: `ro` among the per-mount options or among the superblock options (an
    /// overlay without an upper layer is `rw` per mount but `ro` in its superblock).
    public var isReadOnly: Bool {
        storage.listContains(fields.mountOptions, line: fields.lineStart, option: "ro")
            || storage.listContains(fields.superOptions, line: fields.lineStart, option: "ro")
    }

    /// The entry as a `/proc/self/mountinfo` line (without the newline), with the fields escaped as parsed;
    /// bytes that are not UTF-8 are shown as `\xNN`.
    public var description: String {
        func raw(_ span: ByteSpan) -> String { storage.raw(span, line: fields.lineStart).readable }
        var text = "\(mountID) \(parentID) \(major):\(minor) \(origin == .mounts ? "/" : raw(fields.root))"
        text += " \(raw(fields.mountPoint)) \(raw(fields.mountOptions))"
        if fields.optionalFields.count > 0 { text += " " + raw(fields.optionalFields) }
        text += " - \(raw(fields.filesystemType)) \(raw(fields.source)) \(raw(fields.superOptions))"
        return text
    }

    // MARK: Equality

    /// Whether two entries have the same numbers, origin and decoded fields.
    public static func == (lhs: MountEntry, rhs: MountEntry) -> Bool {
        guard lhs.mountID == rhs.mountID, lhs.parentID == rhs.parentID, lhs.major == rhs.major,
            lhs.minor == rhs.minor, lhs.origin == rhs.origin
        else { return false }
        let left = lhs.fields
        let right = rhs.fields
        let pairs: [(ByteSpan, ByteSpan, FieldShape)] = [
            (left.root, right.root, .single), (left.mountPoint, right.mountPoint, .single),
            (left.mountOptions, right.mountOptions, .list), (left.optionalFields, right.optionalFields, .tags),
            (left.filesystemType, right.filesystemType, .single), (left.source, right.source, .single),
            (left.superOptions, right.superOptions, .list),
        ]
        for (leftSpan, rightSpan, shape) in pairs {
            if lhs.storage.rawEqual(leftSpan, line: left.lineStart, rhs.storage, rightSpan, line: right.lineStart) {
                continue
            }
            switch shape {
            case .single:
                guard
                    lhs.storage.decoded(leftSpan, line: left.lineStart)
                        == rhs.storage.decoded(rightSpan, line: right.lineStart)
                else { return false }
            case .list:
                guard
                    lhs.storage.decodedList(leftSpan, line: left.lineStart)
                        == rhs.storage.decodedList(rightSpan, line: right.lineStart)
                else { return false }
            case .tags:
                guard
                    lhs.storage.optionalFields(leftSpan, line: left.lineStart)
                        == rhs.storage.optionalFields(rightSpan, line: right.lineStart)
                else { return false }
            }
        }
        return true
    }

    /// Hashes what ``==(_:_:)`` compares.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(mountID)
        hasher.combine(parentID)
        hasher.combine(major)
        hasher.combine(minor)
        hasher.combine(origin)
        let line = fields.lineStart
        storage.hashDecoded(fields.root, line: line, into: &hasher)
        storage.hashDecoded(fields.mountPoint, line: line, into: &hasher)
        storage.hashDecodedList(fields.mountOptions, line: line, into: &hasher)
        hasher.combine(optionalFields)
        storage.hashDecoded(fields.filesystemType, line: line, into: &hasher)
        storage.hashDecoded(fields.source, line: line, into: &hasher)
        storage.hashDecodedList(fields.superOptions, line: line, into: &hasher)
    }
}

private enum FieldShape { case single, list, tags }

// MARK: - Storage

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
}

/// The bytes of one mount table file, shared by every entry parsed from it. Immutable.
final class MountTableStorage: Sendable {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

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

        func finish() -> MountTableStorage { MountTableStorage(bytes) }
    }

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

    /// A comma-separated field split on its raw commas, each piece decoded; empty pieces dropped.
    func decodedList(_ span: ByteSpan, line: Int) -> [[UInt8]] {
        withField(span, line: line) { field in
            var result: [[UInt8]] = []
            MountTableEscaping.forEachPiece(of: field, separator: UInt8(ascii: ",")) { piece in
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
            MountTableEscaping.forEachPiece(of: field, separator: UInt8(ascii: ",")) { piece in
                result.append(MountTableEscaping.text(piece))
            }
            return result
        }
    }

    func listContains(_ span: ByteSpan, line: Int, option: StaticString) -> Bool {
        withField(span, line: line) { field in
            var found = false
            let wanted = UnsafeBufferPointer(start: option.utf8Start, count: option.utf8CodeUnitCount)
            MountTableEscaping.forEachPiece(of: field, separator: UInt8(ascii: ",")) { piece in
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
            MountTableEscaping.forEachPiece(of: field, separator: UInt8(ascii: ",")) { piece in
                MountTableEscaping.hashDecoded(piece, into: &hasher)
                hasher.combine(UInt8(ascii: ","))
                count += 1
            }
            hasher.combine(count)
        }
    }
}

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
        return memchr(base, Int32(backslash), field.count) != nil
    }

    @inline(__always)
    static func isOctalDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 8 }

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

    /// The decoded field as text: valid UTF-8 as is, other bytes as `\xNN`.
    static func text(_ field: UnsafeBufferPointer<UInt8>) -> String {
        if field.count <= 32 {
            // Short fields (types, sources, options) in one pass: no call to memchr for the backslash test.
            var bits: UInt8 = 0
            var backslashes = false
            for byte in field {
                bits |= byte
                backslashes = backslashes || byte == backslash
            }
            if !backslashes {
                if bits < 0x80 { return String(decoding: field, as: UTF8.self) }
                return String(validating: field, as: UTF8.self) ?? Array(field).readable
            }
        } else if !containsBackslash(field) {
            // Mount tables are nearly all ASCII, for which decoding needs no validation.
            var bits: UInt8 = 0
            for byte in field { bits |= byte }
            if bits < 0x80 { return String(decoding: field, as: UTF8.self) }
            return String(validating: field, as: UTF8.self) ?? Array(field).readable
        }
        let decoded = decode(field)
        return String(validating: decoded, as: UTF8.self) ?? decoded.readable
    }

    /// Decodes a field that may not be contiguous (tests, small inputs).
    static func decode(_ field: [UInt8]) -> [UInt8] { field.withUnsafeBufferPointer { decode($0) } }

    /// Feeds the decoded bytes of `field` to `hasher` without allocating when there is nothing to decode.
    static func hashDecoded(_ field: UnsafeBufferPointer<UInt8>, into hasher: inout Hasher) {
        if containsBackslash(field) {
            let decoded = decode(field)
            decoded.withUnsafeBytes { hasher.combine(bytes: $0) }
        } else {
            hasher.combine(bytes: UnsafeRawBufferPointer(field))
        }
    }

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
