import SystemPackage

/// One mount, as a line of `/proc/self/mountinfo` or of `/proc/mounts` (or any fstab-shaped file) describes it.
///
/// A `/proc/self/mountinfo` line (proc(5), `fs/proc_namespace.c` `show_mountinfo`) has the fields
/// `mountID parentID major:minor root mountPoint mountOptions [optional fields…] - type source superOptions`.
/// A `/proc/mounts` line (`show_vfsmnt`) has `source mountPoint type options 0 0`; see ``Origin-swift.enum``
/// for how such an entry fills the fields it lacks.
///
/// An entry is a value: the parser decodes every field once, splitting the line into fields and an option field
/// on its raw commas first and then resolving the kernel's `\ooo` octal escapes in each piece (so an escaped comma,
/// `\054`, stays inside its option), and keeps the decoded bytes in one allocation of the entry's own. Keeping
/// an entry keeps only that entry's bytes, never the table it came from. The numbers are stored fields; a text
/// field is handed out as a `FilePath` or `String` made from the stored bytes when asked for (paths and text
/// longer than 15 bytes cost an allocation each time), and an option list as ``Options``, a view of the stored
/// options that allocates nothing until an option is read.
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

    /// The entry's decoded text fields, its own (see ``MountEntryStorage``).
    nonisolated(unsafe) let storage: MountEntryStorage

    init(mountID: Int, parentID: Int, major: UInt32, minor: UInt32, origin: Origin, storage: MountEntryStorage) {
        self.mountID = mountID
        self.parentID = parentID
        self.major = major
        self.minor = minor
        self.origin = origin
        self.storage = storage
    }

    /// Creates an entry from decoded values, e.g. for tests or to describe a mount that is about to be made.
    ///
    /// Empty options are dropped, as they are when parsing. With `origin` ``Origin-swift.enum/mounts``, `root`,
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
        var builder = MountEntryBuilder()
        defer { builder.deallocate() }
        builder.plain(fromMounts ? [] : root.bytes)
        builder.plain(mountPoint.bytes)
        builder.plain(Array(filesystemType.utf8))
        builder.plain(sourceBytes)
        builder.plain(fromMounts ? [] : Array(optionalFields.map(\.description).joined(separator: " ").utf8))
        builder.plain(
            filesystemType == UnionFilesystemKind.aufs.rawValue ? MountTableEscaping.encodeList(superOptions) : [])
        builder.plainList(fromMounts ? [] : mountOptions.map { Array($0.utf8) })
        builder.plainList(superOptions)
        self.init(
            mountID: mountID, parentID: parentID, major: major, minor: minor, origin: origin,
            storage: builder.finish())
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

    /// `/` as a path, made once: nearly every mount's root.
    private static let slash = FilePath("/")

    /// Field 4 of `/proc/self/mountinfo`, decoded: the directory inside the filesystem that is the mount's root
    /// (`/` unless a bind mount or subtree); `/` for a `/proc/mounts` entry.
    public var root: FilePath {
        storage.withBytes(.root) { bytes in
            bytes.count == 0 || (bytes.count == 1 && bytes[0] == UInt8(ascii: "/"))
                ? Self.slash : FilePath(platformBytes: bytes)
        }
    }

    /// The decoded bytes of ``root``, exactly as the kernel printed them (no `FilePath` normalization).
    public var rootBytes: [UInt8] {
        storage.withBytes(.root) { $0.isEmpty ? [UInt8(ascii: "/")] : Array($0) }
    }

    /// Field 5 of `/proc/self/mountinfo` (field 2 of `/proc/mounts`), decoded: where the mount is, relative to
    /// the reader's root.
    public var mountPoint: FilePath { storage.withBytes(.mountPoint) { FilePath(platformBytes: $0) } }

    /// The decoded bytes of ``mountPoint``, exactly as the kernel printed them (no `FilePath` normalization).
    public var mountPointBytes: [UInt8] { storage.withBytes(.mountPoint) { Array($0) } }

    /// Field 6 of `/proc/self/mountinfo`, split on `,` and decoded: the per-mount options (`ro`/`rw`, `nosuid`,
    /// `nodev`, `noexec`, `relatime`, …). For a `/proc/mounts` entry, the merged options field.
    public var mountOptions: Options {
        Options(storage: storage, list: origin == .mounts ? .superOptions : .mountOptions)
    }

    /// Field 7 of `/proc/self/mountinfo`: the propagation tags, in order; empty for a `/proc/mounts` entry.
    public var optionalFields: [OptionalField] {
        storage.withBytes(.optionalFields) { field in
            guard field.count > 0 else { return [] }
            var result: [OptionalField] = []
            MountTableEscaping.forEachPiece(of: field, separator: UInt8(ascii: " ")) { tag in
                result.append(OptionalField(parsing: tag))
            }
            return result
        }
    }

    /// Field 9 of `/proc/self/mountinfo` (field 3 of `/proc/mounts`), decoded: the filesystem type, with its
    /// subtype if any (`fuse.sshfs`).
    public var filesystemType: String { storage.withBytes(.filesystemType) { MountTableEscaping.string($0) } }

    /// Field 10 of `/proc/self/mountinfo` (field 1 of `/proc/mounts`), decoded: the filesystem-specific source,
    /// e.g. a device, `none`, or empty. Byte for byte; see ``source`` for text.
    public var sourceBytes: [UInt8] { storage.withBytes(.source) { Array($0) } }

    /// ``sourceBytes`` as text: valid UTF-8 as is, other bytes as `\xNN`.
    public var source: String { storage.withBytes(.source) { MountTableEscaping.string($0) } }

    /// Field 11 of `/proc/self/mountinfo`: the superblock options, split on the raw commas of the file first and
    /// then octal-decoded each, so a value containing an escaped comma (`\054`) stays one option. Empty
    /// options are dropped. For a `/proc/mounts` entry, the merged options field.
    public var superOptions: Options { Options(storage: storage, list: .superOptions) }

    /// Whether the mount is read-only: `ro` among the per-mount options or among the superblock options (an
    /// overlay without an upper layer is `rw` per mount but `ro` in its superblock).
    public var isReadOnly: Bool { mountOptions.contains("ro") || superOptions.contains("ro") }

    /// The entry as a `/proc/self/mountinfo` line (without the newline), with the fields escaped as mountinfo
    /// escapes them; bytes that are not UTF-8 are shown as `\xNN`.
    public var description: String {
        func field(_ field: MountEntryStorage.Field, extra: UInt8? = nil) -> String {
            storage.withBytes(field) { StatmountEscaping.escape(Array($0), extra: extra).readable }
        }
        var text = "\(mountID) \(parentID) \(major):\(minor)"
        text += " \(origin == .mounts ? "/" : field(.root)) \(field(.mountPoint)) \(mountOptions.escapedText)"
        let tags = storage.withBytes(.optionalFields) { Array($0).readable }
        if !tags.isEmpty { text += " " + tags }
        text += " - \(field(.filesystemType)) \(field(.source, extra: UInt8(ascii: "#"))) \(superOptions.escapedText)"
        return text
    }

    // MARK: Equality

    /// Whether two entries have the same numbers, origin and decoded fields.
    public static func == (lhs: MountEntry, rhs: MountEntry) -> Bool {
        lhs.mountID == rhs.mountID && lhs.parentID == rhs.parentID && lhs.major == rhs.major
            && lhs.minor == rhs.minor && lhs.origin == rhs.origin && lhs.storage.hasSameContents(as: rhs.storage)
    }

    /// Hashes what ``==(_:_:)`` compares.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(mountID)
        hasher.combine(parentID)
        hasher.combine(major)
        hasher.combine(minor)
        hasher.combine(origin)
        storage.hash(into: &hasher)
    }
}
