import SystemPackage
import UnionMount

/// What a container changed: its writable (upper) layer compared with the merged view of the layers below it.
///
///     let changes = try LayerChanges.list(
///         upper: "/containers/c1/upper", lowers: ["/layers/app", "/layers/base"], format: .overlayTrusted)
///     for change in changes { print(change) }   // A etc/new, C etc/passwd, D tmp/old
///
/// The upper layer is read in every form its writer may have used, whatever `format` says about the lowers:
/// kernel overlay (character device 0/0 whiteouts, often hard links of a whiteout in the work directory;
/// `<prefix>overlay.opaque` of `format`; `origin`/`impure`/`uuid` bookkeeping), fuse-overlayfs (the same, plus a
/// `.wh..wh..opq` file and a `.wh..opq` device in each directory it makes opaque, and `user.fuseoverlayfs.*`
/// attributes when it cannot write `trusted.` ones) and aufs/OCI (`.wh.<name>`, `.wh..wh..opq`).
public enum LayerChanges {
    /// The changes in `upper` over `lowers`, sorted by path bytes.
    ///
    /// Like `docker diff`: an upper entry whose path the lowers do not show is added; one they show is modified
    /// (a directory only when it is opaque, replaces a lower directory below an opaque one, or differs from the
    /// lower directory in mode, owner or extended attributes other than overlay's — not in its times, which
    /// say only that a name inside changed, and which kernel overlay keeps on copy-up but fuse-overlayfs does
    /// not, so comparing them would make the same change list differ by backend); a
    /// whiteout of a name the lowers show is deleted (one for a name they do not show is ignored); an opaque
    /// directory that replaces a lower directory is modified, and each name the lower directory showed that the
    /// upper one does not hold is deleted. Changes below an added or deleted directory are listed path by path
    /// for additions, and only as the directory itself for deletions.
    ///
    /// Reads the lowers with ``MergedView/entries(branches:format:fuseOverlayfs:)`` and the upper layer with lstat(2),
    /// opendir(3)/readdir(3), llistxattr(2) and lgetxattr(2).
    ///
    /// - Parameters:
    ///   - upper: the container's upper directory.
    ///   - lowers: the layers below it, top first (may be empty).
    ///   - format: the whiteout format of the lowers and of overlay's attributes in the upper layer.
    /// - Throws: `UnionMountError.Code.invalidArgument` when `upper` or a lower layer is not a directory;
    ///   `UnionMountError.Code.systemCallFailed` naming the path that cannot be read.
    public static func list(upper: FilePath, lowers: [FilePath], format: WhiteoutFormat) throws(UnionMountError)
        -> [LayerChange]
    {
        var walker = try ChangeWalker(upper: upper, lowers: lowers, format: format)
        try walker.run()
        return walker.changes.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map {
            LayerChange(path: FilePath(bytes: $0.key), kind: $0.value)
        }
    }
}

/// The walk behind ``LayerChanges/list(upper:lowers:format:)`` and, with an output, behind
/// ``LayerChanges/export(upper:lowers:format:to:as:)``.
struct ChangeWalker {
    /// Where and how to write the changes as a layer.
    struct Output {
        var root: FilePath
        var format: WhiteoutFormat
        var copier = TreeCopier()
        /// The written copy of each hard-linked whiteout: later ones become links to it.
        var whiteouts: [InodeKey: FilePath] = [:]
    }

    let upper: FilePath
    let format: WhiteoutFormat
    let lower: LowerView
    var output: Output?
    var changes: [[UInt8]: LayerChange.Kind] = [:]

    init(upper: FilePath, lowers: [FilePath], format: WhiteoutFormat) throws(UnionMountError) {
        self.upper = (upper)
        self.format = format
        let info = try LayerIO.status(self.upper)
        guard info.type == .directory else {
            throw UnionMountError.invalidArgument(
                "\(self.upper.readable) is not a directory", input: self.upper.readable)
        }
        lower = try LowerView(lowers: lowers, format: format)
    }

    mutating func run() throws(UnionMountError) {
        let root = try UpperDirectory(upper, format: format)
        if let output { try LayerIO.makeDirectory(output.root) }
        try walk(root, relative: [], lowerShows: true, replaces: false)
    }

    /// Compares (and writes) the upper directory `directory` at `relative`.
    ///
    /// - Parameters:
    ///   - lowerShows: whether the lowers' contents below `relative` show through in the merge.
    ///   - replaces: whether the directory hides a lower directory the lowers show at `relative` (opaque, or below
    ///     an opaque one); such a directory is marked opaque in an exported layer when it is opaque itself.
    private mutating func walk(_ directory: UpperDirectory, relative: [UInt8], lowerShows: Bool, replaces: Bool)
        throws(UnionMountError)
    {
        let present = Set(directory.entries.map(\.name))
        var written: Set<[UInt8]> = []
        if lowerShows {
            for whiteout in directory.whiteouts where !present.contains(whiteout.name) {
                let path = LayerIO.join(relative, whiteout.name)
                guard lower[path] != nil, written.insert(whiteout.name).inserted else { continue }
                changes[path] = .deleted
                try writeWhiteout(whiteout, in: relative)
            }
        } else if lower[relative]?.type == .directory {
            for name in lower.names(in: relative) where !present.contains(name) {
                changes[LayerIO.join(relative, name)] = .deleted
            }
        }
        for entry in directory.entries {
            let path = LayerIO.join(relative, entry.name)
            let source = LayerIO.join(directory.path, entry.name)
            let before = lower[path]
            guard entry.info.type == .directory else {
                changes[path] = before == nil ? .added : .modified
                try copy(source, entry.info, to: path)
                continue
            }
            let child = try UpperDirectory(source, format: format)
            var childShows = false
            var childReplaces = false
            if let before {
                if before.type == .directory {
                    childShows = lowerShows && !child.opaque
                    childReplaces = !childShows
                    if !childShows {
                        changes[path] = .modified
                    } else if try directoryDiffers(child, lower.source(of: before)) {
                        changes[path] = .modified
                    }
                } else {
                    changes[path] = .modified
                }
            } else {
                changes[path] = .added
            }
            if output != nil { try LayerIO.makeDirectory(outputPath(path)) }
            try walk(child, relative: path, lowerShows: childShows, replaces: childReplaces && lowerShows)
        }
        guard output != nil else { return }
        if replaces && directory.opaque { try writeOpaque(directory, at: relative) }
        try TreeCopier.applyMetadata(
            outputPath(relative), from: directory.info, xattrs: exportedXattrs(directory.path))
    }

    /// Whether the upper directory differs from the lower one in mode, owner or attributes other than overlay's
    /// (times are not compared; see ``LayerChanges/list(upper:lowers:format:)``).
    private func directoryDiffers(_ directory: UpperDirectory, _ lowerPath: FilePath) throws(UnionMountError) -> Bool {
        let mine = directory.info
        let theirs = try LayerIO.status(lowerPath)
        if mine.mode != theirs.mode || mine.uid != theirs.uid || mine.gid != theirs.gid {
            return true
        }
        let own = try LayerIO.xattrs(directory.path).filter { !OverlayXattrs.isUnionOwned($0.name) }
        let other = try LayerIO.xattrs(lowerPath).filter { !OverlayXattrs.isUnionOwned($0.name) }
        return !own.elementsEqual(other) { $0.name == $1.name && $0.value == $1.value }
    }

    // MARK: writing

    private func outputPath(_ relative: [UInt8]) -> FilePath {
        guard let output else { return FilePath(bytes: relative) }
        return relative.isEmpty ? output.root : LayerIO.join(output.root, relative)
    }

    private mutating func copy(_ source: FilePath, _ info: FileStatus, to relative: [UInt8]) throws(UnionMountError) {
        guard output != nil else { return }
        let xattrs = try exportedXattrs(source)
        let destination = outputPath(relative)
        try output!.copier.copyEntry(source, info, to: destination, xattrs: xattrs)
    }

    /// A whiteout of `whiteout.name` in the output form, with the upper whiteout's mode, owner and times.
    private mutating func writeWhiteout(_ whiteout: UpperDirectory.Whiteout, in relative: [UInt8])
        throws(UnionMountError)
    {
        guard let output else { return }
        let name: [UInt8]
        if case .aufs = output.format {
            name = WhiteoutConverter.whiteoutPrefix + whiteout.name
        } else {
            name = whiteout.name
        }
        let destination = outputPath(LayerIO.join(relative, name))
        let key = InodeKey(whiteout.info)
        if whiteout.info.linkCount > 1, let first = output.whiteouts[key] {
            return try LayerIO.makeLink(destination, to: first)
        }
        if case .aufs = output.format {
            try LayerIO.makeEmptyFile(destination)
        } else {
            try LayerIO.makeNode(destination, type: .characterDevice, device: 0)
        }
        try TreeCopier.applyMetadata(destination, from: whiteout.info, xattrs: exportedXattrs(whiteout.path))
        if whiteout.info.linkCount > 1 { self.output!.whiteouts[key] = destination }
    }

    /// Marks the written copy of `directory` opaque: `.wh..wh..opq` (from the upper marker, the upper record, or
    /// the directory's own metadata) or `<prefix>overlay.opaque=y` with the marker's record when known.
    private func writeOpaque(_ directory: UpperDirectory, at relative: [UInt8]) throws(UnionMountError) {
        guard let output else { return }
        let destination = outputPath(relative)
        var record = directory.marker.map { OpaqueMarkerRecord($0.info) }
        if record == nil, let name = OverlayXattrs.ownName(OverlayXattrs.markerRecord, in: format),
            let value = try LayerIO.xattr(directory.path, name)
        {
            record = OpaqueMarkerRecord(decoding: value)
        }
        record?.link = nil
        switch output.format {
        case .aufs:
            let marker = record ?? OpaqueMarkerRecord.defaultMarker(forDirectory: directory.info)
            let path = LayerIO.join(destination, WhiteoutConverter.opaqueMarker)
            try LayerIO.makeEmptyFile(path)
            try LayerIO.setOwner(path, uid: marker.uid, gid: marker.gid)
            try LayerIO.setMode(path, UInt32(marker.mode))
            try LayerIO.setTimes(path, access: marker.accessTime, modification: marker.modificationTime)
        case .overlay:
            if let name = OverlayXattrs.ownName(OverlayXattrs.opaque, in: output.format) {
                try LayerIO.setXattr(destination, name, [UInt8(ascii: "y")])
            }
            if let record, let name = OverlayXattrs.ownName(OverlayXattrs.markerRecord, in: output.format) {
                try LayerIO.setXattr(destination, name, record.encoded)
            }
        }
    }

    /// The attributes of an upper file as the output form stores them: overlay's and fuse-overlayfs' own dropped,
    /// ordinary ones escaped as the output form needs.
    private func exportedXattrs(_ path: FilePath) throws(UnionMountError) -> [(name: String, value: [UInt8])] {
        guard let output else { return [] }
        var result: [(name: String, value: [UInt8])] = []
        for (name, value) in try LayerIO.xattrs(path) where !name.hasPrefix(OverlayXattrs.fuseOverlayPrefix) {
            switch OverlayXattrs.meaning(of: name, in: format) {
            case .plain(let plain):
                result.append((OverlayXattrs.storedName(plain: plain, in: output.format), value))
            case .overlay(let key):
                guard !OverlayXattrs.inexpressible.contains(key) else {
                    throw UnionMountError(
                        code: .unsupported,
                        message: "\(path.readable) carries \(name): a layer cannot express overlay's \(key)",
                        input: path.readable)
                }
            }
        }
        return result
    }
}
