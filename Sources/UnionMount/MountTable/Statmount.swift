import SystemPackage

/// statmount(2) and listmount(2) (Linux 6.8+): one mount's fields, and the ids of the mounts of a namespace,
/// straight from the kernel without it printing the whole `/proc/self/mountinfo` table.
///
/// A mount is named by its *unique* id (`STATX_MNT_ID_UNIQUE`, never reused while the system runs), not by the
/// reusable id of mountinfo's field 1 (which ``Record/oldMountID`` reports). What a call returns is chosen with
/// ``Request``: numbers come in a fixed 512-byte `struct statmount` (`include/uapi/linux/mount.h`), strings in a
/// variable part after it, which ``stat(mountID:request:namespace:)`` grows on `EOVERFLOW`.
///
/// How the strings are escaped (verified on Linux 6.18 with a mount point, source and layer paths holding space,
/// tab, newline, comma, colon, `#`, backslash and bytes that are not UTF-8):
///
/// - ``Record/mountPoint``, ``Record/root``, ``Record/source``, ``Record/filesystemType``: raw bytes, no
///   escaping at all (mountinfo writes `\ooo` for space, tab, newline, backslash, and `#` in the source).
/// - ``Record/optionText`` (`mnt_opts`): byte for byte mountinfo's field 11 without its leading `ro`/`rw` and
///   superblock flags: `\ooo` for space, tab, newline, backslash and, inside option values, comma.
/// - ``Record/options``, ``Record/securityOptions`` (`opt_array`, `opt_sec_array`): that text split on its raw
///   commas and each piece `\ooo`-decoded by the kernel: raw bytes, the same as ``MountEntry/superOptions``
///   (the kernel also decodes a backslash followed by one or two octal digits, which `seq_show_option` never
///   leaves raw; ``MountEntry/init(statmount:)`` therefore uses `mnt_opts`, decoded by the mountinfo decoder).
///
/// Filesystem-level escaping is kept in every form: overlay's legacy `lowerdir=` string still has its `\:`,
/// `\,` and `\\` after the kernel decoded the `\ooo` escapes.
enum Statmount {
    /// Which fields statmount(2) fills: the `STATMOUNT_*` request and result mask bits.
    struct Request: OptionSet, Sendable, Hashable {
        /// The mask bits.
        var rawValue: UInt64

        /// Creates a request from mask bits.
        init(rawValue: UInt64) { self.rawValue = rawValue }

        /// Device number, magic and flags of the superblock. The corresponding C flag is `STATMOUNT_SB_BASIC`.
        static let superblockBasic = Request(rawValue: 0x1)
        /// Unique and old ids, attributes and propagation. The corresponding C flag is `STATMOUNT_MNT_BASIC`.
        static let mountBasic = Request(rawValue: 0x2)
        /// The dominating peer group of a slave. The corresponding C flag is `STATMOUNT_PROPAGATE_FROM`.
        static let propagateFrom = Request(rawValue: 0x4)
        /// The mount's root inside its filesystem. The corresponding C flag is `STATMOUNT_MNT_ROOT`.
        static let mountRoot = Request(rawValue: 0x8)
        /// The mount point relative to the caller's root. The corresponding C flag is `STATMOUNT_MNT_POINT`.
        static let mountPoint = Request(rawValue: 0x10)
        /// The filesystem type name. The corresponding C flag is `STATMOUNT_FS_TYPE`.
        static let filesystemType = Request(rawValue: 0x20)
        /// The mount namespace id. The corresponding C flag is `STATMOUNT_MNT_NS_ID`.
        static let namespaceID = Request(rawValue: 0x40)
        /// The escaped option string (Linux 6.11+). The corresponding C flag is `STATMOUNT_MNT_OPTS`.
        static let optionText = Request(rawValue: 0x80)
        /// The filesystem subtype, e.g. `fuse-overlayfs` (Linux 6.13+). The corresponding C flag is
        /// `STATMOUNT_FS_SUBTYPE`.
        static let filesystemSubtype = Request(rawValue: 0x100)
        /// The source, e.g. a device (Linux 6.13+). The corresponding C flag is `STATMOUNT_SB_SOURCE`.
        static let source = Request(rawValue: 0x200)
        /// The filesystem options as an array of decoded strings (Linux 6.13+). The corresponding C flag is
        /// `STATMOUNT_OPT_ARRAY`.
        static let options = Request(rawValue: 0x400)
        /// The LSM options as an array of decoded strings (Linux 6.13+). The corresponding C flag is
        /// `STATMOUNT_OPT_SEC_ARRAY`.
        static let securityOptions = Request(rawValue: 0x800)
        /// The request bits this kernel knows (Linux 6.15+). The corresponding C flag is
        /// `STATMOUNT_SUPPORTED_MASK`.
        static let supportedMask = Request(rawValue: 0x1000)
        /// `STATMOUNT_MNT_UIDMAP` (Linux 6.15+): an idmapped mount's uid map, `inside outside count` strings.
        static let uidMap = Request(rawValue: 0x2000)
        /// `STATMOUNT_MNT_GIDMAP` (Linux 6.15+): its gid map.
        static let gidMap = Request(rawValue: 0x4000)

        /// Everything ``MountEntry/init(statmount:)`` needs to rebuild a mountinfo line.
        static let mountEntry: Request = [
            .superblockBasic, .mountBasic, .propagateFrom, .mountRoot, .mountPoint, .filesystemType, .optionText,
            .filesystemSubtype, .source,
        ]
    }

    /// A decoded `struct statmount`. Fields whose ``Request`` bit is missing from ``mask`` are 0 or nil; a
    /// string bit is also missing when the kernel had nothing to print (no options, no subtype).
    struct Record: Sendable, Hashable {
        /// What the kernel filled (`mask`).
        var mask: Request
        /// The request bits this kernel knows (`supported_mask`), when ``Request/supportedMask`` was asked and known.
        var supportedMask: Request?
        /// The major number of the superblock's device (`sb_dev_major`).
        var deviceMajor: UInt32
        /// The minor number of the superblock's device (`sb_dev_minor`).
        var deviceMinor: UInt32
        /// The filesystem magic (`sb_magic`), e.g. `0x794c7630` for overlay.
        var magic: UInt64
        /// `SB_RDONLY` (0x1), `SB_SYNCHRONOUS` (0x10), `SB_DIRSYNC` (0x80), `SB_LAZYTIME` (0x2000000)
        /// (`sb_flags`).
        var superblockFlags: UInt32
        /// The unique mount id (`mnt_id`).
        var mountID: UInt64
        /// The parent's unique mount id (`mnt_parent_id`); the mount's own for the namespace root.
        var parentID: UInt64
        /// The reusable id of mountinfo's field 1 (`mnt_id_old`).
        var oldMountID: UInt32
        /// The parent's reusable id, mountinfo's field 2 (`mnt_parent_id_old`).
        var oldParentID: UInt32
        /// The per-mount `MOUNT_ATTR_*` flags (`mnt_attr`); the atime mode is the 0x70 field (0 = relatime).
        var attributes: UInt64
        /// `MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE`, `MS_UNBINDABLE` (`mnt_propagation`).
        var propagation: UInt64
        /// The peer group id when shared (`mnt_peer_group`).
        var peerGroup: UInt64
        /// The master's peer group id when a slave (`mnt_master`).
        var master: UInt64
        /// The closest dominating peer group visible from the caller's root (`propagate_from`).
        var propagateFrom: UInt64
        /// The mount namespace id (`mnt_ns_id`).
        var namespaceID: UInt64
        /// The filesystem type name, without the subtype (`fs_type`).
        var filesystemType: [UInt8]?
        /// The subtype (`fs_subtype`), e.g. `fuse-overlayfs` for type `fuse`.
        var filesystemSubtype: [UInt8]?
        /// The mount's root inside its filesystem (`mnt_root`), raw.
        var root: [UInt8]?
        /// The mount point relative to the caller's root (`mnt_point`), raw.
        var mountPoint: [UInt8]?
        /// The source (`sb_source`), raw.
        var source: [UInt8]?
        /// The LSM and filesystem options, comma-separated and escaped as mountinfo escapes them (`mnt_opts`).
        var optionText: [UInt8]?
        /// The filesystem options, decoded (`opt_array`, `opt_num` strings).
        var options: [[UInt8]]?
        /// The LSM options, decoded (`opt_sec_array`, `opt_sec_num` strings).
        var securityOptions: [[UInt8]]?
        /// An idmapped mount's uid map as the caller's namespace sees it (`mnt_uidmap`), one string per range.
        var uidMap: [[UInt8]]?
        /// Its gid map (`mnt_gidmap`).
        var gidMap: [[UInt8]]?

        /// Creates a record; every field defaults to 0 or nil.
        init(
            mask: Request = [], supportedMask: Request? = nil, deviceMajor: UInt32 = 0, deviceMinor: UInt32 = 0,
            magic: UInt64 = 0, superblockFlags: UInt32 = 0, mountID: UInt64 = 0, parentID: UInt64 = 0,
            oldMountID: UInt32 = 0, oldParentID: UInt32 = 0, attributes: UInt64 = 0, propagation: UInt64 = 0,
            peerGroup: UInt64 = 0, master: UInt64 = 0, propagateFrom: UInt64 = 0, namespaceID: UInt64 = 0,
            filesystemType: [UInt8]? = nil, filesystemSubtype: [UInt8]? = nil, root: [UInt8]? = nil,
            mountPoint: [UInt8]? = nil, source: [UInt8]? = nil, optionText: [UInt8]? = nil,
            options: [[UInt8]]? = nil, securityOptions: [[UInt8]]? = nil
        ) {
            self.mask = mask
            self.supportedMask = supportedMask
            self.deviceMajor = deviceMajor
            self.deviceMinor = deviceMinor
            self.magic = magic
            self.superblockFlags = superblockFlags
            self.mountID = mountID
            self.parentID = parentID
            self.oldMountID = oldMountID
            self.oldParentID = oldParentID
            self.attributes = attributes
            self.propagation = propagation
            self.peerGroup = peerGroup
            self.master = master
            self.propagateFrom = propagateFrom
            self.namespaceID = namespaceID
            self.filesystemType = filesystemType
            self.filesystemSubtype = filesystemSubtype
            self.root = root
            self.mountPoint = mountPoint
            self.source = source
            self.optionText = optionText
            self.options = options
            self.securityOptions = securityOptions
        }

        /// The type as mountinfo shows it: `type.subtype` when there is a subtype (`fuse.fuse-overlayfs`).
        var fullFilesystemType: [UInt8]? {
            guard let filesystemType else { return nil }
            guard let filesystemSubtype, !filesystemSubtype.isEmpty else { return filesystemType }
            return filesystemType + [UInt8(ascii: ".")] + filesystemSubtype
        }
    }

    /// The `mnt_id` of listmount(2) meaning "the root of the namespace" (all its mounts). The corresponding C
    /// constant is `LSMT_ROOT`.
    static let namespaceRoot = UInt64.max

    /// Filesystem magics (`sb_magic`) of the union filesystems.
    enum Magic {
        /// `OVERLAYFS_SUPER_MAGIC`.
        static let overlay: UInt64 = 0x794c_7630
        /// `AUFS_SUPER_MAGIC` ("aufs").
        static let aufs: UInt64 = 0x6175_6673
        /// `FUSE_SUPER_MAGIC`; fuse-overlayfs is a FUSE filesystem with subtype `fuse-overlayfs`.
        static let fuse: UInt64 = 0x6573_5546
    }

    /// Whether statmount(2) on this kernel returns every field of a mountinfo line (Linux 6.13+: it knows
    /// ``Request/source``), probed once per process on the caller's root mount. When false, ``MountTable``
    /// reads `/proc/self/mountinfo` instead.
    static let describesMounts: Bool = probeDescribesMounts()

    private static func probeDescribesMounts() -> Bool {
        guard let root = try? FileSystem.mountIdentity("/", unique: true), root.isUnique,
            let record = try? stat(mountID: root.mountID, request: .mountEntry)
        else { return false }
        let needed: Request = [.superblockBasic, .mountBasic, .mountRoot, .mountPoint, .filesystemType, .source]
        return record.mask.isSuperset(of: needed)
    }

    // MARK: System calls

    /// The unique ids of the mounts below `mountID` (the whole namespace by default), in increasing id order, read
    /// in batches of `batchSize`.
    ///
    /// Only mounts reachable from the caller's root are listed, as in mountinfo. For ``namespaceRoot`` the root
    /// mount itself is included; for another id it is not.
    ///
    /// - Parameters:
    ///   - mountID: A unique mount id, or ``namespaceRoot``.
    ///   - namespace: A mount namespace id (`mnt_ns_id`); 0 for the caller's.
    ///   - batchSize: How many ids one call asks for.
    /// - Returns: The ids.
    /// - Throws: ``UnionMountError/Code/unsupported`` without listmount(2) (`ENOSYS`), else
    ///   ``UnionMountError/Code/systemCallFailed`` with the errno (`ENOENT` for an unknown id).
    ///
    /// The corresponding system call is `listmount(2)`.
    static func listMountIDs(
        under mountID: UInt64 = namespaceRoot, namespace: UInt64 = 0, batchSize: Int = 1024
    ) throws(UnionMountError) -> [UInt64] {
        let batch = max(1, batchSize)
        var ids: [UInt64] = []
        var last: UInt64 = 0
        while true {
            var failure: Errno?
            let chunk = [UInt64](unsafeUninitializedCapacity: batch) { buffer, count in
                count = 0
                guard buffer.baseAddress != nil else { return }
                while true {
                    let result = system_listmount(mountID, buffer, namespace: namespace, after: last)
                    if result >= 0 {
                        count = min(result, batch)
                        return
                    }
                    let error = system_errno()
                    if error != .interrupted {
                        failure = error
                        return
                    }
                }
            }
            if let failure { throw systemCallError("listmount", failure, "cannot list the mounts below \(mountID)") }
            ids.append(contentsOf: chunk)
            guard chunk.count == batch, let next = chunk.last else { return ids }
            last = next
        }
    }

    /// One mount's fields.
    ///
    /// - Parameters:
    ///   - mountID: The unique mount id (from ``listMountIDs(under:namespace:batchSize:)`` or statx(2)'s
    ///     `STATX_MNT_ID_UNIQUE`).
    ///   - request: The fields to fill.
    ///   - namespace: A mount namespace id; 0 for the caller's.
    /// - Returns: The decoded `struct statmount`.
    /// - Throws: ``UnionMountError/Code/unsupported`` without statmount(2) (`ENOSYS`), else
    ///   ``UnionMountError/Code/systemCallFailed`` with the errno (`ENOENT` when the mount is gone);
    ///   ``UnionMountError/Code/malformedInput`` when the kernel's answer does not decode.
    ///
    /// The corresponding system call is `statmount(2)`.
    static func stat(
        mountID: UInt64, request: Request, namespace: UInt64 = 0
    ) throws(UnionMountError) -> Record {
        let buffer = StatmountBuffer(capacity: request.hasStrings ? 4096 : fixedSize)
        return try buffer.stat(mountID: mountID, request: request, namespace: namespace)
    }

    // MARK: Layout

    /// `sizeof(struct statmount)` before `str[]`: every string offset is relative to this byte.
    static let fixedSize = 512

    /// Byte offsets of the fields of `struct statmount` (`include/uapi/linux/mount.h`, Linux 6.8–6.18).
    enum Offset {
        static let size = 0
        static let mountOptions = 4
        static let mask = 8
        static let deviceMajor = 16
        static let deviceMinor = 20
        static let magic = 24
        static let superblockFlags = 32
        static let filesystemType = 36
        static let mountID = 40
        static let parentID = 48
        static let oldMountID = 56
        static let oldParentID = 60
        static let attributes = 64
        static let propagation = 72
        static let peerGroup = 80
        static let master = 88
        static let propagateFrom = 96
        static let root = 104
        static let mountPoint = 108
        static let namespaceID = 112
        static let filesystemSubtype = 120
        static let source = 124
        static let optionCount = 128
        static let options = 132
        static let securityOptionCount = 136
        static let securityOptions = 140
        static let supportedMask = 144
        static let uidMapCount = 152
        static let uidMap = 156
        static let gidMapCount = 160
        static let gidMap = 164
    }

    /// Decodes a `struct statmount` the kernel wrote.
    ///
    /// - Parameter buffer: The bytes, at least ``fixedSize`` of them; `size` (the first field) says how many the
    ///   kernel used, and every string must end with a NUL inside them.
    static func decode(_ buffer: UnsafeRawBufferPointer) throws(UnionMountError) -> Record {
        guard buffer.count >= fixedSize else { throw malformed("\(buffer.count) bytes, fewer than \(fixedSize)") }
        func u32(_ offset: Int) -> UInt32 { buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
        func u64(_ offset: Int) -> UInt64 { buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        let mask = Request(rawValue: u64(Offset.mask))
        let used = Int(u32(Offset.size))
        let stringCount = min(max(used, fixedSize), buffer.count) - fixedSize
        let strings = UnsafeRawBufferPointer(rebasing: buffer[fixedSize..<(fixedSize + stringCount)])

        func string(_ bit: Request, at offset: Int, name: String) throws(UnionMountError) -> [UInt8]? {
            guard mask.contains(bit) else { return nil }
            return try cString(in: strings, at: Int(u32(offset)), name: name)
        }
        func array(_ bit: Request, count: Int, at offset: Int, name: String) throws(UnionMountError) -> [[UInt8]]? {
            guard mask.contains(bit) else { return nil }
            let number = Int(u32(count))
            var position = Int(u32(offset))
            var items: [[UInt8]] = []
            items.reserveCapacity(min(number, strings.count))
            for index in 0..<number {
                let item = try cString(in: strings, at: position, name: "\(name)[\(index)]")
                items.append(item)
                position += item.count + 1
            }
            return items
        }

        var record = Record(mask: mask)
        if mask.contains(.superblockBasic) {
            record.deviceMajor = u32(Offset.deviceMajor)
            record.deviceMinor = u32(Offset.deviceMinor)
            record.magic = u64(Offset.magic)
            record.superblockFlags = u32(Offset.superblockFlags)
        }
        if mask.contains(.mountBasic) {
            record.mountID = u64(Offset.mountID)
            record.parentID = u64(Offset.parentID)
            record.oldMountID = u32(Offset.oldMountID)
            record.oldParentID = u32(Offset.oldParentID)
            record.attributes = u64(Offset.attributes)
            record.propagation = u64(Offset.propagation)
            record.peerGroup = u64(Offset.peerGroup)
            record.master = u64(Offset.master)
        }
        if mask.contains(.propagateFrom) { record.propagateFrom = u64(Offset.propagateFrom) }
        if mask.contains(.namespaceID) { record.namespaceID = u64(Offset.namespaceID) }
        if mask.contains(.supportedMask) { record.supportedMask = Request(rawValue: u64(Offset.supportedMask)) }
        record.filesystemType = try string(.filesystemType, at: Offset.filesystemType, name: "fs_type")
        record.filesystemSubtype = try string(.filesystemSubtype, at: Offset.filesystemSubtype, name: "fs_subtype")
        record.root = try string(.mountRoot, at: Offset.root, name: "mnt_root")
        record.mountPoint = try string(.mountPoint, at: Offset.mountPoint, name: "mnt_point")
        record.source = try string(.source, at: Offset.source, name: "sb_source")
        record.optionText = try string(.optionText, at: Offset.mountOptions, name: "mnt_opts")
        record.options = try array(.options, count: Offset.optionCount, at: Offset.options, name: "opt_array")
        record.securityOptions = try array(
            .securityOptions, count: Offset.securityOptionCount, at: Offset.securityOptions, name: "opt_sec_array")
        record.uidMap = try array(.uidMap, count: Offset.uidMapCount, at: Offset.uidMap, name: "mnt_uidmap")
        record.gidMap = try array(.gidMap, count: Offset.gidMapCount, at: Offset.gidMap, name: "mnt_gidmap")
        return record
    }

    /// The NUL-terminated string at `offset` of the string area.
    private static func cString(
        in strings: UnsafeRawBufferPointer, at offset: Int, name: String
    ) throws(UnionMountError) -> [UInt8] {
        guard offset >= 0, offset < strings.count, let base = strings.baseAddress else {
            throw malformed("\(name) offset \(offset) is outside the \(strings.count) string bytes")
        }
        guard let length = byteOffset(of: 0, in: base + offset, count: strings.count - offset) else {
            throw malformed("\(name) at offset \(offset) has no terminating NUL")
        }
        return Array(UnsafeRawBufferPointer(start: base + offset, count: length))
    }

    static func malformed(_ reason: String) -> UnionMountError {
        .malformed("statmount returned a malformed struct statmount: \(reason)", input: "statmount")
    }

    static func systemCallError(_ call: String, _ errno: Errno, _ message: String) -> UnionMountError {
        var error = UnionMountError.systemCall(call, errno, message: message)
        if errno == .noFunction { error.code = .unsupported }
        return error
    }
}

extension Statmount.Request {
    /// Whether any requested field is a string, so the buffer needs room after the fixed part.
    var hasStrings: Bool {
        !isDisjoint(with: [
            .mountRoot, .mountPoint, .filesystemType, .optionText, .filesystemSubtype, .source, .options,
            .securityOptions, .uidMap, .gidMap,
        ])
    }
}

/// A reusable statmount(2) buffer that grows on `EOVERFLOW`; one per sequence of calls on one thread.
final class StatmountBuffer {
    private var storage: UnsafeMutableRawBufferPointer
    /// The largest buffer tried before giving up: strings can be megabytes (an overlay with 500 layers given by
    /// `lowerdir+`), but not more.
    static let maximumCapacity = 64 << 20

    init(capacity: Int = 4096) {
        storage = .allocate(byteCount: max(capacity, Statmount.fixedSize), alignment: 8)
    }

    deinit { storage.deallocate() }

    /// statmount(2) into the buffer, doubling it while the kernel says `EOVERFLOW`; `EINTR` is retried.
    func stat(mountID: UInt64, request: Statmount.Request, namespace: UInt64) throws(UnionMountError)
        -> Statmount.Record
    {
        while true {
            guard storage.baseAddress != nil else { throw Statmount.malformed("no buffer") }
            if system_statmount(mountID, request.rawValue, storage, namespace: namespace) == 0 {
                return try Statmount.decode(UnsafeRawBufferPointer(storage))
            }
            let error = system_errno()
            switch error {
            case .interrupted:
                continue
            case .overflow where storage.count < Self.maximumCapacity:
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: storage.count * 2, alignment: 8)
                storage.deallocate()
                storage = bigger
            default:
                throw Statmount.systemCallError("statmount", error, "cannot read mount \(mountID)")
            }
        }
    }
}
