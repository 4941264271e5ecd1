import SystemPackage

/// The union filesystem types, recognized from the raw type field without decoding it (none of the names has
/// a byte the mount table escapes, so the raw bytes match exactly when the decoded ones would).
enum UnionFilesystemKind: String, CaseIterable {
    case overlay = "overlay"
    case fuseOverlayfs = "fuse.fuse-overlayfs"
    case aufs = "aufs"

    init?(_ entry: MountEntry) {
        let fields = entry.fields  // computed from the line each time: read once
        let kind: UnionFilesystemKind? = entry.storage.withField(fields.filesystemType, line: fields.lineStart) {
            type in
            if type.elementsEqual("overlay".utf8) { return .overlay }
            if type.elementsEqual("aufs".utf8) { return .aufs }
            if type.elementsEqual("fuse.fuse-overlayfs".utf8) { return .fuseOverlayfs }
            return nil
        }
        guard let kind else { return nil }
        self = kind
    }
}
