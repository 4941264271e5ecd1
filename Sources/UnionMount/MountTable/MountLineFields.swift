/// Where a field lies in its line: offsets from the line's first byte.
struct ByteSpan: Hashable, Sendable {
    var start: UInt32
    var count: UInt32

    static let empty = ByteSpan(start: 0, count: 0)
}

/// Where the fields of one mount table line are, as a parser found them.
struct MountEntryFields: Hashable, Sendable {
    var root: ByteSpan
    var mountPoint: ByteSpan
    var mountOptions: ByteSpan
    var optionalFields: ByteSpan
    var filesystemType: ByteSpan
    var source: ByteSpan
    var superOptions: ByteSpan
}

/// One parsed line: its numbers, its origin and where its fields are.
struct MountEntryRecord: Hashable, Sendable {
    var mountID: Int
    var parentID: Int
    var major: UInt32
    var minor: UInt32
    var origin: MountEntry.Origin
    var fields: MountEntryFields
}

extension MountEntry {
    /// The entry of a parsed line, its fields decoded into storage of its own: `line` is the line's first byte
    /// and `record` what the parser found in it. Every parser makes its entries here.
    @inline(__always)
    init(line: UnsafePointer<UInt8>, _ record: MountEntryRecord, builder: inout MountEntryBuilder) {
        @inline(__always) func bytes(_ span: ByteSpan) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(start: line + Int(span.start), count: Int(span.count))
        }
        let fields = record.fields
        let none = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
        // A `/proc/mounts` line has no root and no optional fields, and one options field (the superblock's).
        let fromMounts = record.origin == .mounts
        let type = bytes(fields.filesystemType)
        builder.escaped(fromMounts ? none : bytes(fields.root))
        builder.escaped(bytes(fields.mountPoint))
        builder.escaped(type)
        builder.escaped(bytes(fields.source))
        builder.plain(fromMounts ? none : bytes(fields.optionalFields))
        // aufs's branch list is read from the raw field (see `AufsSysfs.branches(inMountOptionsOf:)`).
        let isAufs = type.count == 4 && type.elementsEqual(UnionFilesystemKind.aufs.rawValue.utf8)
        builder.plain(isAufs ? bytes(fields.superOptions) : none)
        builder.escapedList(fromMounts ? none : bytes(fields.mountOptions))
        builder.escapedList(bytes(fields.superOptions))
        self.init(
            mountID: record.mountID, parentID: record.parentID, major: record.major, minor: record.minor,
            origin: record.origin, storage: builder.finish())
    }
}
