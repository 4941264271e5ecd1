import SystemPackage

/// The branches of an overlay mount, decoded from the superblock options that `/proc/self/mountinfo` (field
/// 11) or `/proc/mounts` (field 4) shows for it.
///
/// For the kernel's overlayfs (`fs/overlayfs/params.c` `ovl_show_options`), the options are `lowerdir=` (the
/// user's legacy string, `:`-separated, `::` before the data-only layers, backslash-escaped) or one
/// `lowerdir+=`/`datadir+=` per layer (raw paths), then `upperdir=`, `workdir=` (legacy strings), then the
/// options whose value differs from the module default. Defaults come from Kconfig and the writable
/// parameters in `/sys/module/overlay/parameters/`, so the same mount may list other options on another host.
public struct OverlayLayout: Sendable, Hashable {
    /// Which implementation serves the mount.
    public enum Driver: String, Sendable, Hashable {
        /// The kernel's overlayfs, filesystem type `overlay`.
        case overlay
        /// fuse-overlayfs (containers/fuse-overlayfs), filesystem type `fuse.fuse-overlayfs`.
        case fuseOverlayfs
    }

    /// Which implementation serves the mount.
    public var driver: Driver
    /// The lower layers, topmost first (`lowerdir=` split into layers, or every `lowerdir+=`).
    public var lowerDirectories: [FilePath]
    /// The data-only lower layers (after `::` in `lowerdir=`, or every `datadir+=`), in order.
    public var dataDirectories: [FilePath]
    /// The upper layer (`upperdir=`); nil for a read-only overlay.
    public var upperDirectory: FilePath?
    /// The work directory (`workdir=`); nil without an upper layer.
    public var workDirectory: FilePath?
    /// The remaining options, in order, as text: the user's choices (`index=on`, `userxattr`, `metacopy=on`,
    /// …). `ro`/`rw` are left out, and so are, for an entry from `/proc/mounts`, the generic per-mount and
    /// superblock flags that file merges in (`nosuid`, `relatime`, …). A `lowerdir=` value that does not split
    /// into layers is kept here too.
    public var otherOptions: [String]
    /// Options shown although nobody asked for them, so not user intent: `uuid=on` (auto upgraded on a fresh
    /// upper layer), `uuid=null` (user namespace fallback), `redirect_dir=on` without an upper layer,
    /// `redirect_dir=nofollow` with `userxattr` or without an upper layer, `index=on` forced by
    /// `nfs_export=on`. For fuse-overlayfs: FUSE's `user_id=`, `group_id=`, and the `default_permissions`
    /// and `allow_other` that fuse-overlayfs always requests.
    public var kernelAddedOptions: [String]

    /// Creates a layout.
    public init(
        driver: Driver = .overlay,
        lowerDirectories: [FilePath],
        dataDirectories: [FilePath] = [],
        upperDirectory: FilePath? = nil,
        workDirectory: FilePath? = nil,
        otherOptions: [String] = [],
        kernelAddedOptions: [String] = []
    ) {
        self.driver = driver
        self.lowerDirectories = lowerDirectories
        self.dataDirectories = dataDirectories
        self.upperDirectory = upperDirectory
        self.workDirectory = workDirectory
        self.otherOptions = otherOptions
        self.kernelAddedOptions = kernelAddedOptions
    }

    /// Whether any layer path is relative. The kernel resolves relative paths against the mounter's working
    /// directory at mount time and shows them as given, so such a path cannot be resolved from here.
    public var hasRelativePaths: Bool {
        lowerDirectories.contains(where: \.isRelative) || dataDirectories.contains(where: \.isRelative)
            || upperDirectory?.isRelative == true || workDirectory?.isRelative == true
    }
}

extension MountEntry {
    /// The overlay branches of this mount, decoded from its superblock options (field 11 of
    /// `/proc/self/mountinfo`, field 4 of `/proc/mounts` or fstab); nil unless the filesystem type is `overlay`
    /// or `fuse.fuse-overlayfs`.
    ///
    /// Kernel overlay: the options are already split on raw commas and octal-decoded (see ``superOptions``);
    /// a `lowerdir=` value is split on unescaped `:`/`::` and each layer unescaped (a backslash takes the next
    /// byte), `upperdir=`/`workdir=` are unescaped the same way, and `lowerdir+=`/`datadir+=` values are taken
    /// as they are. A later `lowerdir=` replaces the layers of an earlier one; an empty one clears them.
    ///
    /// fuse-overlayfs: the kernel shows only FUSE's own options (`user_id=`, `group_id=`, …) for a FUSE mount,
    /// so the layers are known only from fstab-shaped files; a mountinfo entry decodes to no layers. Values
    /// are decoded as libfuse's option parser (`fuse_opt.c`: `\ooo` with a first digit 0–3 is a byte, `\x`
    /// is `x`) and then fuse-overlayfs (`read_dirs`: layers separated by `:`, empty layers skipped; since
    /// fuse-overlayfs PR #441 of 2025, `\:` is a literal colon — older versions split there too) do.
    public var overlayLayout: OverlayLayout? {
        let driver: OverlayLayout.Driver? =
            switch UnionFilesystemKind(self) {
            case .overlay: .overlay
            case .fuseOverlayfs: .fuseOverlayfs
            case .aufs, nil: nil
            }
        switch driver {
        case .overlay: return OverlayDecoder.decodeKernel(superOptions.bytes, fromProcMounts: origin == .mounts)
        case .fuseOverlayfs: return OverlayDecoder.decodeFuse(superOptions.bytes, fromProcMounts: origin == .mounts)
        case nil: return nil
        }
    }
}

/// Decodes overlay super options into an ``OverlayLayout``.
enum OverlayDecoder {
    /// Flags `/proc/mounts` merges into the options of every filesystem (`show_vfsmnt`, `show_sb_opts`,
    /// `show_mnt_opts`); they are not overlay options.
    static let genericFlags: Set<[UInt8]> = Set(
        [
            "sync", "dirsync", "mand", "lazytime", "nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime",
            "nosymfollow",
        ].map { Array($0.utf8) })

    static func isKey(_ key: ArraySlice<UInt8>, _ name: StaticString) -> Bool {
        key.elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    }

    /// Whether the option is `ro`/`rw` or, for `/proc/mounts`, a generic flag: not part of the layout.
    static func isGeneric(_ key: ArraySlice<UInt8>, value: ArraySlice<UInt8>?, fromProcMounts: Bool) -> Bool {
        guard value == nil else { return false }
        if isKey(key, "ro") || isKey(key, "rw") { return true }
        return fromProcMounts && genericFlags.contains(Array(key))
    }

    static func decodeKernel(_ options: [[UInt8]], fromProcMounts: Bool) -> OverlayLayout {
        var layout = OverlayLayout(driver: .overlay, lowerDirectories: [])
        var rest: [(text: String, key: ArraySlice<UInt8>, value: ArraySlice<UInt8>?)] = []
        for option in options {
            let (key, value) = OverlayEscaping.splitKeyValue(option[...])
            if isGeneric(key, value: value, fromProcMounts: fromProcMounts) { continue }
            switch value {
            case .some(let value) where isKey(key, "lowerdir"):
                if value.isEmpty {
                    layout.lowerDirectories = []
                    layout.dataDirectories = []
                } else if let layers = try? OverlayEscaping.splitLowerdir(value) {
                    layout.lowerDirectories = layers.lower.map { FilePath(bytes: OverlayEscaping.unescape($0)) }
                    layout.dataDirectories = layers.data.map { FilePath(bytes: OverlayEscaping.unescape($0)) }
                } else {
                    layout.otherOptions.append(option.readable)
                }
            case .some(let value) where isKey(key, "lowerdir+"):
                layout.lowerDirectories.append(FilePath(bytes: value))
            case .some(let value) where isKey(key, "datadir+"):
                layout.dataDirectories.append(FilePath(bytes: value))
            case .some(let value) where isKey(key, "upperdir"):
                layout.upperDirectory = FilePath(bytes: OverlayEscaping.unescape(value))
            case .some(let value) where isKey(key, "workdir"):
                layout.workDirectory = FilePath(bytes: OverlayEscaping.unescape(value))
            default:
                rest.append((option.readable, key, value))
            }
        }
        // The options table says which values the kernel shows on its own, from all the typed options shown.
        let rows = rest.map { OverlayOptions.field(forKey: String(decoding: $0.key, as: UTF8.self)) }
        var mounted = OverlayOptions()
        for ((_, key, value), row) in zip(rest, rows) {
            try? row?.parse(&mounted, String(decoding: key, as: UTF8.self), value)
        }
        let hasUpper = layout.upperDirectory != nil
        for ((text, _, _), row) in zip(rest, rows) {
            if row?.addedByKernel?(mounted, hasUpper) == true {
                layout.kernelAddedOptions.append(text)
            } else {
                layout.otherOptions.append(text)
            }
        }
        return layout
    }

    static func decodeFuse(_ options: [[UInt8]], fromProcMounts: Bool) -> OverlayLayout {
        var layout = OverlayLayout(driver: .fuseOverlayfs, lowerDirectories: [])
        for option in options {
            let (key, value) = OverlayEscaping.splitKeyValue(option[...])
            if isGeneric(key, value: value, fromProcMounts: fromProcMounts) { continue }
            switch value {
            case .some(let value) where isKey(key, "lowerdir"):
                layout.lowerDirectories = fuseLayers(value).map { FilePath(bytes: $0) }
            case .some(let value) where isKey(key, "upperdir"):
                layout.upperDirectory = FilePath(bytes: fusePath(value))
            case .some(let value) where isKey(key, "workdir"):
                layout.workDirectory = FilePath(bytes: fusePath(value))
            case .some where isKey(key, "user_id") || isKey(key, "group_id"):
                layout.kernelAddedOptions.append(option.readable)
            case .none where isKey(key, "default_permissions") || isKey(key, "allow_other"):
                layout.kernelAddedOptions.append(option.readable)
            default:
                layout.otherOptions.append(option.readable)
            }
        }
        return layout
    }

    /// libfuse's option unescaping (`fuse_opt.c` `process_real_option_group`): `\ooo` with a first digit 0–3 is
    /// one byte, `\x` is `x`, a trailing lone backslash stays.
    static func libfuseUnescape(_ value: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.count)
        var index = value.startIndex
        while index < value.endIndex {
            let byte = value[index]
            guard byte == OverlayGrammar.backslash, index + 1 < value.endIndex else {
                out.append(byte)
                index += 1
                continue
            }
            if index + 3 < value.endIndex {
                let first = value[index + 1] &- UInt8(ascii: "0")
                let second = value[index + 2] &- UInt8(ascii: "0")
                let third = value[index + 3] &- UInt8(ascii: "0")
                if first < 4 && second < 8 && third < 8 {
                    out.append(first << 6 | second << 3 | third)
                    index += 4
                    continue
                }
            }
            out.append(value[index + 1])
            index += 2
        }
        return out
    }

    /// A fuse-overlayfs `lowerdir=` value as layers: libfuse-unescaped, split on `:` not preceded by `\`, `\:`
    /// turned into `:`, empty layers skipped.
    static func fuseLayers(_ value: ArraySlice<UInt8>) -> [[UInt8]] {
        let unescaped = libfuseUnescape(value)
        var layers: [[UInt8]] = []
        var current: [UInt8] = []
        var index = 0
        while index < unescaped.count {
            let byte = unescaped[index]
            if byte == OverlayGrammar.backslash, index + 1 < unescaped.count,
                unescaped[index + 1] == OverlayGrammar.colon
            {
                current.append(OverlayGrammar.colon)
                index += 2
                continue
            }
            if byte == OverlayGrammar.colon {
                if !current.isEmpty { layers.append(current) }
                current = []
            } else {
                current.append(byte)
            }
            index += 1
        }
        if !current.isEmpty { layers.append(current) }
        return layers
    }

    /// A fuse-overlayfs `upperdir=`/`workdir=` value: libfuse-unescaped, `\:` turned into `:`.
    static func fusePath(_ value: ArraySlice<UInt8>) -> [UInt8] {
        let unescaped = libfuseUnescape(value)
        var out: [UInt8] = []
        out.reserveCapacity(unescaped.count)
        var index = 0
        while index < unescaped.count {
            if unescaped[index] == OverlayGrammar.backslash, index + 1 < unescaped.count,
                unescaped[index + 1] == OverlayGrammar.colon
            {
                index += 1
            }
            out.append(unescaped[index])
            index += 1
        }
        return out
    }
}
