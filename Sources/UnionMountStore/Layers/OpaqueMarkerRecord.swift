import UnionMount

/// The metadata of an aufs/OCI opaque marker (`.wh..wh..opq`), kept in the overlay form as the value of the
/// directory's `<prefix>overlay.unionmount.opaque-marker` attribute so that converting back restores the marker
/// exactly. overlay hides every `<prefix>overlay.*` attribute from its merged view, so the record is invisible
/// through a mount.
///
/// The value is ASCII, fields separated by one space, in this order:
/// `mode=<octal permission and special bits> uid=<decimal> gid=<decimal> atime=<s>.<9-digit ns>
/// mtime=<s>.<9-digit ns>`, then, when the marker was a hard link, ` link=<hex bytes>`: the path (relative to
/// the converted tree, in the aufs form) of another name of the same file.
struct OpaqueMarkerRecord: Equatable {
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var accessTime: FileTime
    var modificationTime: FileTime
    var link: [UInt8]?

    /// The marker's own lstat(2).
    init(_ info: FileStatus, link: [UInt8]? = nil) {
        mode = UInt32(info.permissions)
        uid = info.uid
        gid = info.gid
        accessTime = info.accessTime
        modificationTime = info.modificationTime
        self.link = link
    }

    /// The record of a marker with these fields (one read from a layer archive's header).
    init(mode: UInt32, uid: UInt32, gid: UInt32, accessTime: FileTime, modificationTime: FileTime) {
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.accessTime = accessTime
        self.modificationTime = modificationTime
        self.link = nil
    }

    /// The marker written when a directory is opaque but carries no record: the directory's permission bits
    /// (special bits cleared), owner and times, as Docker's overlay-to-tar converter writes it.
    static func defaultMarker(forDirectory info: FileStatus) -> OpaqueMarkerRecord {
        var record = OpaqueMarkerRecord(info)
        record.mode &= 0o777
        return record
    }

    var encoded: [UInt8] {
        var text = "mode=\(String(mode, radix: 8)) uid=\(uid) gid=\(gid)"
        text += " atime=\(Self.render(accessTime)) mtime=\(Self.render(modificationTime))"
        if let link { text += " link=" + link.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
        return Array(text.utf8)
    }

    /// Parses ``encoded``; nil when the value is not one.
    init?(decoding value: [UInt8]) {
        var fields: [String: String] = [:]
        for field in String(decoding: value, as: UTF8.self).split(separator: " ") {
            let parts = field.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            fields[String(parts[0])] = String(parts[1])
        }
        guard let mode = fields["mode"].flatMap({ UInt32($0, radix: 8) }), mode <= 0o7777,
            let uid = fields["uid"].flatMap({ UInt32($0) }), let gid = fields["gid"].flatMap({ UInt32($0) }),
            let atime = fields["atime"].flatMap(Self.parse), let mtime = fields["mtime"].flatMap(Self.parse)
        else { return nil }
        self.mode = mode
        self.uid = uid
        self.gid = gid
        accessTime = atime
        modificationTime = mtime
        if let hex = fields["link"] {
            let digits = Array(hex.utf8)
            guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
            var bytes: [UInt8] = []
            var index = 0
            while index < digits.count {
                guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(byte)
                index += 2
            }
            link = bytes
        } else {
            link = nil
        }
    }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.encoded == rhs.encoded }

    private static func render(_ time: FileTime) -> String {
        let nanoseconds = String(time.nanoseconds)
        return "\(time.seconds)." + String(repeating: "0", count: max(0, 9 - nanoseconds.count)) + nanoseconds
    }

    private static func parse(_ text: String) -> FileTime? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].count == 9, let seconds = Int(parts[0]), let nanoseconds = Int(parts[1])
        else { return nil }
        return FileTime(seconds: seconds, nanoseconds: nanoseconds)
    }
}
