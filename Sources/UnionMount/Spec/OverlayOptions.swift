/// Overlay mount options as typed values (`Documentation/filesystems/overlayfs.rst`, `fs/overlayfs/params.c`).
///
/// `nil` means "not given": the kernel's default (itself set by the overlay module parameters in
/// `/sys/module/overlay/parameters/`) applies. Options the library does not know yet go in ``additional``.
public struct OverlayOptions: Sendable, Hashable, Codable {
    /// `redirect_dir=`: how directory renames are recorded and followed.
    public enum RedirectDirectory: String, Sendable, Hashable, Codable, CaseIterable {
        /// `on`: create and follow redirects.
        case on
        /// `off`: create none; follow according to `redirect_always_follow`.
        case off
        /// `follow`: follow, never create.
        case follow
        /// `nofollow`: neither create nor follow.
        case nofollow
    }

    /// `xino=`: inode number composition across layers.
    public enum InodeNumbers: String, Sendable, Hashable, Codable, CaseIterable {
        /// `off`.
        case off
        /// `auto`: on when the layers allow it.
        case auto
        /// `on`.
        case on
    }

    /// `uuid=`: how the overlay's UUID is derived and stored.
    public enum UUIDMode: String, Sendable, Hashable, Codable, CaseIterable {
        /// `off`.
        case off
        /// `null`.
        case null
        /// `auto` (the default).
        case auto
        /// `on`.
        case on
    }

    /// `verity=`: fs-verity digest use for metacopy files.
    public enum Verity: String, Sendable, Hashable, Codable, CaseIterable {
        /// `off`.
        case off
        /// `on`.
        case on
        /// `require`.
        case require
    }

    /// `fsync=`: how the overlay syncs the upper layer (`fsync=volatile` is what `volatile` means).
    public enum Fsync: String, Sendable, Hashable, Codable, CaseIterable {
        /// `auto`.
        case auto
        /// `strict`.
        case strict
        /// `volatile`.
        case volatile
    }

    /// An option passed through as given, for keys this library does not model.
    public struct RawOption: Sendable, Hashable, Codable, CustomStringConvertible {
        /// The key, for example `"context"`.
        public var key: String
        /// The value, or `nil` for a flag.
        public var value: String?

        /// Creates a raw option.
        public init(_ key: String, _ value: String? = nil) {
            self.key = key
            self.value = value
        }

        /// `key` or `key=value`.
        public var description: String { value.map { "\(key)=\($0)" } ?? key }
    }

    /// `default_permissions`: check permissions with the merged inode's mode, not the layers'.
    public var defaultPermissions: Bool = false
    /// `redirect_dir=`.
    public var redirectDirectory: RedirectDirectory?
    /// `index=on|off`.
    public var index: Bool?
    /// `nfs_export=on|off`.
    public var nfsExport: Bool?
    /// `xino=`.
    public var inodeNumbers: InodeNumbers?
    /// `metacopy=on|off`.
    public var metacopy: Bool?
    /// `volatile`: skip syncs; the work directory is unusable after the mount ends uncleanly.
    public var volatile: Bool = false
    /// `userxattr`: keep overlay xattrs under `user.overlay.` (rootless). `nil`: added automatically
    /// when the mount is made outside the initial user namespace.
    public var userXattr: Bool?
    /// `uuid=`.
    public var uuid: UUIDMode?
    /// `verity=`.
    public var verity: Verity?
    /// `fsync=`.
    public var fsync: Fsync?
    /// `override_creds` (`true`) / `nooverride_creds` (`false`); new mount API only (Linux 6.15+).
    public var overrideCredentials: Bool?
    /// Options passed through unchanged, after the typed ones.
    public var additional: [RawOption] = []

    /// Creates options; every option starts at "not given".
    public init(
        defaultPermissions: Bool = false,
        redirectDirectory: RedirectDirectory? = nil,
        index: Bool? = nil,
        nfsExport: Bool? = nil,
        inodeNumbers: InodeNumbers? = nil,
        metacopy: Bool? = nil,
        volatile: Bool = false,
        userXattr: Bool? = nil,
        uuid: UUIDMode? = nil,
        verity: Verity? = nil,
        fsync: Fsync? = nil,
        overrideCredentials: Bool? = nil,
        additional: [RawOption] = []
    ) {
        self.defaultPermissions = defaultPermissions
        self.redirectDirectory = redirectDirectory
        self.index = index
        self.nfsExport = nfsExport
        self.inodeNumbers = inodeNumbers
        self.metacopy = metacopy
        self.volatile = volatile
        self.userXattr = userXattr
        self.uuid = uuid
        self.verity = verity
        self.fsync = fsync
        self.overrideCredentials = overrideCredentials
        self.additional = additional
    }

    /// The options in the order the library emits them, as `(key, value)` pairs; `value` is `nil` for flags.
    ///
    /// This is the single source for both the mount(2) string and the fsconfig(2) calls.
    var keyValues: [(key: String, value: String?)] {
        var result: [(key: String, value: String?)] = []
        // No row emits an option that is not given, so typed options all at their default emit nothing: the
        // common case skips the twelve emitter calls (two closure calls and a thunk each, 1,900 instructions of a
        // 1-layer plan's 6,000 under callgrind).
        if !typedOptionsAreNotGiven {
            // The emitters alone, read in place: iterating the table's rows would copy (and retain) every
            // closure and string of each row, which measurably slowed planning (`unionmount-bench --breakdown`).
            result.reserveCapacity(Self.emitters.count + additional.count)
            Self.emitters.withUnsafeBufferPointer { emitters in
                for emitter in emitters {
                    if let pair = emitter.emit(self) { result.append(pair) }
                }
            }
        }
        for option in additional { result.append((option.key, option.value)) }
        return result
    }

    /// Whether every typed option is "not given", as in `OverlayOptions()`; compared whole (the synthesized `==`),
    /// so a new property is covered without being named here.
    var typedOptionsAreNotGiven: Bool {
        var typed = self
        typed.additional = []
        return typed == Self.notGiven
    }

    /// Options with nothing given.
    private static let notGiven = OverlayOptions()
}
