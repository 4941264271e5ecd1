import SystemPackage

/// A container's `mounts` record: how many references its mount has, and the mount or unmount in progress.
///
/// A mount writes `pending=mount` before mount(2) and `count=1` after it; an unmount writes `pending=unmount`
/// before umount2(2) and `count=0` after it. The next open finds a `pending` left by a killed process and
/// undoes the mount or finishes the unmount, so a count is never behind the mount table.
///
/// The record is replaced by rename(2) but not fsync(2)'ed: it describes mounts, which a power cut ends anyway,
/// and the next open sets every count from the mount table.
struct StoreMountState: Equatable {
    enum Pending: String { case mount, unmount }

    var count: Int
    var pending: Pending?

    init(count: Int, pending: Pending? = nil) {
        self.count = count
        self.pending = pending
    }

    static func read(_ file: FilePath) throws(UnionMountError) -> StoreMountState {
        guard let record = try StoreRecord.read(file) else { return StoreMountState(count: 0) }
        var pending: Pending?
        if let name = record["pending"] {
            guard let value = Pending(rawValue: name) else {
                throw UnionMountError.malformed("unknown pending operation '\(name)'", input: file.readable)
            }
            pending = value
        }
        return StoreMountState(count: try record.count("count", in: file), pending: pending)
    }

    func write(to file: FilePath) throws(UnionMountError) {
        var record = StoreRecord([("count", String(count))])
        record["pending"] = pending?.rawValue
        try record.write(to: file, durable: false)
    }
}
