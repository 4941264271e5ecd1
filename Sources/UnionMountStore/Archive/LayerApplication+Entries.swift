import SystemPackage
import UnionMount

extension LayerApplication {
    static let whiteoutPrefix = Array(".wh.".utf8)
    static let metaPrefix = Array(".wh..wh.".utf8)
    static let opaqueMarker = Array(".wh..wh..opq".utf8)

    /// Applies one entry.
    func apply(_ entry: TarEntry) throws(UnionMountError) {
        let limits = applier.limits
        let components = try names(entry.path, what: "the name")
        guard entry.size >= 0, entry.size <= limits.maximumEntrySize else {
            throw malformed("the entry declares \(entry.size) bytes, over the limit of \(limits.maximumEntrySize)")
        }
        guard entry.linkTarget.count <= limits.maximumPathLength else {
            throw malformed("the link target is longer than the limit of \(limits.maximumPathLength) bytes")
        }
        guard let last = components.last else { return try applyRoot(entry) }
        let parent = Array(components.dropLast())
        var name = last
        var isWhiteout = false
        if case .overlay = applier.whiteoutFormat, parent.contains(where: { $0.starts(with: Self.metaPrefix) }) {
            counts.skippedEntries += 1  // below aufs' bookkeeping (`.wh..wh.plnk/…`)
            return
        }
        if case .overlay = applier.whiteoutFormat, last.starts(with: Self.whiteoutPrefix) {
            if last == Self.opaqueMarker { return try applyOpaqueMarker(entry, in: parent) }
            if last.starts(with: Self.metaPrefix) {
                counts.skippedEntries += 1
                return
            }
            name = Array(last.dropFirst(Self.whiteoutPrefix.count))
            guard !name.isEmpty else { throw malformed("the whiteout '.wh.' names nothing") }
            isWhiteout = true
        }
        let path = ArchivePath.joined(parent + [name])
        if let existing = written[path], !(existing == .implicitDirectory && entry.kind == .directory && !isWhiteout) {
            throw duplicate(existing, whiteout: isWhiteout ? name : nil)
        }
        let directory = try parentDirectory(parent)
        let file = FilePath(bytes: name)
        if isWhiteout {
            try applyWhiteout(entry, file, in: directory)
            written[path] = .whiteout(archiveName: ArchivePath.joined(components))
            return
        }
        switch entry.kind {
        case .regular:
            try applyRegular(entry, file, in: directory)
            counts.regularFiles += 1
        case .directory:
            try applyDirectory(entry, file, in: directory, components: components)
            counts.directories += 1
            written[path] = .directory
            return
        case .symbolicLink:
            try applySymbolicLink(entry, file, in: directory)
            counts.symbolicLinks += 1
        case .hardLink:
            try applyHardLink(entry, file, in: directory, parent: parent)
            counts.hardLinks += 1
        case .fifo, .socket, .characterDevice, .blockDevice:
            try applyNode(entry, file, in: directory)
            counts.specialFiles += 1
        }
        written[path] = .file
    }

    /// The components of an archive name, or the refusal as an error.
    func names(_ bytes: [UInt8], what: String) throws(UnionMountError) -> [[UInt8]] {
        do {
            return try ArchivePath.components(bytes, maximumLength: applier.limits.maximumPathLength)
        } catch {
            throw malformed("\(what) \(bytes.readable) is refused: \(error.reason)")
        }
    }

    private func duplicate(_ existing: Written, whiteout: [UInt8]?) -> UnionMountError {
        if let whiteout, existing != .implicitDirectory {
            return malformed("the whiteout whites out \(whiteout.readable), which the same layer also has")
        }
        return switch existing {
        case .whiteout(let archiveName):
            malformed("the name is also whited out by \(archiveName.readable) in the same layer")
        case .implicitDirectory:
            malformed("the name comes after entries below it, as something other than a directory")
        case .directory, .file:
            malformed("the name appears twice in the archive (duplicate entries are refused, not overwritten)")
        }
    }

    // MARK: Kinds

    private func applyRoot(_ entry: TarEntry) throws(UnionMountError) {
        guard entry.kind == .directory else { throw malformed("the layer root is not a directory in the archive") }
        guard !rootDescribed else { throw malformed("the layer root appears twice in the archive") }
        rootDescribed = true
        try setOwner(of: root, entry)
        try setXattrs(entry, on: .open(root))
        pendingDirectories.append(
            PendingDirectory(
                components: [], permissions: entry.permissions, access: entry.accessTime ?? entry.modificationTime,
                modification: entry.modificationTime))
        counts.directories += 1
    }

    private func applyRegular(_ entry: TarEntry, _ name: FilePath, in directory: FileDescriptor)
        throws(UnionMountError)
    {
        let fd = try create(name, in: directory) { () throws(Errno) in
            try FileSystem.open(
                name, .writeOnly, options: [.create, .exclusiveCreate, .noFollow], permissions: 0o600,
                relativeTo: directory)
        }
        defer { FileSystem.close(fd) }
        try writeContents(entry, to: fd)
        try setOwner(of: fd, entry)
        do {
            try FileSystem.setPermissions(of: fd, entry.permissions)
        } catch {
            throw failed("fchmod", error, "set the mode")
        }
        try setXattrs(entry, on: .open(fd))
        do {
            try FileSystem.setTimes(
                of: fd, access: entry.accessTime ?? entry.modificationTime, modification: entry.modificationTime)
        } catch {
            throw failed("futimens", error, "set the times")
        }
    }

    private func writeContents(_ entry: TarEntry, to fd: FileDescriptor) throws(UnionMountError) {
        var end: Int64 = 0
        while let (bytes, offset) = try streamStep({ () throws(TarStream.Failure) in try stream.nextBlock() }) {
            guard offset >= 0, offset <= entry.size - Int64(bytes.count) else {
                throw malformed("the entry's data runs past its declared size of \(entry.size) bytes")
            }
            var done = 0
            while done < bytes.count {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[done...])
                do {
                    done += try FileSystem.write(fd, rest, atOffset: offset + Int64(done))
                } catch {
                    throw failed("pwrite", error, "write the contents")
                }
            }
            end = max(end, offset + Int64(bytes.count))
        }
        // A sparse file ending in a hole, or data shorter than declared (libarchive reports a truncated stream).
        if end < entry.size {
            do {
                try FileSystem.truncate(fd, size: entry.size)
            } catch {
                throw failed("ftruncate", error, "set the size")
            }
        }
    }

    private func applyDirectory(
        _ entry: TarEntry, _ name: FilePath, in directory: FileDescriptor, components: [[UInt8]]
    ) throws(UnionMountError) {
        do {
            try FileSystem.makeDirectory(name, permissions: 0o700, relativeTo: directory)
        } catch  where error == .fileExists {
            let info = try status(name, in: directory)
            if info.type != .directory {
                try remove(name, in: directory)
                do {
                    try FileSystem.makeDirectory(name, permissions: 0o700, relativeTo: directory)
                } catch {
                    throw failed("mkdirat", error, "create the directory")
                }
            }
        } catch {
            throw failed("mkdirat", error, "create the directory")
        }
        let fd: FileDescriptor
        do {
            fd = try FileSystem.open(name, .readOnly, options: [.directory, .noFollow], relativeTo: directory)
        } catch {
            throw failed("openat", error, "open the directory")
        }
        defer { FileSystem.close(fd) }
        try setOwner(of: fd, entry)
        try setXattrs(entry, on: .open(fd))
        pendingDirectories.append(
            PendingDirectory(
                components: components, permissions: entry.permissions,
                access: entry.accessTime ?? entry.modificationTime, modification: entry.modificationTime))
    }

    private func applySymbolicLink(_ entry: TarEntry, _ name: FilePath, in directory: FileDescriptor)
        throws(UnionMountError)
    {
        guard !entry.linkTarget.isEmpty else { throw malformed("the symbolic link has an empty target") }
        _ = try create(name, in: directory) { () throws(Errno) -> Int in
            try FileSystem.makeSymbolicLink(name, to: entry.linkTarget, relativeTo: directory)
            return 0
        }
        try setNodeMetadata(entry, name, in: directory, permissions: nil)
    }

    private func applyNode(_ entry: TarEntry, _ name: FilePath, in directory: FileDescriptor) throws(UnionMountError) {
        let type: FileKind
        switch entry.kind {
        case .characterDevice: type = .characterDevice
        case .blockDevice: type = .blockDevice
        case .socket: type = .socket
        default: type = .fifo
        }
        if applier.rootless && (type == .characterDevice || type == .blockDevice) {
            throw malformed(
                "a device node (\(entry.deviceMajor):\(entry.deviceMinor)) cannot be created by a rootless import")
        }
        let device = FileSystem.deviceNumber(major: entry.deviceMajor, minor: entry.deviceMinor)
        _ = try create(name, in: directory) { () throws(Errno) -> Int in
            try FileSystem.makeNode(name, type: type, permissions: 0o600, device: device, relativeTo: directory)
            return 0
        }
        try setNodeMetadata(entry, name, in: directory, permissions: entry.permissions)
    }

    private func applyWhiteout(_ entry: TarEntry, _ name: FilePath, in directory: FileDescriptor)
        throws(UnionMountError)
    {
        switch entry.kind {
        case .regular:
            guard entry.size == 0 else { throw malformed("the whiteout has contents (\(entry.size) bytes)") }
            _ = try create(name, in: directory) { () throws(Errno) -> Int in
                try FileSystem.makeNode(name, type: .characterDevice, permissions: 0o600, relativeTo: directory)
                return 0
            }
            try setNodeMetadata(entry, name, in: directory, permissions: entry.permissions)
            counts.whiteouts += 1
        case .hardLink:
            // aufs-era layers hard-link their whiteouts together; the devices stay linked.
            var target = try names(entry.linkTarget, what: "the hard link's target")
            guard let last = target.last, last.starts(with: Self.whiteoutPrefix), !last.starts(with: Self.metaPrefix),
                case .whiteout = written[ArchivePath.joined(target.dropLast() + [Array(last.dropFirst(4))])]
            else {
                throw malformed("the whiteout is a hard link to \(entry.linkTarget.readable), not an earlier whiteout")
            }
            target[target.count - 1] = Array(last.dropFirst(Self.whiteoutPrefix.count))
            try link(name, in: directory, to: target)
            counts.whiteouts += 1
        default:
            throw malformed("the whiteout is not an empty regular file")
        }
    }

    private func applyHardLink(_ entry: TarEntry, _ name: FilePath, in directory: FileDescriptor, parent: [[UInt8]])
        throws(UnionMountError)
    {
        let target = try names(entry.linkTarget, what: "the hard link's target")
        let targetPath = ArchivePath.joined(target)
        switch written[targetPath] {
        case .file:
            break
        case .none:
            throw malformed(
                "the hard link's target \(entry.linkTarget.readable) is not an earlier entry of this layer")
        case .directory, .implicitDirectory:
            throw malformed("the hard link's target \(entry.linkTarget.readable) is a directory")
        case .whiteout:
            throw malformed("the hard link's target \(entry.linkTarget.readable) is a whiteout")
        }
        try link(name, in: directory, to: target)
    }

    private func link(_ name: FilePath, in directory: FileDescriptor, to target: [[UInt8]]) throws(UnionMountError) {
        guard let targetName = target.last else { throw malformed("the hard link's target is the layer root") }
        let targetParent = try openDirectory(Array(target.dropLast()))
        defer { if targetParent != root { FileSystem.close(targetParent) } }
        _ = try create(name, in: directory) { () throws(Errno) -> Int in
            try FileSystem.makeHardLink(
                name, relativeTo: directory, to: FilePath(bytes: targetName), existingRelativeTo: targetParent)
            return 0
        }
    }

    // MARK: Creating names

    /// Runs `make`; when the name exists and is not a directory, removes it (never writing through it) and runs
    /// `make` again.
    private func create<R>(_ name: FilePath, in directory: FileDescriptor, _ make: () throws(Errno) -> R)
        throws(UnionMountError) -> R
    {
        do {
            return try make()
        } catch  where error == .fileExists {
            let info = try status(name, in: directory)
            guard info.type != .directory else {
                throw malformed("a directory of that name is already there")
            }
            try remove(name, in: directory)
            do {
                return try make()
            } catch {
                throw failed("create", error, "create the file")
            }
        } catch {
            throw failed("create", error, "create the file")
        }
    }

    private func status(_ name: FilePath, in directory: FileDescriptor) throws(UnionMountError) -> FileStatus {
        do {
            return try FileSystem.status(name, relativeTo: directory)
        } catch {
            throw failed("fstatat", error, "examine what is already there")
        }
    }

    private func remove(_ name: FilePath, in directory: FileDescriptor) throws(UnionMountError) {
        do {
            try FileSystem.unlink(name, relativeTo: directory)
        } catch {
            throw failed("unlinkat", error, "replace what is already there")
        }
    }
}
