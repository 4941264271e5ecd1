import SystemPackage

/// What UnionMount writes after a mount whose option string names the branches relatively (``MountStrategy/legacyRelative``
/// and ``MountStrategy/legacyDescriptors``): the real absolute path of every branch, so a report can show them.
///
/// The kernel echoes the legacy string as given (`lowerdir=0:1:2,upperdir=3,workdir=4` for mount-fd, paths relative
/// to the layers' common directory for mount-relative), and nothing in the mount table says what those names stood
/// for. The record is keyed by the mount's id and holds the superblock's device, the mount point, and per branch,
/// in the order the option string names them (lower layers, data-only layers, upper, work), the name as shown and
/// the real path.
///
/// A mount of idmapped layers (``OverlaySpec/idMapping``) gets a record whatever its names: the kernel shows its
/// layers as the trees it was given (`/` for a detached tree, a vanished attachment point otherwise), and only the
/// record keeps the real paths and the mapping of its lower and data-only layers.
///
/// File format (binary-safe: no path contains a NUL), every field NUL-terminated:
/// `unionmount-mount-record`, `1` or `2` (the version), `<major>:<minor>`, the target, the branch count, then per
/// branch the name as shown and the real path; version 2 then adds the layers' mapping: `ranges`, the uid map and
/// the gid map (`inside:outside:count` ranges separated by spaces), or `userns`, the namespace file and an empty
/// field. The file ends right after the last field. Anything else is not a record.
package struct MountRecord: Sendable, Hashable {
    /// The superblock's device (`st_dev` of the mount's root), as mountinfo's field 3 shows it.
    package var deviceMajor: UInt32
    package var deviceMinor: UInt32
    /// The mount point.
    package var target: FilePath
    /// Each branch as the option string names it, in its order (lower, data, upper, work).
    package var shownBranches: [[UInt8]]
    /// The real absolute path of each branch, in the same order.
    package var branches: [FilePath]
    /// The mapping of the lower and data-only layers, for a mount of idmapped layers (version 2).
    package var idMapping: IDMapping?

    static let magic = Array("unionmount-mount-record".utf8)
    static let version = Array("1".utf8)
    static let idMappedVersion = Array("2".utf8)
    /// More than any overlay has: 500 layers plus upper and work.
    static let maximumBranches = 1024
    /// The largest record file read.
    static let maximumSize = 8 * 1024 * 1024

    package init(
        deviceMajor: UInt32, deviceMinor: UInt32, target: FilePath, shownBranches: [[UInt8]], branches: [FilePath],
        idMapping: IDMapping? = nil
    ) {
        self.deviceMajor = deviceMajor
        self.deviceMinor = deviceMinor
        self.target = target
        self.shownBranches = shownBranches
        self.branches = branches
        self.idMapping = idMapping
    }

    /// The record's bytes.
    package var encoded: [UInt8] {
        var bytes: [UInt8] = []
        func field(_ value: [UInt8]) {
            bytes.append(contentsOf: value)
            bytes.append(0)
        }
        field(Self.magic)
        field(idMapping == nil ? Self.version : Self.idMappedVersion)
        field(Array("\(deviceMajor):\(deviceMinor)".utf8))
        field(target.bytes)
        field(Array(String(branches.count).utf8))
        for (shown, real) in zip(shownBranches, branches) {
            field(shown)
            field(real.bytes)
        }
        switch idMapping {
        case .ranges(let uids, let gids)?:
            field(Array("ranges".utf8))
            field(Array(IDRange.text(uids, separator: " ").utf8))
            field(Array(IDRange.text(gids, separator: " ").utf8))
        case .userNamespace(let path)?:
            field(Array("userns".utf8))
            field(path.bytes)
            field([])
        case nil:
            break
        }
        return bytes
    }

    /// Decodes ``encoded``; nil for anything that is not exactly a record: wrong magic or version, a device or
    /// count that is not decimal (or too large), an empty or relative target or real path, an empty shown name,
    /// fewer or more fields than the count says, bytes after the last NUL.
    package init?(decoding bytes: [UInt8]) {
        guard bytes.count <= Self.maximumSize, bytes.last == 0 else { return nil }
        let fields = bytes.dropLast().split(separator: 0, omittingEmptySubsequences: false).map(Array.init)
        guard fields.count >= 5, fields[0] == Self.magic, fields[1] == Self.version || fields[1] == Self.idMappedVersion
        else { return nil }
        let mapped = fields[1] == Self.idMappedVersion
        let device = fields[2].split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        guard device.count == 2, let major = Self.decimal(device[0]), let minor = Self.decimal(device[1]),
            let majorValue = UInt32(exactly: major), let minorValue = UInt32(exactly: minor),
            let count = Self.decimal(fields[4][...]), count <= Self.maximumBranches,
            fields.count == 5 + 2 * count + (mapped ? 3 : 0),
            fields[3].first == UInt8(ascii: "/")
        else { return nil }
        var shown: [[UInt8]] = []
        var real: [FilePath] = []
        for index in 0..<count {
            let name = fields[5 + 2 * index]
            let path = fields[6 + 2 * index]
            guard !name.isEmpty, path.first == UInt8(ascii: "/") else { return nil }
            shown.append(name)
            real.append(FilePath(bytes: path))
        }
        var idMapping: IDMapping? = nil
        if mapped {
            guard let decoded = Self.idMapping(fields[(5 + 2 * count)...]) else { return nil }
            idMapping = decoded
        }
        self.init(
            deviceMajor: majorValue, deviceMinor: minorValue, target: FilePath(bytes: fields[3]), shownBranches: shown,
            branches: real, idMapping: idMapping)
    }

    /// The three mapping fields of a version 2 record; nil unless they are exactly `ranges` with two maps that
    /// validate, or `userns` with an absolute path and an empty field.
    private static func idMapping(_ fields: ArraySlice<[UInt8]>) -> IDMapping? {
        let fields = Array(fields)
        guard fields.count == 3 else { return nil }
        switch String(decoding: fields[0], as: UTF8.self) {
        case "ranges":
            func ranges(_ bytes: [UInt8]) -> [IDRange]? {
                guard bytes.count <= 16 * 1024 else { return nil }
                return IDRange.ranges(
                    String(decoding: bytes, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false))
            }
            guard let uids = ranges(fields[1]), let gids = ranges(fields[2]) else { return nil }
            let mapping = IDMapping.ranges(uids: uids, gids: gids)
            guard (try? mapping.validate()) != nil else { return nil }
            return mapping
        case "userns":
            guard fields[1].first == UInt8(ascii: "/"), fields[2].isEmpty else { return nil }
            return .userNamespace(FilePath(bytes: fields[1]))
        default:
            return nil
        }
    }

    /// 1 to 7 ASCII digits as a number.
    private static func decimal(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.count <= 7 else { return nil }
        var value = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
        }
        return value
    }

    /// The layout's branch names in record order: lower, data, upper, work.
    static func shownBranches(of layout: OverlayLayout) -> [[UInt8]] {
        (layout.lowerDirectories + layout.dataDirectories
            + [layout.upperDirectory, layout.workDirectory]
            .compactMap { $0 }).map(\.bytes)
    }
}

/// Where mount records live, and their reading and writing: one file per mount, named by its mount id, in
/// `/run/unionmount/mounts/` for root, `$XDG_RUNTIME_DIR/unionmount/mounts/` for other users (none when that is
/// not set). Writing is best effort: a record that cannot be written leaves the mount as it is, and its report
/// shows the names the kernel shows.
package enum MountRecords {
    /// The record directory for this process's effective user, nil when it has none.
    package static var directory: FilePath? {
        if ProcessFacts.effectiveUserID == 0 { return "/run/unionmount/mounts" }
        guard let runtime = ProcessFacts.environment("XDG_RUNTIME_DIR"), runtime.hasPrefix("/") else { return nil }
        return FilePath(runtime).appending("unionmount").appending("mounts")
    }

    /// The record file of mount `mountID` in `directory`.
    static func file(_ mountID: Int, in directory: FilePath) -> FilePath {
        directory.appending(String(mountID))
    }

    /// Writes `record` for mount `mountID`, atomically (a temporary file renamed over the old record), creating the
    /// directory (mode 0755 for root, 0700 otherwise) when missing. Returns whether it was written.
    ///
    /// The corresponding system calls are `mkdirat(2)`, `openat(2)`, `write(2)` and `rename(2)`.
    @discardableResult
    package static func write(_ record: MountRecord, mountID: Int, in directory: FilePath? = directory) -> Bool {
        guard let directory, mountID >= 0 else { return false }
        let permissions: UInt32 = ProcessFacts.effectiveUserID == 0 ? 0o755 : 0o700
        guard (try? FileSystem.makeDirectories(directory, permissions: permissions)) != nil else { return false }
        guard isTrusted(directory, type: .directory) else { return false }
        let final = file(mountID, in: directory)
        let temporary = directory.appending(".\(mountID).\(ProcessFacts.processID).tmp")
        do throws(Errno) {
            let fd = try FileSystem.open(
                temporary, .writeOnly, options: [.create, .truncate, .noFollow], permissions: 0o644)
            defer { FileSystem.close(fd) }
            try FileSystem.writeAll(fd, record.encoded)
        } catch {
            try? FileSystem.unlink(temporary)
            return false
        }
        do throws(Errno) {
            try FileSystem.rename(temporary, to: final)
        } catch {
            try? FileSystem.unlink(temporary)
            return false
        }
        return true
    }

    /// The record of mount `mountID` and the inode of its file; nil when there is none, it is not a regular file
    /// owned by this user and writable by no one else (nor is its directory), or its bytes are not a record.
    ///
    /// The corresponding system calls are `fstatat(2)`, `openat(2)` (`O_NOFOLLOW`), `fstat(2)` and `read(2)`.
    static func read(mountID: Int, in directory: FilePath? = directory) -> (record: MountRecord, inode: UInt64)? {
        guard let directory, mountID >= 0, isTrusted(directory, type: .directory) else { return nil }
        guard let fd = try? FileSystem.open(file(mountID, in: directory), .readOnly, options: [.noFollow]) else {
            return nil
        }
        defer { FileSystem.close(fd) }
        guard let info = try? FileSystem.status(of: fd), isTrusted(info, type: .regular),
            let bytes = try? FileSystem.readAll(fd, limit: MountRecord.maximumSize + 1),
            let record = MountRecord(decoding: bytes)
        else { return nil }
        return (record, info.inode)
    }

    /// Removes the record of mount `mountID` (nothing when there is none).
    ///
    /// The corresponding system call is `unlinkat(2)`.
    package static func remove(mountID: Int, in directory: FilePath? = directory) {
        guard let directory, mountID >= 0 else { return }
        try? FileSystem.unlink(file(mountID, in: directory))
    }

    /// Removes the record file of mount `mountID` if it is still the file with `inode` (not one written since).
    static func remove(mountID: Int, inode: UInt64, in directory: FilePath? = directory) {
        guard let directory else { return }
        let path = file(mountID, in: directory)
        guard let info = try? FileSystem.status(path), info.inode == inode else { return }
        try? FileSystem.unlink(path)
    }

    /// Whether `path` is of `type`, owned by this user and not writable by group or others.
    private static func isTrusted(_ path: FilePath, type: FileKind) -> Bool {
        guard let info = try? FileSystem.status(path) else { return false }
        return isTrusted(info, type: type)
    }

    private static func isTrusted(_ info: FileStatus, type: FileKind) -> Bool {
        info.type == type && info.uid == ProcessFacts.effectiveUserID && info.permissions & 0o022 == 0
    }

    /// `layout` with the real paths of the mount record of `entry`, when its branches are named relatively and a
    /// record matches: the same device, mount point and branch names as the entry shows. A record that does not
    /// match is ignored (the layout stays as shown), and removed when the entry's mount is live here (statx(2) of
    /// its mount point finds its id and device): that mount id now belongs to another mount, so the record's own
    /// mount is gone.
    ///
    /// The corresponding system calls are those of ``read(mountID:in:)``, and `statx(2)` and `unlinkat(2)` for a
    /// stale record.
    package static func resolve(_ layout: OverlayLayout, of entry: MountEntry) -> OverlayLayout {
        resolveWithMapping(layout, of: entry).layout
    }

    /// ``resolve(_:of:)``, and the mapping of the lower and data-only layers the record gives (idmapped layers).
    ///
    /// A record is looked for when a name is relative, and for idmapped layers, whose names are absolute: when the
    /// top lower layer is shown as `/` (a detached tree) or is not a directory (an attachment point, gone).
    package static func resolveWithMapping(
        _ layout: OverlayLayout, of entry: MountEntry
    ) -> (layout: OverlayLayout, idMapping: IDMapping?) {
        guard entry.origin != .mounts, layout.driver == .overlay,
            layout.hasRelativePaths
                || layout.lowerDirectories.first.map({ $0 == "/" || !FileSystem.isDirectory($0, followingLinks: true) })
                    == true,
            let (record, inode) = read(mountID: entry.mountID)
        else { return (layout, nil) }
        let shown = MountRecord.shownBranches(of: layout)
        guard record.deviceMajor == entry.major, record.deviceMinor == entry.minor,
            record.target == entry.mountPoint, record.shownBranches == shown
        else {
            if let live = try? FileSystem.mountIdentity(entry.mountPoint, followingLinks: false), live.hasMountID,
                live.mountID == UInt64(entry.mountID), live.deviceMajor == entry.major,
                live.deviceMinor == entry.minor
            {
                remove(mountID: entry.mountID, inode: inode)
            }
            return (layout, nil)
        }
        var resolved = layout
        var index = 0
        func next() -> FilePath {
            defer { index += 1 }
            return record.branches[index]
        }
        resolved.lowerDirectories = layout.lowerDirectories.map { _ in next() }
        resolved.dataDirectories = layout.dataDirectories.map { _ in next() }
        resolved.upperDirectory = layout.upperDirectory.map { _ in next() }
        resolved.workDirectory = layout.workDirectory.map { _ in next() }
        return (resolved, record.idMapping)
    }
}
