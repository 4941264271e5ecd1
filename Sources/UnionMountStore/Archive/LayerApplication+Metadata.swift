import SystemPackage
import UnionMount

extension LayerApplication {
    /// Where extended attributes go.
    enum XattrTarget {
        /// An open file or directory: fsetxattr(2).
        case open(FileDescriptor)
        /// An `O_PATH` descriptor (symbolic link, device node, FIFO): setxattr(2) on `/proc/self/fd/N`.
        case pathDescriptor(FileDescriptor)
    }

    /// The archive's owner ids, checked (tar allows 64-bit and negative values; Linux ids are 32-bit and
    /// `-1` means "unchanged" to chown(2)).
    private func owner(_ entry: TarEntry) throws(UnionMountError) -> (uid: UInt32, gid: UInt32) {
        guard (0..<Int64(UInt32.max)).contains(entry.uid), (0..<Int64(UInt32.max)).contains(entry.gid) else {
            throw malformed("the owner \(entry.uid):\(entry.gid) is not a valid uid:gid")
        }
        return (UInt32(entry.uid), UInt32(entry.gid))
    }

    /// The error for a chown(2) refusal: `EINVAL` is an id the user namespace does not map.
    private func ownerFailure(_ call: String, _ error: Errno, _ ids: (uid: UInt32, gid: UInt32)) -> UnionMountError {
        guard error == .invalidArgument else { return failed(call, error, "set the owner \(ids.uid):\(ids.gid)") }
        var failure = failed(call, error, "set the owner \(ids.uid):\(ids.gid): the user namespace does not map it")
        failure.code = .unsupported
        return failure
    }

    /// fchown(2) of an open file, unless the ownership is the caller's.
    func setOwner(of fd: FileDescriptor, _ entry: TarEntry) throws(UnionMountError) {
        guard applier.ownership == .archive else { return }
        let ids = try owner(entry)
        do {
            try FileSystem.setOwner(of: fd, uid: ids.uid, gid: ids.gid)
        } catch {
            throw ownerFailure("fchown", error, ids)
        }
    }

    /// Owner, permissions (`nil` for a symbolic link), extended attributes and times of a name that is not opened
    /// (symbolic links, device nodes, FIFOs, whiteouts), each relative to its directory without following it.
    func setNodeMetadata(_ entry: TarEntry, _ name: FilePath, in directory: FileDescriptor, permissions: UInt32?)
        throws(UnionMountError)
    {
        if applier.ownership == .archive {
            let ids = try owner(entry)
            do {
                try FileSystem.setOwner(name, uid: ids.uid, gid: ids.gid, relativeTo: directory)
            } catch {
                throw ownerFailure("fchownat", error, ids)
            }
        }
        if let permissions {
            // Not a symbolic link (this entry just made it), so following is harmless; after the owner.
            do {
                try FileSystem.setPermissions(name, permissions, relativeTo: directory)
            } catch {
                throw failed("fchmodat", error, "set the mode")
            }
        }
        if !entry.xattrs.isEmpty {
            let fd: FileDescriptor
            do {
                fd = try FileSystem.open(name, .readOnly, options: [.pathOnly, .noFollow], relativeTo: directory)
            } catch {
                throw failed("openat", error, "open it for its extended attributes")
            }
            defer { FileSystem.close(fd) }
            try setXattrs(entry, on: .pathDescriptor(fd))
        }
        do {
            try FileSystem.setTimes(
                name, access: entry.accessTime ?? entry.modificationTime, modification: entry.modificationTime,
                relativeTo: directory)
        } catch {
            throw failed("utimensat", error, "set the times")
        }
    }

    /// Sets the entry's extended attributes: names that are not UTF-8 are refused, names a rootless
    /// application may not set are dropped (and counted), names overlay would claim are stored escaped.
    func setXattrs(_ entry: TarEntry, on target: XattrTarget) throws(UnionMountError) {
        for (rawName, value) in entry.xattrs {
            guard let name = String(validating: rawName, as: UTF8.self), !name.isEmpty else {
                throw malformed("the extended attribute name \(rawName.readable) is not UTF-8")
            }
            if applier.rootless && !Self.rootlessMaySet(name) {
                counts.droppedXattrs += 1
                continue
            }
            try setXattr(OverlayXattrs.storedName(plain: name, in: applier.whiteoutFormat), value, on: target)
        }
    }

    /// Sets one attribute, as stored.
    func setXattr(_ name: String, _ value: [UInt8], on target: XattrTarget) throws(UnionMountError) {
        do {
            switch target {
            case .open(let fd): try FileSystem.setExtendedAttribute(of: fd, name, value)
            case .pathDescriptor(let fd): try FileSystem.setExtendedAttribute(ofPathDescriptor: fd, name, value)
            }
        } catch {
            throw failed("setxattr", error, "set the extended attribute \(name)")
        }
    }

    /// What an unprivileged user (root of a user namespace) can set on its own files.
    static func rootlessMaySet(_ name: String) -> Bool {
        name.hasPrefix("user.") || name == "security.capability" || name.hasPrefix("system.posix_acl_")
    }

    /// `.wh..wh..opq` in `parent`: marks the directory opaque in the overlay form.
    func applyOpaqueMarker(_ entry: TarEntry, in parent: [[UInt8]]) throws(UnionMountError) {
        guard entry.kind == .regular, entry.size == 0, entry.xattrs.isEmpty else {
            throw malformed("the opaque marker is not an empty regular file without extended attributes")
        }
        let markerPath = ArchivePath.joined(parent + [Self.opaqueMarker])
        guard written[markerPath] == nil else { throw malformed("the opaque marker appears twice in the archive") }
        let directory = try parentDirectory(parent)
        let target: XattrTarget = parent.isEmpty ? .open(root) : .pathDescriptor(directory)
        let ids = try owner(entry)
        let record = OpaqueMarkerRecord(
            mode: entry.permissions, uid: ids.uid, gid: ids.gid, accessTime: entry.accessTime ?? entry.modificationTime,
            modificationTime: entry.modificationTime)
        guard let opaque = OverlayXattrs.ownName(OverlayXattrs.opaque, in: applier.whiteoutFormat),
            let marker = OverlayXattrs.ownName(OverlayXattrs.markerRecord, in: applier.whiteoutFormat)
        else { return }
        try setXattr(opaque, [UInt8(ascii: "y")], on: target)
        try setXattr(marker, record.encoded, on: target)
        written[markerPath] = .file
        counts.opaqueDirectories += 1
    }
}
