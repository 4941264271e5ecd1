import SystemPackage

/// The union filesystem types, recognized from an entry's type field without making a `String`.
enum UnionFilesystemKind: String, CaseIterable {
    case overlay = "overlay"
    case fuseOverlayfs = "fuse.fuse-overlayfs"
    case aufs = "aufs"

    init?(_ entry: MountEntry) {
        let kind: UnionFilesystemKind? = entry.storage.withBytes(.filesystemType) { type in
            if type.elementsEqual("overlay".utf8) { return .overlay }
            if type.elementsEqual("aufs".utf8) { return .aufs }
            if type.elementsEqual("fuse.fuse-overlayfs".utf8) { return .fuseOverlayfs }
            return nil
        }
        guard let kind else { return nil }
        self = kind
    }
}
