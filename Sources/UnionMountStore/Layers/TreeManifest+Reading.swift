import SystemPackage
import UnionMount

extension TreeManifest {
    /// Reads the manifest of the tree at `root` (the root itself is the entry `.`).
    ///
    /// Wraps lstat(2), opendir(3)/readdir(3), open(2)/read(2) (file contents, `O_NOATIME` where allowed),
    /// readlink(2), llistxattr(2) and lgetxattr(2); symbolic links are never followed.
    ///
    /// - Throws: `UnionMountError.Code.invalidArgument` when `root` is not a directory;
    ///   `UnionMountError.Code.systemCallFailed` naming the path that cannot be read.
    public static func read(_ root: FilePath, options: Options = Options()) throws(UnionMountError) -> TreeManifest {
        let info = try LayerIO.status(root)
        guard info.type == .directory else {
            throw UnionMountError.invalidArgument("\(root.readable) is not a directory", input: root.readable)
        }
        var reader = ManifestReader(options: options)
        try reader.add(root, relative: [UInt8(ascii: ".")], info)
        try reader.walk(root, relative: [])
        return reader.finish()
    }

    /// The entry for the single file at `path`, described as `relative` (with no hard-link group).
    static func entry(at path: FilePath, relative: [UInt8], options: Options) throws(UnionMountError) -> Entry {
        var reader = ManifestReader(options: options)
        try reader.add(path, relative: relative, LayerIO.status(path))
        return reader.finish().entries[0]
    }
}

/// Collects entries and the inodes behind them.
private struct ManifestReader {
    let options: TreeManifest.Options
    var entries: [(key: [UInt8], entry: TreeManifest.Entry, inode: InodeKey?)] = []

    init(options: TreeManifest.Options) { self.options = options }

    mutating func walk(_ directory: FilePath, relative: [UInt8]) throws(UnionMountError) {
        for name in try LayerIO.names(in: directory) {
            let path = LayerIO.join(directory, name)
            let child = LayerIO.join(relative, name)
            let info = try LayerIO.status(path)
            try add(path, relative: child, info)
            if info.type == .directory { try walk(path, relative: child) }
        }
    }

    mutating func add(_ path: FilePath, relative: [UInt8], _ info: FileStatus) throws(UnionMountError) {
        let type: TreeManifest.EntryType
        switch info.type {
        case .regular: type = .file
        case .directory: type = .directory
        case .symbolicLink: type = .symlink
        case .characterDevice: type = .characterDevice
        case .blockDevice: type = .blockDevice
        case .fifo: type = .fifo
        default: type = .socket
        }
        var entry = TreeManifest.Entry(
            path: FilePath(bytes: relative), type: type, mode: UInt32(info.permissions), uid: info.uid,
            gid: info.gid)
        switch type {
        case .file:
            entry.size = UInt64(info.size)
            var digest = ContentDigest()
            try LayerIO.readChunks(path) { digest.update($0) }
            entry.digest = digest.finish()
        case .symlink: entry.symlinkTarget = try LayerIO.linkTarget(path)
        case .characterDevice, .blockDevice:
            let numbers = info.specialDeviceNumbers
            entry.device = .init(major: numbers.major, minor: numbers.minor)
        default: break
        }
        for (name, value) in try LayerIO.xattrs(path)
        where !options.ignoredXattrPrefixes.contains(where: { name.hasPrefix($0) }) {
            entry.xattrs.append(.init(name: name, value: value))
        }
        if options.includeModificationTimes {
            entry.modificationTime =
                Int64(info.modificationTime.seconds) * 1_000_000_000 + Int64(info.modificationTime.nanoseconds)
        }
        let linked = options.includeHardLinks && type != .directory && info.linkCount > 1
        entries.append((relative, entry, linked ? InodeKey(info) : nil))
    }

    func finish() -> TreeManifest {
        let sorted = entries.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        var counts: [InodeKey: Int] = [:]
        for item in sorted { if let inode = item.inode { counts[inode, default: 0] += 1 } }
        var groups: [InodeKey: Int] = [:]
        var result: [TreeManifest.Entry] = []
        for item in sorted {
            var entry = item.entry
            if let inode = item.inode, counts[inode, default: 0] > 1 {
                if groups[inode] == nil { groups[inode] = groups.count + 1 }
                entry.linkGroup = groups[inode]
            }
            result.append(entry)
        }
        var manifest = TreeManifest(entries: [], options: options)
        manifest.entries = result
        return manifest
    }
}
