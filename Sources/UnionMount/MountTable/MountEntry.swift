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
/// that file's bytes, and an entry is no more than that shared buffer and where its line starts, which makes
/// parsing cheap: the parser checks every line but keeps nothing of it. The price is that every property, the
/// numbers included, is read from the line again on every access (store it if you use it in a loop) and that
/// one retained entry keeps the whole table's bytes alive.
///
/// Equality and hashing compare the decoded bytes of every field (not the normalized `FilePath` values),
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
    public var mountID: Int { storage.numbers(at: position).mountID }
    /// Field 2 of `/proc/self/mountinfo`: the parent's mount ID (itself for the namespace root, possibly a mount
    /// outside the reader's view); `-1` for a `/proc/mounts` entry.
    public var parentID: Int { storage.numbers(at: position).parentID }
    /// Field 3 of `/proc/self/mountinfo`, before the colon: the major number of the filesystem's `st_dev`;
    /// `0` for a `/proc/mounts` entry.
    public var major: UInt32 { storage.numbers(at: position).major }
    /// Field 3 of `/proc/self/mountinfo`, after the colon: the minor number of the filesystem's `st_dev`;
    /// `0` for a `/proc/mounts` entry.
    public var minor: UInt32 { storage.numbers(at: position).minor }
    /// The file format the entry came from.
    public var origin: Origin { storage.origin }

    /// The bytes the entry was parsed from (shared by every entry of one table) or built into.
    let storage: MountTableStorage
    /// Where the entry's line starts in ``storage`` (0 for an entry built from values).
    let position: Int

    init(storage: MountTableStorage, position: Int) {
        self.storage = storage
        self.position = position
    }

    /// The numbers and field positions, read from the line again (see ``MountTableStorage``).
    var record: MountEntryRecord { storage.record(at: position) }

    /// The field positions, read from the line again (see ``MountTableStorage``).
    var fields: MountEntryFields { storage.fields(at: position) }

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
        let storage = builder.finish(
            mountID: mountID, parentID: parentID, major: major, minor: minor, origin: origin,
            fields: MountEntryFields(
                lineStart: 0, root: rootSpan, mountPoint: mountPointSpan, mountOptions: mountOptionsSpan,
                optionalFields: optionalSpan, filesystemType: typeSpan, source: sourceSpan, superOptions: superSpan))
        self.init(storage: storage, position: 0)
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
        if origin == .mounts { return FilePath("/") }
        let fields = self.fields
        return storage.path(fields.root, line: fields.lineStart)
    }

    /// The decoded bytes of ``root``, exactly as the kernel printed them (no `FilePath` normalization).
    public var rootBytes: [UInt8] {
        if origin == .mounts { return [UInt8(ascii: "/")] }
        let fields = self.fields
        return storage.decoded(fields.root, line: fields.lineStart)
    }

    /// Field 5 of `/proc/self/mountinfo` (field 2 of `/proc/mounts`), decoded: where the mount is, relative to
    /// the reader's root.
    public var mountPoint: FilePath {
        let fields = self.fields
        return storage.path(fields.mountPoint, line: fields.lineStart)
    }

    /// The decoded bytes of ``mountPoint``, exactly as the kernel printed them (no `FilePath` normalization).
    public var mountPointBytes: [UInt8] {
        let fields = self.fields
        return storage.decoded(fields.mountPoint, line: fields.lineStart)
    }

    /// Field 6 of `/proc/self/mountinfo`, split on `,` and decoded: the per-mount options (`ro`/`rw`, `nosuid`,
    /// `nodev`, `noexec`, `relatime`, …). For a `/proc/mounts` entry, the merged options field.
    public var mountOptions: [String] {
        let fields = self.fields
        return storage.decodedTextList(fields.mountOptions, line: fields.lineStart)
    }

    /// Field 7 of `/proc/self/mountinfo`: the propagation tags, in order; empty for a `/proc/mounts` entry.
    public var optionalFields: [OptionalField] {
        let fields = self.fields
        return storage.optionalFields(fields.optionalFields, line: fields.lineStart)
    }

    /// Field 9 of `/proc/self/mountinfo` (field 3 of `/proc/mounts`), decoded: the filesystem type, with its
    /// subtype if any (`fuse.sshfs`).
    public var filesystemType: String {
        let fields = self.fields
        return storage.decodedText(fields.filesystemType, line: fields.lineStart)
    }

    /// Field 10 of `/proc/self/mountinfo` (field 1 of `/proc/mounts`), decoded: the filesystem-specific source,
    /// e.g. a device, `none`, or empty. Byte for byte; see ``source`` for text.
    public var sourceBytes: [UInt8] {
        let fields = self.fields
        return storage.decoded(fields.source, line: fields.lineStart)
    }

    /// ``sourceBytes`` as text: valid UTF-8 as is, other bytes as `\xNN`.
    public var source: String {
        let fields = self.fields
        return storage.decodedText(fields.source, line: fields.lineStart)
    }

    /// Field 11 of `/proc/self/mountinfo`: the superblock options, split on the raw commas of the file first and
    /// then octal-decoded each, so a value containing an escaped comma (`\054`) stays one option. Empty
    /// options are dropped. For a `/proc/mounts` entry, the merged options field.
    public var superOptions: [[UInt8]] {
        let fields = self.fields
        return storage.decodedList(fields.superOptions, line: fields.lineStart)
    }

    /// ``superOptions`` as text: valid UTF-8 as is, other bytes as `\xNN`.
    public var superOptionStrings: [String] {
        let fields = self.fields
        return storage.decodedTextList(fields.superOptions, line: fields.lineStart)
    }

    /// Whether the mount is read-only: `ro` among the per-mount options or among the superblock options (an
    /// overlay without an upper layer is `rw` per mount but `ro` in its superblock).
    public var isReadOnly: Bool {
        let fields = self.fields
        return storage.listContains(fields.mountOptions, line: fields.lineStart, option: "ro")
            || storage.listContains(fields.superOptions, line: fields.lineStart, option: "ro")
    }

    /// The entry as a `/proc/self/mountinfo` line (without the newline), with the fields escaped as parsed;
    /// bytes that are not UTF-8 are shown as `\xNN`.
    public var description: String {
        let record = self.record
        let fields = record.fields
        func raw(_ span: ByteSpan) -> String { storage.raw(span, line: fields.lineStart).readable }
        var text = "\(record.mountID) \(record.parentID) \(record.major):\(record.minor)"
        text += " \(record.origin == .mounts ? "/" : raw(fields.root))"
        text += " \(raw(fields.mountPoint)) \(raw(fields.mountOptions))"
        if fields.optionalFields.count > 0 { text += " " + raw(fields.optionalFields) }
        text += " - \(raw(fields.filesystemType)) \(raw(fields.source)) \(raw(fields.superOptions))"
        return text
    }

    // MARK: Equality

    /// Whether two entries have the same numbers, origin and decoded fields.
    public static func == (lhs: MountEntry, rhs: MountEntry) -> Bool {
        if lhs.storage === rhs.storage && lhs.position == rhs.position { return true }
        let leftRecord = lhs.record
        let rightRecord = rhs.record
        guard leftRecord.mountID == rightRecord.mountID, leftRecord.parentID == rightRecord.parentID,
            leftRecord.major == rightRecord.major, leftRecord.minor == rightRecord.minor,
            leftRecord.origin == rightRecord.origin
        else { return false }
        let left = leftRecord.fields
        let right = rightRecord.fields
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
        let record = self.record
        hasher.combine(record.mountID)
        hasher.combine(record.parentID)
        hasher.combine(record.major)
        hasher.combine(record.minor)
        hasher.combine(record.origin)
        let fields = record.fields
        let line = fields.lineStart
        storage.hashDecoded(fields.root, line: line, into: &hasher)
        storage.hashDecoded(fields.mountPoint, line: line, into: &hasher)
        storage.hashDecodedList(fields.mountOptions, line: line, into: &hasher)
        hasher.combine(storage.optionalFields(fields.optionalFields, line: line))
        storage.hashDecoded(fields.filesystemType, line: line, into: &hasher)
        storage.hashDecoded(fields.source, line: line, into: &hasher)
        storage.hashDecodedList(fields.superOptions, line: line, into: &hasher)
    }
}

private enum FieldShape { case single, list, tags }
