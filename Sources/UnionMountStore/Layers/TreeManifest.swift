import SystemPackage
import UnionMount

/// A deterministic description of a directory tree, for comparing trees (a layer before and after a round trip,
/// a copy and its source): one ``Entry`` per name, sorted by path bytes.
///
///     let before = try TreeManifest.read("/layers/a")
///     let after = try TreeManifest.read("/layers/b")
///     for line in before.differences(from: after) { print(line) }
public struct TreeManifest: Sendable, Hashable, Codable {
    /// What a manifest looks at.
    public struct Options: Sendable, Hashable, Codable {
        /// Whether each entry records its modification time.
        public var includeModificationTimes: Bool
        /// Extended attributes whose names start with one of these are left out (`""` leaves out all).
        public var ignoredXattrPrefixes: [String]
        /// Whether entries record which names are hard links of each other.
        public var includeHardLinks: Bool

        /// Creates options; by default everything is recorded.
        public init(
            includeModificationTimes: Bool = true, ignoredXattrPrefixes: [String] = [], includeHardLinks: Bool = true
        ) {
            self.includeModificationTimes = includeModificationTimes
            self.ignoredXattrPrefixes = ignoredXattrPrefixes
            self.includeHardLinks = includeHardLinks
        }

        /// Everything but the attributes overlay and fuse-overlayfs keep for themselves (`trusted.overlay.`,
        /// `user.overlay.`, `user.fuseoverlayfs.`).
        public static let ignoringUnionXattrs = Options(
            ignoredXattrPrefixes: ["trusted.overlay.", "user.overlay.", "user.fuseoverlayfs."])
    }

    /// A file type as lstat(2) reports it.
    public enum EntryType: String, Sendable, Hashable, Codable, CaseIterable {
        /// A regular file.
        case file
        /// A directory.
        case directory
        /// A symbolic link.
        case symlink
        /// A character device.
        case characterDevice
        /// A block device.
        case blockDevice
        /// A FIFO.
        case fifo
        /// A Unix domain socket.
        case socket
    }

    /// One extended attribute.
    public struct Xattr: Sendable, Hashable, Codable {
        /// The full name, namespace included (`user.mime_type`).
        public var name: String
        /// The value's bytes.
        public var value: [UInt8]

        /// Creates an attribute.
        public init(name: String, value: [UInt8]) {
            self.name = name
            self.value = value
        }
    }

    /// The device number of a device node.
    public struct Device: Sendable, Hashable, Codable {
        /// major(3).
        public var major: UInt32
        /// minor(3).
        public var minor: UInt32

        /// Creates a device number.
        public init(major: UInt32, minor: UInt32) {
            self.major = major
            self.minor = minor
        }
    }

    /// One name of the tree.
    public struct Entry: Sendable, Hashable, Codable {
        /// The path relative to the root (`etc/passwd`); `.` for the root itself.
        public var path: FilePath
        /// The type.
        public var type: EntryType
        /// The permission bits with set-user-ID, set-group-ID and sticky (`st_mode & 07777`).
        public var mode: UInt32
        /// The owner.
        public var uid: UInt32
        /// The group.
        public var gid: UInt32
        /// The size of a regular file.
        public var size: UInt64?
        /// `ContentDigest` of a regular file's contents, 32 hexadecimal digits.
        public var digest: String?
        /// The target of a symbolic link, as bytes.
        public var symlinkTarget: [UInt8]?
        /// The device number of a character or block device.
        public var device: Device?
        /// The extended attributes, sorted by name (those the options ignore left out).
        public var xattrs: [Xattr]
        /// The modification time in nanoseconds since the epoch, when the options ask for it.
        public var modificationTime: Int64?
        /// The same number for every name of one inode that has more than one name in the tree; nil otherwise or
        /// when the options leave hard links out. Groups are numbered from 1 in path order.
        public var linkGroup: Int?

        /// Creates an entry.
        public init(
            path: FilePath, type: EntryType, mode: UInt32, uid: UInt32, gid: UInt32, size: UInt64? = nil,
            digest: String? = nil, symlinkTarget: [UInt8]? = nil, device: Device? = nil, xattrs: [Xattr] = [],
            modificationTime: Int64? = nil, linkGroup: Int? = nil
        ) {
            self.path = path
            self.type = type
            self.mode = mode
            self.uid = uid
            self.gid = gid
            self.size = size
            self.digest = digest
            self.symlinkTarget = symlinkTarget
            self.device = device
            self.xattrs = xattrs
            self.modificationTime = modificationTime
            self.linkGroup = linkGroup
        }

        private enum CodingKeys: String, CodingKey {
            case path, type, mode, uid, gid, size, digest, symlinkTarget, device, xattrs, modificationTime, linkGroup
        }

        /// Decodes the JSON form of ``encode(to:)``.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            path = try container.decodePath(forKey: .path)
            type = try container.decode(EntryType.self, forKey: .type)
            mode = try container.decode(UInt32.self, forKey: .mode)
            uid = try container.decode(UInt32.self, forKey: .uid)
            gid = try container.decode(UInt32.self, forKey: .gid)
            size = try container.decodeIfPresent(UInt64.self, forKey: .size)
            digest = try container.decodeIfPresent(String.self, forKey: .digest)
            symlinkTarget = try container.decodeIfPresent(CodableBytes.self, forKey: .symlinkTarget)?.bytes
            device = try container.decodeIfPresent(Device.self, forKey: .device)
            xattrs = try container.decodeIfPresent([Xattr].self, forKey: .xattrs) ?? []
            modificationTime = try container.decodeIfPresent(Int64.self, forKey: .modificationTime)
            linkGroup = try container.decodeIfPresent(Int.self, forKey: .linkGroup)
        }

        /// Encodes every field; paths and symbolic link targets that are not UTF-8 as `{"base64": …}`, attribute
        /// values as arrays of bytes.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(path: path, forKey: .path)
            try container.encode(type, forKey: .type)
            try container.encode(mode, forKey: .mode)
            try container.encode(uid, forKey: .uid)
            try container.encode(gid, forKey: .gid)
            try container.encodeIfPresent(size, forKey: .size)
            try container.encodeIfPresent(digest, forKey: .digest)
            if let symlinkTarget {
                try container.encode(CodableBytes(symlinkTarget), forKey: .symlinkTarget)
            }
            try container.encodeIfPresent(device, forKey: .device)
            try container.encode(xattrs, forKey: .xattrs)
            try container.encodeIfPresent(modificationTime, forKey: .modificationTime)
            try container.encodeIfPresent(linkGroup, forKey: .linkGroup)
        }
    }

    /// The entries, sorted by the bytes of their paths (the root, `.`, included).
    public var entries: [Entry]
    /// What was recorded.
    public var options: Options

    /// Creates a manifest from entries (sorted here).
    public init(entries: [Entry], options: Options = Options()) {
        self.entries = entries.sorted { $0.path.bytes.lexicographicallyPrecedes($1.path.bytes) }
        self.options = options
    }
}

/// Bytes in JSON: a string when UTF-8, otherwise `{"base64": …}` (the same form as paths).
struct CodableBytes: Codable {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    private enum Keys: String, CodingKey { case base64 }

    init(from decoder: any Decoder) throws {
        if let string = try? decoder.singleValueContainer().decode(String.self) {
            bytes = Array(string.utf8)
            return
        }
        let container = try decoder.container(keyedBy: Keys.self)
        guard let decoded = Base64.decode(try container.decode(String.self, forKey: .base64)) else {
            throw DecodingError.dataCorruptedError(forKey: .base64, in: container, debugDescription: "bad base64")
        }
        bytes = decoded
    }

    func encode(to encoder: any Encoder) throws {
        if let string = String(validating: bytes, as: UTF8.self) {
            var container = encoder.singleValueContainer()
            try container.encode(string)
        } else {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(Base64.encode(bytes), forKey: .base64)
        }
    }
}
