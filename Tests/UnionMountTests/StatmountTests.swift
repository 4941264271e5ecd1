import CUnionMountShim
import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

/// A `struct statmount` as the kernel lays it out: 512 fixed bytes, then NUL-terminated strings.
private struct SyntheticStatmount {
    var bytes = [UInt8](repeating: 0, count: Statmount.fixedSize)
    var strings: [UInt8] = []

    mutating func set<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self) }
    }

    /// Appends a string and stores its offset at `offset`.
    mutating func string(_ value: [UInt8], at offset: Int) {
        set(UInt32(strings.count), at: offset)
        strings += value + [0]
    }

    mutating func array(_ values: [[UInt8]], count: Int, at offset: Int) {
        set(UInt32(values.count), at: count)
        set(UInt32(strings.count), at: offset)
        for value in values { strings += value + [0] }
    }

    func finished(mask: Statmount.Request) -> [UInt8] {
        var copy = self
        copy.set(mask.rawValue, at: Statmount.Offset.mask)
        copy.set(UInt32(bytes.count + strings.count), at: Statmount.Offset.size)
        return copy.bytes + copy.strings
    }
}

private func decode(_ bytes: [UInt8]) throws(UnionMountError) -> Statmount.Record {
    let result = bytes.withUnsafeBytes { buffer in
        Result { () throws(UnionMountError) -> Statmount.Record in try Statmount.decode(buffer) }
    }
    return try result.get()
}

@Suite struct StatmountTests {
    /// The hostile overlay of the escaping experiment, as mountinfo printed it on Linux 6.18 (ids and flags
    /// changed to cover every field).
    static let hostileLine: [UInt8] =
        Array(#"66 43 0:39 / /tmp/h/mer\040ged\134\012 rw,nosuid,nodev,noatime"#.utf8)
        + Array(#" shared:5 master:3 propagate_from:2 - overlay src\040ha\043sh,x\134y\012"#.utf8)
        + Array(#" rw,lazytime,lowerdir=/l\040sp\134\054co\134:lo\134\134bs:/n\012x#h"#.utf8) + [0xFF]
        + Array(#"\011,upperdir=/up\040per\134\054x,workdir=/wo\040rk,uuid=on"#.utf8)

    /// The statmount(2) answer for the same mount: raw strings, escaped `mnt_opts`, numbers.
    static var hostileBuffer: [UInt8] {
        var buffer = SyntheticStatmount()
        buffer.set(UInt32(0), at: Statmount.Offset.deviceMajor)
        buffer.set(UInt32(39), at: Statmount.Offset.deviceMinor)
        buffer.set(Statmount.Magic.overlay, at: Statmount.Offset.magic)
        buffer.set(UInt32(1 << 25), at: Statmount.Offset.superblockFlags)
        buffer.set(UInt64(0x8000_0000_0000_0042), at: Statmount.Offset.mountID)
        buffer.set(UInt64(0x8000_0000_0000_002B), at: Statmount.Offset.parentID)
        buffer.set(UInt32(66), at: Statmount.Offset.oldMountID)
        buffer.set(UInt32(43), at: Statmount.Offset.oldParentID)
        buffer.set(UInt64(0x2 | 0x4 | 0x10), at: Statmount.Offset.attributes)
        buffer.set(UInt64(1 << 20 | 1 << 19), at: Statmount.Offset.propagation)
        buffer.set(UInt64(5), at: Statmount.Offset.peerGroup)
        buffer.set(UInt64(3), at: Statmount.Offset.master)
        buffer.set(UInt64(2), at: Statmount.Offset.propagateFrom)
        buffer.set(UInt64(7), at: Statmount.Offset.namespaceID)
        buffer.string(Array("overlay".utf8), at: Statmount.Offset.filesystemType)
        buffer.string(Array("/".utf8), at: Statmount.Offset.root)
        buffer.string(Array("/tmp/h/mer ged\\\n".utf8), at: Statmount.Offset.mountPoint)
        buffer.string(Array("src ha#sh,x\\y\n".utf8), at: Statmount.Offset.source)
        buffer.string(
            Array(#"lowerdir=/l\040sp\134\054co\134:lo\134\134bs:/n\012x#h"#.utf8) + [0xFF]
                + Array(#"\011,upperdir=/up\040per\134\054x,workdir=/wo\040rk,uuid=on"#.utf8),
            at: Statmount.Offset.mountOptions)
        buffer.array(
            [
                Array(#"lowerdir=/l sp\,co\:lo\\bs:/n"#.utf8) + [0x0A] + Array("x#h".utf8) + [0xFF, 0x09],
                Array(#"upperdir=/up per\,x"#.utf8), Array("workdir=/wo rk".utf8), Array("uuid=on".utf8),
            ], count: Statmount.Offset.optionCount, at: Statmount.Offset.options)
        buffer.set(Statmount.Request(rawValue: 0x7FFF).rawValue, at: Statmount.Offset.supportedMask)
        // No subtype: the kernel leaves its bit out of the mask.
        let mask = Statmount.Request.mountEntry.subtracting(.filesystemSubtype)
        return buffer.finished(mask: mask.union([.namespaceID, .options, .supportedMask]))
    }

    @Test("every field of struct statmount decodes from its uapi offset")
    func decodesFields() throws {
        let record = try decode(Self.hostileBuffer)
        #expect(record.mask.isSuperset(of: Statmount.Request.mountEntry.subtracting(.filesystemSubtype)))
        #expect(record.supportedMask?.rawValue == 0x7FFF)
        #expect(record.deviceMajor == 0 && record.deviceMinor == 39)
        #expect(record.magic == 0x794c_7630)
        #expect(record.superblockFlags == 1 << 25)
        #expect(record.mountID == 0x8000_0000_0000_0042 && record.parentID == 0x8000_0000_0000_002B)
        #expect(record.oldMountID == 66 && record.oldParentID == 43)
        #expect(record.attributes == 0x16)
        #expect(record.propagation == 0x18_0000)
        #expect(record.peerGroup == 5 && record.master == 3 && record.propagateFrom == 2)
        #expect(record.namespaceID == 7)
        #expect(record.filesystemType == Array("overlay".utf8))
        #expect(record.filesystemSubtype == nil)
        #expect(record.fullFilesystemType == Array("overlay".utf8))
        #expect(record.root == Array("/".utf8))
        #expect(record.mountPoint == Array("/tmp/h/mer ged\\\n".utf8))
        #expect(record.source == Array("src ha#sh,x\\y\n".utf8))
        #expect(record.options?.count == 4)
        #expect(record.options?.last == Array("uuid=on".utf8))
        #expect(record.securityOptions == nil)
    }

    @Test("a statmount record rebuilds the mountinfo line byte for byte")
    func rebuildsMountInfoLine() throws {
        let fromStatmount = try #require(MountEntry(statmount: try decode(Self.hostileBuffer)))
        let fromMountInfo = try #require(try MountTable.parse(Self.hostileLine).first)
        #expect(fromStatmount == fromMountInfo)
        #expect(fromStatmount.description == fromMountInfo.description)
        #expect(fromStatmount.mountPointBytes == Array("/tmp/h/mer ged\\\n".utf8))
        #expect(fromStatmount.optionalFields == [.shared(5), .master(3), .propagateFrom(2)])
        #expect(fromStatmount.mountOptions == ["rw", "nosuid", "nodev", "noatime"])
        #expect(fromStatmount.overlayLayout == fromMountInfo.overlayLayout)
        #expect(fromStatmount.overlayLayout?.lowerDirectories.count == 2)
        // opt_array holds what the mountinfo decoder makes of the escaped options.
        let record = try decode(Self.hostileBuffer)
        #expect(record.options == Array(fromMountInfo.superOptions.bytes.dropFirst(2)))
    }

    static let attributeCases: [(UInt64, String)] = [
        (0, "rw,relatime"), (0x1, "ro,relatime"), (0x20, "rw"), (0x10, "rw,noatime"),
        (0x2 | 0x4 | 0x8 | 0x80 | 0x20_0000, "rw,nosuid,nodev,noexec,nodiratime,relatime,nosymfollow"),
        (0x1 | 0x10 | 0x80 | 0x10_0000, "ro,noatime,nodiratime,idmapped"),
    ]

    @Test("per-mount options from MOUNT_ATTR_*", arguments: attributeCases)
    func mountOptions(attributes: UInt64, expected: String) {
        #expect(String(decoding: StatmountEscaping.mountOptions(attributes), as: UTF8.self) == expected)
    }

    @Test("propagation tags, unbindable, and propagate_from only when it differs from the master")
    func optionalFields() {
        func tags(_ record: Statmount.Record) -> String {
            String(decoding: StatmountEscaping.optionalFields(record), as: UTF8.self)
        }
        #expect(tags(Statmount.Record(propagation: 1 << 18)) == "")
        #expect(tags(Statmount.Record(propagation: 1 << 17)) == "unbindable")
        #expect(tags(Statmount.Record(propagation: 1 << 19, master: 4, propagateFrom: 4)) == "master:4")
        #expect(tags(Statmount.Record(propagation: 1 << 20, peerGroup: 9)) == "shared:9")
    }

    @Test("superblock flags and the subtype")
    func superblockAndSubtype() throws {
        var buffer = SyntheticStatmount()
        buffer.set(UInt32(0x1 | 0x10 | 0x80), at: Statmount.Offset.superblockFlags)
        buffer.set(Statmount.Magic.fuse, at: Statmount.Offset.magic)
        buffer.set(UInt32(12), at: Statmount.Offset.oldMountID)
        buffer.set(UInt32(1), at: Statmount.Offset.oldParentID)
        buffer.set(UInt64(0x20), at: Statmount.Offset.attributes)
        buffer.string(Array("fuse".utf8), at: Statmount.Offset.filesystemType)
        buffer.string(Array("fuse-overlayfs".utf8), at: Statmount.Offset.filesystemSubtype)
        buffer.string(Array("/".utf8), at: Statmount.Offset.root)
        buffer.string(Array("/merged".utf8), at: Statmount.Offset.mountPoint)
        buffer.string(Array("fuse-overlayfs".utf8), at: Statmount.Offset.source)
        buffer.string(Array("user_id=0,group_id=0".utf8), at: Statmount.Offset.mountOptions)
        let entry = try #require(MountEntry(statmount: try decode(buffer.finished(mask: .mountEntry))))
        let line = "12 1 0:0 / /merged rw - fuse.fuse-overlayfs fuse-overlayfs ro,sync,dirsync,user_id=0,group_id=0"
        #expect(entry == (try MountTable.parse(Array(line.utf8)).first))
        #expect(entry.filesystemType == "fuse.fuse-overlayfs")
        #expect(entry.isReadOnly)
    }

    @Test("a record without the fields of a mountinfo line, or with an empty mount point, builds no entry")
    func incompleteRecords() throws {
        var record = try decode(Self.hostileBuffer)
        record.mask.remove(.source)
        #expect(MountEntry(statmount: record) == nil)
        record = try decode(Self.hostileBuffer)
        record.mountPoint = []
        #expect(MountEntry(statmount: record) == nil)
    }

    @Test("malformed answers: short buffer, offset outside the strings, string without NUL")
    func malformed() throws {
        #expect(throws: UnionMountError.self) { try decode([UInt8](repeating: 0, count: 100)) }

        var outside = SyntheticStatmount()
        outside.string(Array("overlay".utf8), at: Statmount.Offset.filesystemType)
        outside.set(UInt32(4096), at: Statmount.Offset.root)
        let error = #expect(throws: UnionMountError.self) {
            try decode(outside.finished(mask: [.filesystemType, .mountRoot]))
        }
        #expect(error?.code == .malformedInput)

        var unterminated = SyntheticStatmount()
        unterminated.string(Array("overlay".utf8), at: Statmount.Offset.filesystemType)
        var bytes = unterminated.finished(mask: .filesystemType)
        bytes.removeLast()  // the NUL; `size` still claims it
        let size = UInt32(bytes.count)
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: size, toByteOffset: 0, as: UInt32.self) }
        #expect(throws: UnionMountError.self) { try decode(bytes) }
    }

    @Test("the cost rule: full statmount(2) for at most a third of the table")
    func costModel() {
        #expect(StatmountCost.prefersStatmount(candidates: 0, total: 0))
        #expect(StatmountCost.prefersStatmount(candidates: 10, total: 30))
        #expect(!StatmountCost.prefersStatmount(candidates: 11, total: 30))
    }

    @Test(
        "the real kernel: a tiny buffer grows on EOVERFLOW; listmount in batches lists the root mount once",
        .enabled(if: Statmount.describesMounts, "needs statmount(2) with sb_source (Linux 6.13+)"))
    func realKernel() throws {
        let rootID = StatxProbe.uniqueMountID("/")
        #expect(rootID != 0)
        let small = StatmountBuffer(capacity: Statmount.fixedSize)
        let record = try small.stat(mountID: rootID, request: .mountEntry, namespace: 0)
        #expect(record.mountPoint == Array("/".utf8))
        #expect(record.mountID == rootID)
        let all = try Statmount.listMountIDs()
        let batched = try Statmount.listMountIDs(batchSize: 2)
        #expect(all == batched)
        #expect(all.filter { $0 == rootID }.count == 1)
        #expect(all == all.sorted())
        let missing = #expect(throws: UnionMountError.self) {
            try Statmount.stat(mountID: 1, request: .mountBasic)
        }
        #expect(missing?.errno == .noSuchFileOrDirectory || missing?.errno == .invalidArgument)
    }
}

private enum StatxProbe {
    static func uniqueMountID(_ path: FilePath) -> UInt64 {
        var info = CUnionMount_statx_result()
        guard path.withPlatformString({ CUnionMount_statx_mount(AT_FDCWD, $0, 0, 1, &info) }) == 0 else { return 0 }
        return info.mount_id
    }
}
