import SystemPackage

extension MountEntry {
    /// The entry `/proc/self/mountinfo` shows for a mount, rebuilt from statmount(2) fields, so that both sources
    /// go through the same decoders (``overlayLayout``, ``UnionMountReport/init(entry:aufsSysfs:)``).
    ///
    /// Each field is made the way `fs/proc_namespace.c` `show_mountinfo` prints it:
    ///
    /// - IDs: the reusable `mnt_id_old` and `mnt_parent_id_old`; device: `sb_dev_major:sb_dev_minor`.
    /// - root, mount point, type, source: statmount gives them decoded, as the entry stores them (mountinfo
    ///   escapes space, tab, newline, backslash, and `#` in the source, as `\ooo`). The type is `fs_type` plus
    ///   `.fs_subtype` when there is a subtype.
    /// - per-mount options (field 6): `ro`/`rw` from `MOUNT_ATTR_RDONLY`, then `nosuid`, `nodev`, `noexec`,
    ///   `noatime`, `nodiratime`, `relatime`, `nosymfollow`, `idmapped` from `mnt_attr`, in mountinfo's order
    ///   (strictatime prints nothing).
    /// - optional fields (field 7): `shared:<mnt_peer_group>`, `master:<mnt_master>`,
    ///   `propagate_from:<propagate_from>` (when it differs from the master), `unbindable`, from
    ///   `mnt_propagation`.
    /// - superblock options (field 11): `ro`/`rw` from `SB_RDONLY`, `sync`, `dirsync`, `mand`, `lazytime` from
    ///   `sb_flags`, then `mnt_opts` unchanged: statmount escapes it exactly as mountinfo does.
    ///
    /// - Parameter record: A statmount(2) result with at least ``Statmount/Request/mountEntry`` asked for.
    /// - Returns: nil when a needed field is missing (a kernel before 6.13 has no `sb_source`) or the mount point
    ///   is empty (the mount is not reachable from the caller's root, which mountinfo leaves out).
    init?(statmount record: Statmount.Record) {
        let needed: Statmount.Request = [
            .superblockBasic, .mountBasic, .mountRoot, .mountPoint, .filesystemType, .source,
        ]
        guard record.mask.isSuperset(of: needed), let root = record.root, let mountPoint = record.mountPoint,
            !mountPoint.isEmpty, let type = record.fullFilesystemType, let source = record.source
        else { return nil }

        var builder = MountEntryBuilder()
        defer { builder.deallocate() }
        builder.plain(root)
        builder.plain(mountPoint)
        builder.plain(type)
        builder.plain(source)
        builder.plain(StatmountEscaping.optionalFields(record))
        let superOptions = StatmountEscaping.superOptions(record)
        builder.plain(type.elementsEqual(UnionFilesystemKind.aufs.rawValue.utf8) ? superOptions : [])
        StatmountEscaping.mountOptions(record.attributes).withUnsafeBufferPointer { builder.escapedList($0) }
        superOptions.withUnsafeBufferPointer { builder.escapedList($0) }
        self.init(
            mountID: Int(record.oldMountID), parentID: Int(record.oldParentID), major: record.deviceMajor,
            minor: record.deviceMinor, origin: .mountinfo, storage: builder.finish())
    }
}

/// How `show_mountinfo` turns statmount(2)'s numbers and raw strings into mountinfo text.
enum StatmountEscaping {
    /// `mangle`/`seq_path`: `\ooo` for space, tab, newline and backslash, and `extra` (`#` in the source field).
    static func escape(_ bytes: [UInt8], extra: UInt8?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for byte in bytes {
            let escaped =
                byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n")
                || byte == UInt8(ascii: "\\") || byte == extra
            if escaped {
                out.append(UInt8(ascii: "\\"))
                out.append(UInt8(ascii: "0") + (byte >> 6))
                out.append(UInt8(ascii: "0") + ((byte >> 3) & 7))
                out.append(UInt8(ascii: "0") + (byte & 7))
            } else {
                out.append(byte)
            }
        }
        return out
    }

    // `MOUNT_ATTR_*` (include/uapi/linux/mount.h).
    static let readOnly: UInt64 = 0x1
    static let noSetuid: UInt64 = 0x2
    static let noDevices: UInt64 = 0x4
    static let noExec: UInt64 = 0x8
    static let atimeMask: UInt64 = 0x70
    static let noAtime: UInt64 = 0x10
    static let relAtime: UInt64 = 0x00
    static let noDirAtime: UInt64 = 0x80
    static let idmapped: UInt64 = 0x10_0000
    static let noSymlinkFollow: UInt64 = 0x20_0000

    /// Field 6, as `show_mountinfo` + `show_mnt_opts` print it.
    static func mountOptions(_ attributes: UInt64) -> [UInt8] {
        var text = attributes & readOnly != 0 ? "ro" : "rw"
        if attributes & noSetuid != 0 { text += ",nosuid" }
        if attributes & noDevices != 0 { text += ",nodev" }
        if attributes & noExec != 0 { text += ",noexec" }
        if attributes & atimeMask == noAtime { text += ",noatime" }
        if attributes & noDirAtime != 0 { text += ",nodiratime" }
        if attributes & atimeMask == relAtime { text += ",relatime" }
        if attributes & noSymlinkFollow != 0 { text += ",nosymfollow" }
        if attributes & idmapped != 0 { text += ",idmapped" }
        return Array(text.utf8)
    }

    // `MS_*` propagation flags (include/uapi/linux/mount.h).
    static let unbindable: UInt64 = 1 << 17
    static let slave: UInt64 = 1 << 19
    static let shared: UInt64 = 1 << 20

    /// Field 7, space-separated, as `show_mountinfo` prints it.
    static func optionalFields(_ record: Statmount.Record) -> [UInt8] {
        var tags: [String] = []
        if record.propagation & shared != 0 { tags.append("shared:\(record.peerGroup)") }
        if record.propagation & slave != 0 {
            tags.append("master:\(record.master)")
            if record.propagateFrom != 0 && record.propagateFrom != record.master {
                tags.append("propagate_from:\(record.propagateFrom)")
            }
        }
        if record.propagation & unbindable != 0 { tags.append("unbindable") }
        return Array(tags.joined(separator: " ").utf8)
    }

    // `SB_*` flags that `show_sb_opts` prints (include/linux/fs.h).
    static let superblockReadOnly: UInt32 = 0x1
    static let superblockFlagNames: [(UInt32, String)] = [
        (0x10, ",sync"), (0x80, ",dirsync"), (0x40, ",mand"), (1 << 25, ",lazytime"),
    ]

    /// Field 11: `ro`/`rw`, the superblock flags, then `mnt_opts` (LSM and filesystem options, already escaped).
    static func superOptions(_ record: Statmount.Record) -> [UInt8] {
        var text = record.superblockFlags & superblockReadOnly != 0 ? "ro" : "rw"
        for (flag, name) in superblockFlagNames where record.superblockFlags & flag != 0 { text += name }
        var bytes = Array(text.utf8)
        if let options = record.optionText, !options.isEmpty {
            bytes.append(UInt8(ascii: ","))
            bytes.append(contentsOf: options)
        }
        return bytes
    }
}
