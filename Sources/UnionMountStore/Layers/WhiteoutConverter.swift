import SystemPackage
import UnionMount

/// One pass of ``WhiteoutConversion/convert(_:from:to:)``: with `apply` false it only checks (and finds the hard
/// links of opaque markers), with `apply` true it converts.
struct WhiteoutConverter {
    /// What a name of a hard-linked inode is in the aufs form.
    enum Role { case whiteout, marker, plain, bookkeeping }

    let root: FilePath
    let from: WhiteoutFormat
    let to: WhiteoutFormat
    let apply: Bool
    /// For each hard-linked opaque marker: the path (relative, aufs form) of the name its record links to.
    var anchors: [InodeKey: [UInt8]] = [:]

    private var groups: [InodeKey: [(path: [UInt8], role: Role)]] = [:]
    /// The first converted name of each hard-linked whiteout: later names become links to it.
    private var created: [InodeKey: FilePath] = [:]
    /// Hard-linked inodes whose attributes were already rewritten.
    private var rewritten: Set<InodeKey> = []
    private var pendingMarkers:
        [(directory: FilePath, marker: [UInt8], record: OpaqueMarkerRecord, times: FileStatus)] = []

    static let whiteoutPrefix = Array(".wh.".utf8)
    static let opaqueMarker = Array(".wh..wh..opq".utf8)
    static let bookkeepingPrefix = Array(".wh..wh.".utf8)

    init(root: FilePath, from: WhiteoutFormat, to: WhiteoutFormat, apply: Bool) {
        self.root = root
        self.from = from
        self.to = to
        self.apply = apply
    }

    mutating func run() throws(UnionMountError) {
        let info = try LayerIO.status(root)
        switch (from, to) {
        case (.aufs, .overlay): try toOverlay(root, [], info)
        case (.overlay, .aufs):
            try toAufs(root, [], info)
            if apply { try writeMarkers() }
        case (.overlay, .overlay): try renamePrefix(root, info)
        case (.aufs, .aufs): return
        }
        if !apply { try resolveGroups() }
    }

    // MARK: aufs → overlay

    private mutating func toOverlay(_ directory: FilePath, _ relative: [UInt8], _ info: FileStatus)
        throws(UnionMountError)
    {
        let names = try LayerIO.names(in: directory)
        let present = Set(names)
        var record: OpaqueMarkerRecord?
        var directories: [(path: FilePath, relative: [UInt8], info: FileStatus)] = []
        for name in names {
            let path = LayerIO.join(directory, name)
            let child = LayerIO.join(relative, name)
            let entry = try LayerIO.status(path)
            let type = entry.type
            if name == Self.opaqueMarker {
                guard type == .regular, entry.size == 0 else {
                    throw unsupported("the opaque marker is not an empty regular file", path)
                }
                if let xattr = try LayerIO.xattrNames(path).first {
                    throw unsupported("the opaque marker carries \(xattr), which the overlay form cannot keep", path)
                }
                if entry.linkCount > 1 { note(entry, child, .marker) }
                // Looked up whatever the link count is now: converting the other names lowers it.
                var link: [UInt8]?
                if let anchor = anchors[InodeKey(entry)], anchor != child { link = anchor }
                record = OpaqueMarkerRecord(entry, link: link)
                if apply { try LayerIO.remove(path) }
            } else if name.starts(with: Self.bookkeepingPrefix) {
                if entry.linkCount > 1 && type != .directory { note(entry, child, .bookkeeping) }
                if apply { try LayerIO.removeTree(path) }
            } else if name.starts(with: Self.whiteoutPrefix) {
                let target = Array(name.dropFirst(Self.whiteoutPrefix.count))
                guard !target.isEmpty else {
                    throw UnionMountError.malformed("\(path.readable) whites out an empty name", input: path.readable)
                }
                guard !present.contains(target) else {
                    throw unsupported(
                        "whites out \(target.readable), which is also in the same directory; the overlay form has one"
                            + " name for both", path)
                }
                guard type == .regular, entry.size == 0 else {
                    throw unsupported("a whiteout that is not an empty regular file cannot become a device", path)
                }
                let xattrs = try translatedXattrs(path, entry, consumed: [])
                if let user = xattrs.first(where: { $0.name.hasPrefix("user.") }) {
                    throw unsupported("carries \(user.name), which a whiteout device cannot hold", path)
                }
                if entry.linkCount > 1 { note(entry, child, .whiteout) }
                if apply {
                    let device = LayerIO.join(directory, target)
                    // Keyed by the source inode (alive until its last name goes), not by the current link
                    // count, which drops as the names are converted.
                    if let first = created[InodeKey(entry)] {
                        try LayerIO.makeLink(device, to: first)
                    } else {
                        try LayerIO.makeNode(device, type: .characterDevice, device: 0)
                        try TreeCopier.applyMetadata(device, from: entry, xattrs: xattrs)
                        created[InodeKey(entry)] = device
                    }
                    try LayerIO.remove(path)
                }
            } else if type == .directory {
                directories.append((path, child, entry))
            } else {
                if entry.linkCount > 1 { note(entry, child, .plain) }
                try rewriteXattrs(path, entry, consumed: [])
            }
        }
        for child in directories { try toOverlay(child.path, child.relative, child.info) }
        try rewriteXattrs(directory, info, consumed: [])
        guard apply else { return }
        if let record {
            try LayerIO.setXattr(directory, own(OverlayXattrs.opaque, to), [UInt8(ascii: "y")])
            try LayerIO.setXattr(directory, own(OverlayXattrs.markerRecord, to), record.encoded)
        }
        try LayerIO.setTimes(directory, of: info)
    }

    private mutating func note(_ info: FileStatus, _ path: [UInt8], _ role: Role) {
        guard !apply else { return }
        groups[InodeKey(info), default: []].append((path, role))
    }

    /// After the checking pass: refuses whiteouts hard-linked to ordinary files and picks, for hard-linked opaque
    /// markers, the name their record points to (an ordinary file or whiteout first, else the first marker).
    private mutating func resolveGroups() throws(UnionMountError) {
        for (key, members) in groups {
            let sorted = members.sorted { $0.path.lexicographicallyPrecedes($1.path) }
            let whiteout = sorted.first { $0.role == .whiteout }
            let plain = sorted.first { $0.role == .plain }
            if let whiteout, let plain {
                throw unsupported(
                    "is a hard link of the ordinary file \(plain.path.readable); a whiteout device cannot be",
                    LayerIO.join(root, whiteout.path))
            }
            guard sorted.contains(where: { $0.role == .marker }) else { continue }
            anchors[key] = (whiteout ?? plain ?? sorted.first { $0.role == .marker })?.path
        }
    }

    // MARK: overlay → aufs

    private mutating func toAufs(_ directory: FilePath, _ relative: [UInt8], _ info: FileStatus) throws(UnionMountError)
    {
        var opaque = false
        var xattrWhiteouts = false
        if let value = try LayerIO.xattr(directory, own(OverlayXattrs.opaque, from)) {
            switch value {
            case [UInt8(ascii: "y")]: opaque = true
            case [UInt8(ascii: "x")]: xattrWhiteouts = true
            default:
                throw UnionMountError.malformed(
                    "\(directory.readable) has \(own(OverlayXattrs.opaque, from))=\(value.readable), not y or x",
                    input: directory.readable)
            }
        }
        var record: OpaqueMarkerRecord?
        if let value = try LayerIO.xattr(directory, own(OverlayXattrs.markerRecord, from)) {
            guard let decoded = OpaqueMarkerRecord(decoding: value) else {
                throw UnionMountError.malformed(
                    "\(directory.readable) has an unreadable \(own(OverlayXattrs.markerRecord, from)): \(value.readable)",
                    input: directory.readable)
            }
            record = decoded
        }
        var directories: [(path: FilePath, relative: [UInt8], info: FileStatus)] = []
        for name in try LayerIO.names(in: directory) {
            let path = LayerIO.join(directory, name)
            guard !name.starts(with: Self.whiteoutPrefix) else {
                throw unsupported("the aufs form would read this name as a whiteout or as aufs' own", path)
            }
            let entry = try LayerIO.status(path)
            let type = entry.type
            let whiteoutPath = LayerIO.join(directory, Self.whiteoutPrefix + name)
            if type == .characterDevice && entry.specialDevice == 0 {
                let xattrs = try translatedXattrs(path, entry, consumed: [])
                guard apply else { continue }
                if let first = created[InodeKey(entry)] {
                    try LayerIO.makeLink(whiteoutPath, to: first)
                } else {
                    try LayerIO.makeEmptyFile(whiteoutPath)
                    try TreeCopier.applyMetadata(whiteoutPath, from: entry, xattrs: xattrs)
                    created[InodeKey(entry)] = whiteoutPath
                }
                try LayerIO.remove(path)
            } else if xattrWhiteouts, type == .regular, entry.size == 0,
                try LayerIO.xattr(path, own(OverlayXattrs.whiteout, from)) != nil
            {
                if apply { try LayerIO.move(path, to: whiteoutPath) }
                try rewriteXattrs(apply ? whiteoutPath : path, entry, consumed: [OverlayXattrs.whiteout])
            } else if type == .directory {
                directories.append((path, LayerIO.join(relative, name), entry))
            } else {
                try rewriteXattrs(path, entry, consumed: [])
            }
        }
        for child in directories { try toAufs(child.path, child.relative, child.info) }
        try rewriteXattrs(directory, info, consumed: [OverlayXattrs.opaque, OverlayXattrs.markerRecord])
        guard apply else { return }
        if opaque {
            let marker = LayerIO.join(relative, Self.opaqueMarker)
            pendingMarkers.append(
                (directory, marker, record ?? OpaqueMarkerRecord.defaultMarker(forDirectory: info), info))
        }
        try LayerIO.setTimes(directory, of: info)
    }

    /// Writes the opaque markers once every whiteout exists, in path order, so that a marker whose record links
    /// to another name finds it.
    private func writeMarkers() throws(UnionMountError) {
        for pending in pendingMarkers.sorted(by: { $0.marker.lexicographicallyPrecedes($1.marker) }) {
            let path = LayerIO.join(pending.directory, Self.opaqueMarker)
            let record = pending.record
            if let link = record.link, try LayerIO.statusIfPresent(LayerIO.join(root, link)) != nil {
                try LayerIO.makeLink(path, to: LayerIO.join(root, link))
            } else {
                try LayerIO.makeEmptyFile(path)
                try LayerIO.setOwner(path, uid: record.uid, gid: record.gid)
                try LayerIO.setMode(path, UInt32(record.mode))
                try LayerIO.setTimes(path, access: record.accessTime, modification: record.modificationTime)
            }
            try LayerIO.setTimes(pending.directory, of: pending.times)
        }
    }

    // MARK: overlay → overlay

    private mutating func renamePrefix(_ directory: FilePath, _ info: FileStatus) throws(UnionMountError) {
        for name in try LayerIO.names(in: directory) {
            let path = LayerIO.join(directory, name)
            let entry = try LayerIO.status(path)
            if entry.type == .directory {
                try renamePrefix(path, entry)
            } else {
                try rewriteXattrs(path, entry, consumed: [])
            }
        }
        try rewriteXattrs(directory, info, consumed: [])
    }

    // MARK: attributes

    /// The attributes of `path` as the target form writes them; overlay keys in `consumed` are left to the caller.
    private func translatedXattrs(_ path: FilePath, _ info: FileStatus, consumed: Set<String>) throws(UnionMountError)
        -> [(name: String, value: [UInt8])]
    {
        var result: [(name: String, value: [UInt8])] = []
        for (name, value) in try LayerIO.xattrs(path) {
            switch OverlayXattrs.meaning(of: name, in: from) {
            case .plain(let plain):
                result.append((OverlayXattrs.storedName(plain: plain, in: to), value))
            case .overlay(let key):
                if let renamed = OverlayXattrs.ownName(key, in: to) {
                    result.append((renamed, value))
                } else if !consumed.contains(key) && !OverlayXattrs.bookkeeping.contains(key) {
                    let reason =
                        OverlayXattrs.inexpressible.contains(key)
                        ? "overlay's \(key) has no aufs form" : "the aufs form has no meaning for it here"
                    throw unsupported("carries \(name): \(reason)", path)
                }
            }
        }
        return result
    }

    /// Rewrites the attributes of `path` in the target form (once per inode).
    private mutating func rewriteXattrs(_ path: FilePath, _ info: FileStatus, consumed: Set<String>)
        throws(UnionMountError)
    {
        let type = info.type
        if type != .directory && info.linkCount > 1 {
            guard rewritten.insert(InodeKey(info)).inserted else { return }
        }
        let old = try LayerIO.xattrs(path)
        let new = try translatedXattrs(path, info, consumed: consumed)
        let oldNames = Set(old.map(\.name))
        if type != .regular && type != .directory,
            let user = new.first(where: { $0.name.hasPrefix("user.") && !oldNames.contains($0.name) })
        {
            throw unsupported("would need \(user.name), which only regular files and directories can hold", path)
        }
        guard apply else { return }
        let newNames = Set(new.map(\.name))
        for (name, _) in old where !newNames.contains(name) { try LayerIO.removeXattr(path, name) }
        for (name, value) in new where !old.contains(where: { $0.name == name && $0.value == value }) {
            try LayerIO.setXattr(path, name, value)
        }
    }

    private func own(_ key: String, _ format: WhiteoutFormat) -> String {
        OverlayXattrs.ownName(key, in: format) ?? key
    }

    private func unsupported(_ message: String, _ path: FilePath) -> UnionMountError {
        UnionMountError(code: .unsupported, message: "\(path.readable): \(message)", input: path.readable)
    }
}
