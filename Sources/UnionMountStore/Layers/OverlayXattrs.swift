import UnionMount

/// What an extended attribute's name means in a whiteout format, and how it is written in another.
///
/// In the overlay form with prefix `P` (`trusted.` or `user.`), `P overlay.<key>` is overlay's own
/// (`opaque`, `whiteout`, `origin`, …) and `P overlay.overlay.<key>` is the escaped form of an ordinary
/// attribute named `P overlay.<key>` (overlay shows it under that name through a mount). Every other name,
/// and every name in the aufs form, is ordinary data.
enum OverlayXattrs {
    /// Overlay keys (after `<prefix>overlay.`) that the conversion turns into whiteouts, opaque markers or drops.
    static let opaque = "opaque"
    static let whiteout = "whiteout"
    /// This library's record of an opaque marker's own metadata (see ``OpaqueMarkerRecord``).
    static let markerRecord = "unionmount.opaque-marker"
    /// overlay's bookkeeping, meaningless outside the upper directory it was written in.
    static let bookkeeping: Set<String> = ["origin", "impure", "uuid", "nlink"]
    /// Keys of the overlay form that the aufs form cannot express.
    static let inexpressible: Set<String> = ["redirect", "metacopy"]

    /// The two prefixes the overlay form may use.
    static let prefixes = ["trusted.", "user."]
    /// fuse-overlayfs' own attributes when it cannot write `trusted.` ones (`user.fuseoverlayfs.opaque`, `.origin`).
    static let fuseOverlayPrefix = "user.fuseoverlayfs."

    enum Meaning: Equatable {
        /// Ordinary data, named as it would be outside any union.
        case plain(String)
        /// overlay's own attribute `<prefix>overlay.<key>`.
        case overlay(key: String)
    }

    /// The meaning of the stored attribute `name` in `format`.
    static func meaning(of name: String, in format: WhiteoutFormat) -> Meaning {
        guard case .overlay(let prefix) = format else { return .plain(name) }
        let own = prefix + "overlay."
        guard name.hasPrefix(own) else { return .plain(name) }
        let key = String(name.dropFirst(own.count))
        if key.hasPrefix("overlay.") { return .plain(own + key.dropFirst("overlay.".count)) }
        return .overlay(key: key)
    }

    /// The stored name of the ordinary attribute `plain` in `format` (escaped when overlay would claim it).
    static func storedName(plain: String, in format: WhiteoutFormat) -> String {
        guard case .overlay(let prefix) = format, plain.hasPrefix(prefix + "overlay.") else { return plain }
        return prefix + "overlay.overlay." + plain.dropFirst((prefix + "overlay.").count)
    }

    /// The stored name of overlay's own attribute `key` in the overlay form `format`.
    static func ownName(_ key: String, in format: WhiteoutFormat) -> String? {
        guard case .overlay(let prefix) = format else { return nil }
        return prefix + "overlay." + key
    }

    /// Whether `name` is overlay's or fuse-overlayfs' own in any form (both prefixes), for comparisons that look
    /// only at what a user set.
    static func isUnionOwned(_ name: String) -> Bool {
        name.hasPrefix("trusted.overlay.") || name.hasPrefix("user.overlay.") || name.hasPrefix(fuseOverlayPrefix)
    }
}
