import SystemPackage
import UnionMount

/// Copies files one by one with everything lstat(2) and llistxattr(2) show, keeping hard links of the copied
/// tree together. Shared by ``LayerTree/copy(from:to:)`` and ``LayerChanges/export(upper:lowers:format:to:as:)``.
struct TreeCopier {
    /// The copy of each hard-linked inode met so far: later names become links to it.
    private var copies: [InodeKey: FilePath] = [:]
    /// An inode never to descend into (the destination, when it lies inside the source).
    var excluded: InodeKey?

    /// Copies one entry that is not a directory (or creates an empty directory for a directory, whose metadata
    /// the caller sets with ``applyMetadata(_:from:xattrs:)`` after filling it).
    ///
    /// - Parameter xattrs: the extended attributes to give the copy (already mapped by the caller).
    /// - Returns: true when the copy is a new inode (metadata applied), false when it became a hard link.
    @discardableResult
    mutating func copyEntry(
        _ source: FilePath, _ info: FileStatus, to destination: FilePath, xattrs: [(name: String, value: [UInt8])]
    ) throws(UnionMountError) -> Bool {
        let type = info.type
        let key = InodeKey(info)
        if type != .directory && info.linkCount > 1 {
            if let first = copies[key] {
                try LayerIO.makeLink(destination, to: first)
                return false
            }
            copies[key] = destination
        }
        switch type {
        case .directory:
            try LayerIO.makeDirectory(destination)
            return true
        case .regular: try LayerIO.copyContents(source, to: destination)
        case .symbolicLink: try LayerIO.makeSymlink(destination, target: LayerIO.linkTarget(source))
        default: try LayerIO.makeNode(destination, type: type, device: info.specialDevice)
        }
        try Self.applyMetadata(destination, from: info, xattrs: xattrs)
        return true
    }

    /// Sets owner (lchown(2)), extended attributes (lsetxattr(2)), mode (chmod(2), not for symbolic links) and
    /// access/modification times (utimensat(2)) in the order that keeps each: chown clears set-id bits and
    /// capabilities, so it comes first; the times come last.
    static func applyMetadata(_ destination: FilePath, from info: FileStatus, xattrs: [(name: String, value: [UInt8])])
        throws(UnionMountError)
    {
        try LayerIO.setOwner(destination, uid: info.uid, gid: info.gid)
        for (name, value) in xattrs { try LayerIO.setXattr(destination, name, value) }
        if info.type != .symbolicLink { try LayerIO.setMode(destination, info.mode) }
        try LayerIO.setTimes(destination, of: info)
    }

    /// Copies the directory `source` (whose lstat is `info`) to the new path `destination`, everything below it
    /// included, then sets the directory's own metadata.
    mutating func copyTree(_ source: FilePath, _ info: FileStatus, to destination: FilePath) throws(UnionMountError) {
        try LayerIO.makeDirectory(destination)
        try copyChildren(of: source, to: destination)
        try Self.applyMetadata(destination, from: info, xattrs: LayerIO.xattrs(source))
    }

    /// Copies everything in the directory `source` into the existing directory `destination`.
    mutating func copyChildren(of source: FilePath, to destination: FilePath) throws(UnionMountError) {
        for name in try LayerIO.names(in: source) {
            let from = LayerIO.join(source, name)
            let to = LayerIO.join(destination, name)
            let info = try LayerIO.status(from)
            if info.type == .directory {
                if InodeKey(info) == excluded {
                    throw UnionMountError.invalidArgument(
                        "the destination \(destination.readable) lies inside the source tree", input: from.readable)
                }
                try copyTree(from, info, to: to)
            } else {
                try copyEntry(from, info, to: to, xattrs: LayerIO.xattrs(from))
            }
        }
    }
}
