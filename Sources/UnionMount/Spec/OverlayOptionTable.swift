/// One typed overlay option: its kernel key(s), how it is emitted, parsed back and passed to fuse-overlayfs.
///
/// ``OverlayOptions/table`` holds one per stored property of ``OverlayOptions`` (but `additional`), in the
/// order options are emitted. Emitting (``OverlayOptions/keyValues``, which every strategy writes from), parsing
/// an option string, the keys a raw option may not use, emptiness, the fuse-overlayfs word list and the defaults
/// the kernel shows on its own (read back by ``MountEntry/overlayLayout``) all read it: adding an option is one
/// property and one row.
struct OverlayOptionField: Sendable {
    /// What fuse-overlayfs does with the option's current value.
    enum FuseTreatment: Equatable {
        /// Nothing to pass (unset, or a value fuse-overlayfs behaves as by default).
        case none
        /// Pass this word.
        case word(String)
        /// fuse-overlayfs does not implement this value, described as given.
        case refused(String)
    }

    /// The property's name (`options.<field>` in errors).
    let field: String
    /// The keys the kernel parses into this option (`fs/overlayfs/params.c`).
    let keys: [String]
    /// The key and value to emit for the option's value, or nil when it is unset.
    let emit: @Sendable (OverlayOptions) -> (key: String, value: String?)?
    /// Parses one of ``keys`` (with its value) into the options, as the kernel's parser reads it.
    let parse: @Sendable (inout OverlayOptions, String, ArraySlice<UInt8>?) throws(UnionMountError) -> Void
    /// What fuse-overlayfs gets.
    let fuse: @Sendable (OverlayOptions) -> FuseTreatment
    /// Sets a value that is not the default (for tests that set each option alone).
    let example: @Sendable (inout OverlayOptions) -> Void
    /// Whether the kernel takes the option only through fsconfig(2), so a mount(2) rung cannot carry it.
    var newMountAPIOnly = false
    /// Whether the kernel shows this option of a mount on its own, as a default it chose rather than an option
    /// the mount was given (`ovl_show_options` prints some defaults), judged from all the overlay options the
    /// mount shows (`mounted`) and whether it has an upper layer; nil: never.
    var addedByKernel: (@Sendable (_ mounted: OverlayOptions, _ hasUpper: Bool) -> Bool)? = nil

    /// This row, with ``addedByKernel`` set.
    func shownByKernel(when rule: @escaping @Sendable (_ mounted: OverlayOptions, _ hasUpper: Bool) -> Bool) -> Self {
        var row = self
        row.addedByKernel = rule
        return row
    }
}

extension OverlayOptions {
    /// Every typed option, in emitting order.
    static let table: [OverlayOptionField] = [
        .flag(
            "defaultPermissions", "default_permissions", { $0.defaultPermissions }, { $0.defaultPermissions = $1 },
            fuse: .pass),
        .choice(
            "redirectDirectory", "redirect_dir", { $0.redirectDirectory }, { $0.redirectDirectory = $1 }, example: .off
        ) {
            $0 == .off ? .word("redirect_dir=off") : .refused("redirect_dir=\($0.rawValue) (only off)")
        }
        // The default without an upper layer is `on`; with `userxattr` (or no upper) it is `nofollow`.
        .shownByKernel { mounted, hasUpper in
            (mounted.redirectDirectory == .on && !hasUpper)
                || (mounted.redirectDirectory == .nofollow && (mounted.userXattr == true || !hasUpper))
        },
        .onOff("index", "index", { $0.index }, { $0.index = $1 }, example: false) { $0 ? .refused("index=on") : .none }
            // `nfs_export=on` turns the index on.
            .shownByKernel { mounted, _ in mounted.index == true && mounted.nfsExport == true },
        .onOff("nfsExport", "nfs_export", { $0.nfsExport }, { $0.nfsExport = $1 }, example: true) {
            $0 ? .refused("nfs_export=on") : .none
        },
        .choice("inodeNumbers", "xino", { $0.inodeNumbers }, { $0.inodeNumbers = $1 }, example: .off) {
            $0 == .off ? .none : .refused("xino=\($0.rawValue)")
        },
        .onOff("metacopy", "metacopy", { $0.metacopy }, { $0.metacopy = $1 }, example: true) {
            $0 ? .refused("metacopy=on") : .none
        },
        .flag("volatile", "volatile", { $0.volatile }, { $0.volatile = $1 }, fuse: .pass),
        .optionalFlag("userXattr", "userxattr", { $0.userXattr }, { $0.userXattr = $1 }),
        .choice("uuid", "uuid", { $0.uuid }, { $0.uuid = $1 }, example: .off) { .refused("uuid=\($0.rawValue)") }
            // Shown whatever was asked for: `on` by default, `null` when the filesystems cannot give one.
            .shownByKernel { mounted, _ in mounted.uuid == .on || mounted.uuid == .null },
        .choice("verity", "verity", { $0.verity }, { $0.verity = $1 }, example: .on) {
            $0 == .off ? .none : .refused("verity=\($0.rawValue)")
        },
        .choice("fsync", "fsync", { $0.fsync }, { $0.fsync = $1 }, example: .strict) {
            switch $0 {
            case .auto: .none
            case .strict: .refused("fsync=strict")
            case .volatile: .word("volatile")
            }
        },
        .pair(
            "overrideCredentials", on: "override_creds", off: "nooverride_creds", { $0.overrideCredentials },
            { $0.overrideCredentials = $1 }),
    ]

    /// Each row's ``OverlayOptionField/emit``, in order, for ``keyValues``; each in a struct, which keeps the
    /// closure as it was made (an array of bare closures holds them through a reabstraction thunk each).
    static let emitters = table.map { Emitter(emit: $0.emit) }

    /// One row's emitter.
    struct Emitter: Sendable {
        let emit: @Sendable (OverlayOptions) -> (key: String, value: String?)?
    }

    /// The row that parses `key`, if a typed option does.
    static func field(forKey key: String) -> OverlayOptionField? {
        table.first { $0.keys.contains(key) }
    }
}

extension OverlayOptionField {
    enum FlagFuse { case pass, ignore }

    /// A flag stored as `Bool`: emitted as its key when true.
    static func flag(
        _ field: String, _ key: String, _ get: @escaping @Sendable (OverlayOptions) -> Bool,
        _ set: @escaping @Sendable (inout OverlayOptions, Bool) -> Void, fuse: FlagFuse
    ) -> Self {
        Self(
            field: field, keys: [key],
            emit: { get($0) ? (key, nil) : nil },
            parse: { (options, key, value) throws(UnionMountError) in
                try flagValue(value, key: key)
                set(&options, true)
            },
            fuse: { get($0) && fuse == .pass ? .word(key) : .none },
            example: { set(&$0, true) })
    }

    /// A flag stored as `Bool?` (`userxattr`): emitted when true; `false` and nil both mean absent. fuse-overlayfs
    /// uses user xattrs when run unprivileged without being told, so nothing is passed.
    static func optionalFlag(
        _ field: String, _ key: String, _ get: @escaping @Sendable (OverlayOptions) -> Bool?,
        _ set: @escaping @Sendable (inout OverlayOptions, Bool?) -> Void
    ) -> Self {
        Self(
            field: field, keys: [key],
            emit: { get($0) == true ? (key, nil) : nil },
            parse: { (options, key, value) throws(UnionMountError) in
                try flagValue(value, key: key)
                set(&options, true)
            },
            fuse: { _ in .none },
            example: { set(&$0, true) })
    }

    /// Two flags for one `Bool?` (`override_creds` / `nooverride_creds`), taken by the kernel through fsconfig(2)
    /// only; fuse-overlayfs implements neither.
    static func pair(
        _ field: String, on: String, off: String, _ get: @escaping @Sendable (OverlayOptions) -> Bool?,
        _ set: @escaping @Sendable (inout OverlayOptions, Bool?) -> Void
    ) -> Self {
        Self(
            field: field, keys: [on, off],
            emit: { options in get(options).map { ($0 ? on : off, nil) } },
            parse: { (options, key, value) throws(UnionMountError) in
                try flagValue(value, key: key)
                set(&options, key == on)
            },
            fuse: { options in get(options).map { .refused($0 ? on : off) } ?? .none },
            example: { set(&$0, false) }, newMountAPIOnly: true)
    }

    /// `key=on|off` for a `Bool?` (`ovl_parameter_bool`); `fuse` says what fuse-overlayfs gets for a set value.
    static func onOff(
        _ field: String, _ key: String, _ get: @escaping @Sendable (OverlayOptions) -> Bool?,
        _ set: @escaping @Sendable (inout OverlayOptions, Bool?) -> Void, example: Bool,
        fuse: @escaping @Sendable (Bool) -> FuseTreatment
    ) -> Self {
        Self(
            field: field, keys: [key],
            emit: { options in get(options).map { (key, $0 ? "on" : "off") } },
            parse: { (options, key, value) throws(UnionMountError) in
                switch value.map({ String(decoding: $0, as: UTF8.self) }) ?? "" {
                case "on": set(&options, true)
                case "off": set(&options, false)
                default: throw .malformed(badValueMessage(value, key: key, expected: ["on", "off"]), input: key)
                }
            },
            fuse: { options in get(options).map(fuse) ?? .none },
            example: { set(&$0, example) })
    }

    /// `key=<value>` for an enum (`fsparam_enum`); `fuse` says what fuse-overlayfs gets for a set value.
    static func choice<Value: RawRepresentable & CaseIterable & Sendable>(
        _ field: String, _ key: String, _ get: @escaping @Sendable (OverlayOptions) -> Value?,
        _ set: @escaping @Sendable (inout OverlayOptions, Value?) -> Void, example: Value,
        fuse: @escaping @Sendable (Value) -> FuseTreatment
    ) -> Self where Value.RawValue == String {
        Self(
            field: field, keys: [key],
            emit: { options in get(options).map { (key, $0.rawValue) } },
            parse: { (options, key, value) throws(UnionMountError) in
                guard let value, let text = String(validating: value, as: UTF8.self), let parsed = Value(rawValue: text)
                else {
                    throw .malformed(
                        badValueMessage(value, key: key, expected: Value.allCases.map(\.rawValue)), input: key)
                }
                set(&options, parsed)
            },
            fuse: { options in get(options).map(fuse) ?? .none },
            example: { set(&$0, example) })
    }

    /// Refuses a value on a flag option, as `fs_parse` does ("Unexpected value for '…'").
    private static func flagValue(_ value: ArraySlice<UInt8>?, key: String) throws(UnionMountError) {
        if value != nil { throw .malformed("Unexpected value for '\(key)': it is a flag", input: key) }
    }

    private static func badValueMessage(_ value: ArraySlice<UInt8>?, key: String, expected: [String]) -> String {
        let given = value.map { "'\(Array($0).readable)'" } ?? "no value"
        return "Bad value for '\(key)': \(given), expected one of \(expected.joined(separator: ", "))"
    }
}
