/// Per-mount flags, shared by mount(2) (`MS_*`) and fsmount(2) (`MOUNT_ATTR_*`).
public struct MountFlags: OptionSet, Sendable, Hashable, Codable {
    /// The raw `MS_*` bits.
    public let rawValue: UInt

    /// Creates flags from `MS_*` bits.
    public init(rawValue: UInt) { self.rawValue = rawValue }

    /// Read-only. The corresponding C flags are `MS_RDONLY` and `MOUNT_ATTR_RDONLY`.
    public static let readOnly = MountFlags(rawValue: 1)
    /// Ignore set-user-ID bits. The corresponding C flags are `MS_NOSUID` and `MOUNT_ATTR_NOSUID`.
    public static let noSetUID = MountFlags(rawValue: 2)
    /// No device files. The corresponding C flags are `MS_NODEV` and `MOUNT_ATTR_NODEV`.
    public static let noDevices = MountFlags(rawValue: 4)
    /// No execution. The corresponding C flags are `MS_NOEXEC` and `MOUNT_ATTR_NOEXEC`.
    public static let noExecute = MountFlags(rawValue: 8)
    /// No access times. The corresponding C flags are `MS_NOATIME` and `MOUNT_ATTR_NOATIME`.
    public static let noAccessTime = MountFlags(rawValue: 1024)
    /// No directory access times. The corresponding C flags are `MS_NODIRATIME` and `MOUNT_ATTR_NODIRATIME`.
    public static let noDirectoryAccessTime = MountFlags(rawValue: 2048)
    /// Relative access times. The corresponding C flags are `MS_RELATIME` and `MOUNT_ATTR_RELATIME`.
    public static let relativeAccessTime = MountFlags(rawValue: 1 << 21)
    /// Strict access times. The corresponding C flags are `MS_STRICTATIME` and `MOUNT_ATTR_STRICTATIME`.
    public static let strictAccessTime = MountFlags(rawValue: 1 << 24)
    /// Do not follow symlinks. The corresponding C flags are `MS_NOSYMFOLLOW` and `MOUNT_ATTR_NOSYMFOLLOW`.
    public static let noSymlinkFollow = MountFlags(rawValue: 256)
    /// Change an existing mount. The corresponding C flag is `MS_REMOUNT` (mount(2) only).
    public static let remount = MountFlags(rawValue: 32)

    private static let names: [(MountFlags, String, String?)] = [
        (.readOnly, "MS_RDONLY", "MOUNT_ATTR_RDONLY"),
        (.noSetUID, "MS_NOSUID", "MOUNT_ATTR_NOSUID"),
        (.noDevices, "MS_NODEV", "MOUNT_ATTR_NODEV"),
        (.noExecute, "MS_NOEXEC", "MOUNT_ATTR_NOEXEC"),
        (.remount, "MS_REMOUNT", nil),
        (.noSymlinkFollow, "MS_NOSYMFOLLOW", "MOUNT_ATTR_NOSYMFOLLOW"),
        (.noAccessTime, "MS_NOATIME", "MOUNT_ATTR_NOATIME"),
        (.noDirectoryAccessTime, "MS_NODIRATIME", "MOUNT_ATTR_NODIRATIME"),
        (.relativeAccessTime, "MS_RELATIME", "MOUNT_ATTR_RELATIME"),
        (.strictAccessTime, "MS_STRICTATIME", "MOUNT_ATTR_STRICTATIME"),
    ]

    /// The `MS_*` names of the set flags, in bit order.
    public var mountFlagNames: [String] { Self.names.filter { contains($0.0) }.map(\.1) }

    /// The `MOUNT_ATTR_*` names of the set flags that fsmount(2) takes.
    public var mountAttributeNames: [String] { Self.names.filter { contains($0.0) }.compactMap(\.2) }

    /// The fsmount(2) `attr_flags` for these flags (`MOUNT_ATTR_*`).
    var mountAttributes: UInt32 {
        var attributes: UInt32 = 0
        if contains(.readOnly) { attributes |= 0x1 }
        if contains(.noSetUID) { attributes |= 0x2 }
        if contains(.noDevices) { attributes |= 0x4 }
        if contains(.noExecute) { attributes |= 0x8 }
        if contains(.noAccessTime) { attributes |= 0x10 }
        if contains(.strictAccessTime) { attributes |= 0x20 }
        if contains(.noDirectoryAccessTime) { attributes |= 0x80 }
        if contains(.noSymlinkFollow) { attributes |= 0x0020_0000 }
        return attributes
    }

    /// Parses the `MS_*` name of one flag.
    public init?(mountFlagName name: String) {
        guard let entry = Self.names.first(where: { $0.1 == name }) else { return nil }
        self = entry.0
    }
}
