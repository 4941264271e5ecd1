import SystemPackage
import UnionMount

/// One run of ``LayerArchiveWriter``: the walk over the layer directory, by descriptors, and the entries it
/// writes.
final class LayerExport {
    /// One name of a directory, as it will be written.
    private struct Item {
        /// The name in the directory.
        var name: [UInt8]
        /// The name in the archive (`.wh.<name>` for a whiteout).
        var archiveName: [UInt8]
        var info: FileStatus
        var role: Role
    }

    private enum Role {
        case plain
        /// An overlay whiteout (device or xattr form), written as `.wh.<name>`.
        case whiteout
    }

    static let whiteoutPrefix = Array(".wh.".utf8)
    static let metaPrefix = Array(".wh..wh.".utf8)
    static let opaqueMarker = Array(".wh..wh..opq".utf8)
    /// Attributes never written: the host's SELinux label is not part of a layer.
    static let droppedXattrs: Set<String> = ["security.selinux"]

    let tar: TarWriter
    private let format: WhiteoutFormat
    private let layer: FilePath
    private let clamp: FileTime?
    /// The archive name of the first name of every inode with several names.
    private var firstNames: [InodeKey: [UInt8]] = [:]
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
    private(set) var entries = 0
    private(set) var skippedSockets = 0

    init(writer: LayerArchiveWriter, layer: FilePath, output: FileDescriptor) throws(UnionMountError) {
        format = writer.whiteoutFormat
        self.layer = layer
        clamp = writer.options.clampTimes.map { FileTime(seconds: Int($0), nanoseconds: 0) }
        do {
            tar = try TarWriter(writingTo: output, compression: writer.options.compression)
        } catch {
            throw UnionMountError(code: error.code, message: error.message, input: layer.readable)
        }
    }

    deinit { buffer.deallocate() }

    // MARK: Directories

    /// Writes the directory open as `fd` (taken over: closed here) at archive path `path` and everything in it.
    func directory(_ fd: FileDescriptor, path: [UInt8], info known: FileStatus?) throws(UnionMountError) {
        let stream: DirectoryStream
        do {
            stream = try DirectoryStream(taking: fd)
        } catch {
            throw systemFailure("fdopendir", error, "read the directory", path)
        }
        let dirfd = stream.descriptor
        let info: FileStatus
        if let known { info = known } else { info = try status(of: dirfd, path: path) }
        let xattrs = try attributes(of: dirfd, path: path)
        var opaque = false
        var xattrWhiteouts = false
        var marker: OpaqueMarkerRecord?
        if case .overlay = format {
            if let value = xattrs.own[OverlayXattrs.opaque] {
                switch value {
                case [UInt8(ascii: "y")]: opaque = true
                case [UInt8(ascii: "x")]: xattrWhiteouts = true
                default:
                    throw malformed("has overlay.opaque=\(value.readable), not y or x", path)
                }
            }
            if let value = xattrs.own[OverlayXattrs.markerRecord] {
                guard let record = OpaqueMarkerRecord(decoding: value) else {
                    throw malformed("has an unreadable opaque marker record \(value.readable)", path)
                }
                marker = record
            }
        }
        try write(
            TarWriter.Header(
                path: path.isEmpty ? Array("./".utf8) : path + [LayerIO.slash], kind: .directory,
                permissions: info.permissions, uid: info.uid, gid: info.gid,
                modificationTime: clamped(info.modificationTime), xattrs: xattrs.plain),
            path: path)

        let names: [[UInt8]]
        do {
            names = try stream.names()
        } catch {
            throw systemFailure("readdir", error, "read the directory", path)
        }
        var items: [Item] = []
        for name in names {
            let child = LayerIO.join(path, name)
            let entry: FileStatus
            do {
                entry = try FileSystem.status(FilePath(bytes: name), relativeTo: dirfd)
            } catch {
                throw systemFailure("fstatat", error, "examine", child)
            }
            switch format {
            case .aufs:
                if name.starts(with: Self.metaPrefix) && name != Self.opaqueMarker { continue }  // aufs' own
                items.append(Item(name: name, archiveName: name, info: entry, role: .plain))
            case .overlay:
                guard !name.starts(with: Self.whiteoutPrefix) else {
                    throw UnionMountError(
                        code: .unsupported,
                        message: "\(describe(child)): a tar would read this name as a whiteout or as aufs' own",
                        input: child.readable)
                }
                var whiteout = entry.isWhiteoutDevice
                if !whiteout && xattrWhiteouts && entry.type == .regular && entry.size == 0 {
                    whiteout = try isXattrWhiteout(name, in: dirfd, path: child)
                }
                if whiteout {
                    items.append(
                        Item(name: name, archiveName: Self.whiteoutPrefix + name, info: entry, role: .whiteout))
                } else {
                    items.append(Item(name: name, archiveName: name, info: entry, role: .plain))
                }
            }
        }
        if opaque {
            let record = marker ?? OpaqueMarkerRecord.defaultMarker(forDirectory: info)
            try write(
                TarWriter.Header(
                    path: LayerIO.join(path, Self.opaqueMarker), kind: .regular, permissions: record.mode,
                    uid: record.uid, gid: record.gid, modificationTime: clamped(record.modificationTime)),
                path: path)
        }
        items.sort { $0.archiveName.lexicographicallyPrecedes($1.archiveName) }
        for item in items { try write(item, in: dirfd, parent: path) }
    }

    // MARK: Entries

    private func write(_ item: Item, in dirfd: FileDescriptor, parent: [UInt8]) throws(UnionMountError) {
        let path = LayerIO.join(parent, item.archiveName)
        let info = item.info
        let name = FilePath(bytes: item.name)
        if info.type != .directory && info.linkCount > 1 {
            let key = InodeKey(info)
            if let first = firstNames[key] {
                return try write(
                    TarWriter.Header(
                        path: path, kind: .hardLink, permissions: info.permissions, uid: info.uid, gid: info.gid,
                        modificationTime: clamped(info.modificationTime), linkTarget: first),
                    path: path)
            }
            firstNames[key] = path
        }
        var header = TarWriter.Header(
            path: path, kind: .regular, permissions: info.permissions, uid: info.uid, gid: info.gid,
            modificationTime: clamped(info.modificationTime))
        switch (item.role, info.type) {
        case (.whiteout, _):
            let fd = try open(name, in: dirfd, path: path, options: [.pathOnly, .noFollow], expected: info)
            defer { FileSystem.close(fd) }
            header.xattrs = try attributes(of: fd, path: path).plain
            try write(header, path: path)
        case (.plain, .directory):
            let fd: FileDescriptor
            do {
                fd = try FileSystem.open(name, .readOnly, options: [.directory, .noFollow], relativeTo: dirfd)
            } catch {
                throw systemFailure("openat", error, "open the directory", path)
            }
            let opened = try status(of: fd, path: path)
            guard InodeKey(opened) == InodeKey(info) else {
                FileSystem.close(fd)
                throw changed(path)
            }
            try directory(fd, path: path, info: opened)
        case (.plain, .regular):
            let fd = try openForReading(name, in: dirfd, path: path, expected: info)
            defer { FileSystem.close(fd) }
            header.size = info.size
            header.xattrs = try attributes(of: fd, path: path).plain
            try write(header, path: path)
            try copyContents(fd, size: info.size, path: path)
        case (.plain, .symbolicLink):
            header.kind = .symbolicLink
            do {
                header.linkTarget = try FileSystem.linkTarget(name, relativeTo: dirfd)
            } catch {
                throw systemFailure("readlinkat", error, "read the symbolic link", path)
            }
            let fd = try open(name, in: dirfd, path: path, options: [.pathOnly, .noFollow], expected: info)
            defer { FileSystem.close(fd) }
            header.xattrs = try attributes(of: fd, path: path).plain
            try write(header, path: path)
        case (.plain, .fifo), (.plain, .characterDevice), (.plain, .blockDevice):
            switch info.type {
            case .fifo: header.kind = .fifo
            case .characterDevice: header.kind = .characterDevice
            default: header.kind = .blockDevice
            }
            let numbers = info.specialDeviceNumbers
            header.deviceMajor = numbers.major
            header.deviceMinor = numbers.minor
            let fd = try open(name, in: dirfd, path: path, options: [.pathOnly, .noFollow], expected: info)
            defer { FileSystem.close(fd) }
            header.xattrs = try attributes(of: fd, path: path).plain
            try write(header, path: path)
        case (.plain, .socket):
            skippedSockets += 1
            firstNames[InodeKey(info)] = nil
        }
    }

    private func write(_ header: TarWriter.Header, path: [UInt8]) throws(UnionMountError) {
        do {
            try tar.write(header)
        } catch {
            throw failure(error, path: path)
        }
        entries += 1
    }

    private func copyContents(_ fd: FileDescriptor, size: Int64, path: [UInt8]) throws(UnionMountError) {
        var remaining = size
        while true {
            // One byte more than the rest is asked for at the end, so a file that grew is noticed.
            let wanted = remaining > 0 ? min(buffer.count, Int(remaining)) : 1
            let count: Int
            do {
                count = try FileSystem.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<wanted]))
            } catch {
                throw systemFailure("read", error, "read", path)
            }
            if remaining == 0 {
                guard count == 0 else { throw changed(path) }
                return
            }
            guard count > 0 else { throw changed(path) }
            do {
                try tar.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            } catch {
                throw failure(error, path: path)
            }
            remaining -= Int64(count)
        }
    }

    // MARK: Attributes

    /// A file's extended attributes: the ones to write (plain names, unescaped) and overlay's own (by key).
    private func attributes(of fd: FileDescriptor, path: [UInt8]) throws(UnionMountError)
        -> (plain: [(name: String, value: [UInt8])], own: [String: [UInt8]])
    {
        var plain: [(name: String, value: [UInt8])] = []
        var own: [String: [UInt8]] = [:]
        let names: [String]
        do {
            names = try FileSystem.extendedAttributeNames(ofDescriptor: fd).sorted()
        } catch {
            throw systemFailure("listxattr", error, "list the extended attributes of", path)
        }
        for name in names {
            let value: [UInt8]
            do {
                guard let read = try FileSystem.extendedAttribute(ofDescriptor: fd, name) else { continue }
                value = read
            } catch {
                throw systemFailure("getxattr", error, "read the extended attribute \(name) of", path)
            }
            switch OverlayXattrs.meaning(of: name, in: format) {
            case .plain(let plainName):
                if !Self.droppedXattrs.contains(plainName) { plain.append((plainName, value)) }
            case .overlay(let key):
                if OverlayXattrs.inexpressible.contains(key) {
                    throw UnionMountError(
                        code: .unsupported,
                        message: "\(describe(path)) carries \(name): overlay's \(key) has no form in a layer tar",
                        input: path.readable)
                }
                own[key] = value
            }
        }
        plain.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        return (plain, own)
    }

    private func isXattrWhiteout(_ name: [UInt8], in dirfd: FileDescriptor, path: [UInt8]) throws(UnionMountError)
        -> Bool
    {
        let fd = try open(FilePath(bytes: name), in: dirfd, path: path, options: [.pathOnly, .noFollow], expected: nil)
        defer { FileSystem.close(fd) }
        return try attributes(of: fd, path: path).own[OverlayXattrs.whiteout] != nil
    }

    // MARK: Opening

    private func open(
        _ name: FilePath, in dirfd: FileDescriptor, path: [UInt8], options: FileDescriptor.OpenOptions,
        expected: FileStatus?
    ) throws(UnionMountError) -> FileDescriptor {
        let fd: FileDescriptor
        do {
            fd = try FileSystem.open(name, .readOnly, options: options, relativeTo: dirfd)
        } catch {
            throw systemFailure("openat", error, "open", path)
        }
        if let expected {
            let opened: FileStatus
            do {
                opened = try status(of: fd, path: path)
            } catch {
                FileSystem.close(fd)
                throw error
            }
            guard InodeKey(opened) == InodeKey(expected) else {
                FileSystem.close(fd)
                throw changed(path)
            }
        }
        return fd
    }

    /// Opens a regular file for reading without following it, with `O_NOATIME` where allowed.
    private func openForReading(_ name: FilePath, in dirfd: FileDescriptor, path: [UInt8], expected: FileStatus)
        throws(UnionMountError) -> FileDescriptor
    {
        do {
            return try open(name, in: dirfd, path: path, options: [.noFollow, .noAccessTime], expected: expected)
        } catch  where error.errno == .notPermitted {
            return try open(name, in: dirfd, path: path, options: [.noFollow], expected: expected)
        }
    }

    func status(of fd: FileDescriptor, path: [UInt8]) throws(UnionMountError) -> FileStatus {
        do {
            return try FileSystem.status(of: fd)
        } catch {
            throw systemFailure("fstat", error, "examine", path)
        }
    }

    // MARK: Times and errors

    private func clamped(_ time: FileTime) -> FileTime {
        guard let clamp else { return time }
        return (time.seconds, time.nanoseconds) > (clamp.seconds, clamp.nanoseconds) ? clamp : time
    }

    private func describe(_ path: [UInt8]) -> String {
        "\(layer.readable): \(path.isEmpty ? "the layer root" : path.readable)"
    }

    func failure(_ error: TarWriter.Failure, path: [UInt8]?) -> UnionMountError {
        let place = path.map { describe($0) } ?? layer.readable
        var failure = UnionMountError(
            code: error.code, message: "\(place): \(error.message)", input: (path ?? layer.bytes).readable)
        if let errno = error.errno {
            failure.systemCall = "write"
            failure.errno = errno
        }
        return failure
    }

    private func systemFailure(_ call: String, _ error: Errno, _ what: String, _ path: [UInt8]) -> UnionMountError {
        UnionMountError.systemCall(
            call, error, message: "cannot \(what) \(describe(path))",
            input: path.isEmpty ? layer.readable : path.readable)
    }

    private func malformed(_ message: String, _ path: [UInt8]) -> UnionMountError {
        UnionMountError.malformed("\(describe(path)) \(message)", input: path.readable)
    }

    private func changed(_ path: [UInt8]) -> UnionMountError {
        UnionMountError(
            code: .invalidState, message: "\(describe(path)) changed while it was exported", input: path.readable)
    }
}
