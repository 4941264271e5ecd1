import SystemPackage
import UnionMount

/// A container's `mounts` record: how many references its mount has, and the mount or unmount in progress.
///
/// A mount writes `pending=mount` before mount(2) and `count=1` after it (an aufs union is built by several
/// mount(2) calls, so a union the mount table shows may be half-built until the count says otherwise); the next
/// open finds a `pending=mount` left by a killed process and undoes the mount. The last unmount unmounts first
/// (umount2(2)) and writes `count=0` after it: a process killed between the two leaves a count on an unmounted
/// container, which the next open resets, finishing the unmount. `pending=unmount`, which earlier versions wrote
/// before umount2(2), is still read and finished the same way. So a count is never behind the mount table.
///
/// The record has a fixed width (`count=` ten digits, `pending=` seven characters) and is overwritten in place by
/// one pwrite(2) of 33 bytes within one page, which a `SIGKILL` cannot tear (the kernel checks for a fatal signal
/// only between pages). It is not renamed over (on ext4 a rename over a file starts writeback of its data, a
/// cost measured in Benchmarks/README.md) and not fsync(2)'ed: it describes mounts, which a power cut ends
/// anyway, and the next open sets every count from the mount table.
struct StoreMountState: Equatable {
    enum Pending: String { case mount, unmount }

    var count: Int
    var pending: Pending?

    init(count: Int, pending: Pending? = nil) {
        self.count = count
        self.pending = pending
    }

    static func read(_ file: FilePath) throws(UnionMountError) -> StoreMountState {
        guard let bytes = try StoreFiles.read(file) else { return StoreMountState(count: 0) }
        return try StoreMountState(parsing: bytes, file: file)
    }

    /// Parses a record's bytes: the fixed-width form this code writes, or any `key=value` record with a `count`
    /// and an optional `pending` (written by hand or by an older version).
    init(parsing bytes: [UInt8], file: FilePath) throws(UnionMountError) {
        if let state = Self(fixedWidth: bytes) {
            self = state
            return
        }
        let record = try StoreRecord(parsing: bytes, file: file)
        var pending: Pending?
        if let padded = record["pending"], case let name = padded.trimmingTrailingSpaces, name != "none" {
            guard let value = Pending(rawValue: name) else {
                throw UnionMountError.malformed("unknown pending operation '\(name)'", input: file.readable)
            }
            pending = value
        }
        self.init(count: try record.count("count", in: file), pending: pending)
    }

    /// The record in exactly the form ``bytes`` writes, read without building strings; nil for any other form.
    private init?(fixedWidth bytes: [UInt8]) {
        guard bytes.count == Self.width else { return nil }
        let parsed = bytes.withUnsafeBufferPointer { record -> StoreMountState? in
            // The template's bytes outside the digits and the name, then the digits, then the name.
            let template = Self.idle
            for index in 0..<Self.width where !(6..<16).contains(index) && !(25..<32).contains(index) {
                guard record[index] == template[index] else { return nil }
            }
            var count = 0
            for index in 6..<16 {
                let digit = record[index]
                guard digit >= 0x30 && digit <= 0x39 else { return nil }
                count = count * 10 + Int(digit - 0x30)
            }
            for (template, pending) in [(Self.idle, nil), (Self.mounting, .mount), (Self.unmounting, .unmount)]
                as [([UInt8], Pending?)]
            where (25..<32).allSatisfy({ record[$0] == template[$0] }) {
                return StoreMountState(count: count, pending: pending)
            }
            return nil
        }
        guard let parsed else { return nil }
        self = parsed
    }

    private static let countKey = Array("count=".utf8)
    private static let pendingKey = Array("pending=".utf8)

    /// The record's bytes: always ``width`` long (`count=` and ten digits, `pending=` and seven characters).
    var bytes: [UInt8] {
        var bytes = pending == nil ? Self.idle : pending == .mount ? Self.mounting : Self.unmounting
        var value = min(count, 9_999_999_999)
        for index in stride(from: 15, through: 6, by: -1) {
            bytes[index] = UInt8(0x30 + value % 10)
            value /= 10
        }
        return bytes
    }

    /// The records of count 0 with each `pending` value, which ``bytes`` fills in.
    private static let idle = Array("count=0000000000\npending=none   \n".utf8)
    private static let mounting = Array("count=0000000000\npending=mount  \n".utf8)
    private static let unmounting = Array("count=0000000000\npending=unmount\n".utf8)

    static let width = 33

    func write(to file: FilePath) throws(UnionMountError) {
        let bytes = self.bytes
        let fd: FileDescriptor
        do {
            fd = try FileSystem.open(file, .writeOnly, options: [.noFollow])
        } catch {
            // A new container: create the record whole.
            if error == .noSuchFileOrDirectory {
                return try StoreFiles.writeAtomically(bytes, to: file, durable: false)
            }
            throw UnionMountError.systemCall(
                "open", error, message: "cannot write \(file.readable)", input: file.readable)
        }
        defer { FileSystem.close(fd) }
        let info: FileStatus
        do throws(Errno) {
            let written = try FileSystem.write(fd, bytes, atOffset: 0)
            guard written == bytes.count else { throw Errno.noSpace }
            info = try FileSystem.status(of: fd)
        } catch {
            throw UnionMountError.systemCall(
                "pwrite", error, message: "cannot write \(file.readable)", input: file.readable)
        }
        // A record of another width (damaged, or written by hand) is cut to this one.
        if info.size != Int64(bytes.count) {
            do {
                try FileSystem.truncate(fd, size: Int64(bytes.count))
            } catch {
                throw UnionMountError.systemCall(
                    "ftruncate", error, message: "cannot write \(file.readable)", input: file.readable)
            }
        }
    }
}

/// A container's `mounts` record held open for one mount or unmount: read once, then rewritten in place as the
/// operation goes (``StoreMountState``'s protocol), by pwrite(2) on the same descriptor.
///
/// Speed: each write of the record used to open the file again (and fstat(2) it for its size); here one
/// openat(2), one read(2) and a pwrite(2) per step make the whole record traffic of a mount or unmount (4
/// openat/close pairs and 6 fstat fewer per mount+unmount cycle, Benchmarks/README.md). Held under the store lock
/// only.
struct StoreMountRecordFile: ~Copyable {
    let file: FilePath
    /// nil when the record does not exist (a damaged container); the first write creates it.
    private let fd: FileDescriptor?
    /// The file's size as last read or written; nil when unknown.
    private var size: Int?
    /// The record as read; nil for a damaged one, whose error is ``damage``.
    private let read: StoreMountState?
    /// Why the record could not be parsed (it counts as 0 and is overwritten by the next write).
    private let damage: UnionMountError?

    /// Opens `file` for reading and writing (never through a symlink) and reads it.
    init(_ file: FilePath) throws(UnionMountError) {
        let opened: FileDescriptor
        do {
            opened = try FileSystem.open(file, .readWrite, options: [.noFollow])
        } catch {
            guard error == .noSuchFileOrDirectory else {
                throw UnionMountError.systemCall(
                    "open", error, message: "cannot open \(file.readable)", input: file.readable)
            }
            (self.file, fd, size, read, damage) = (file, nil, nil, StoreMountState(count: 0), nil)
            return
        }
        // One read(2) of a buffer longer than the record's width: a shorter answer is the whole record, a
        // full one a damaged record, read whole (up to the record limit) to be reported.
        var bytes: [UInt8]
        do throws(Errno) {
            bytes = try FileSystem.read(opened, upTo: 2 * StoreMountState.width)
            if bytes.count == 2 * StoreMountState.width {
                bytes += try FileSystem.readAll(opened, limit: StoreFiles.maximumRecordSize)
            }
        } catch {
            FileSystem.close(opened)
            throw UnionMountError.systemCall(
                "read", error, message: "cannot read \(file.readable)", input: file.readable)
        }
        var read: StoreMountState? = nil
        var damage: UnionMountError? = nil
        do {
            read = try StoreMountState(parsing: bytes, file: file)
        } catch {
            damage = error
        }
        (self.file, fd, size, self.read, self.damage) = (file, opened, bytes.count, read, damage)
    }

    /// Whether the record exists.
    var exists: Bool { fd != nil }

    /// The record as read, or the error a damaged one gave.
    var state: Result<StoreMountState, UnionMountError> {
        if let read { return .success(read) }
        return .failure(damage!)
    }

    /// The count read; 0 for a damaged record.
    var count: Int { read?.count ?? 0 }

    /// Whether the record says, undamaged, that the store has nothing mounted: count 0 and nothing pending. Every
    /// mount the store makes is bracketed by `pending=mount` until its count is written, and every unmount writes
    /// count 0 only after umount2(2), so then no store mount can be at the mount point.
    var isCleanlyUnmounted: Bool { fd != nil && read?.count == 0 && read?.pending == nil }

    /// Overwrites the record with `state` (one pwrite(2) of ``StoreMountState/width`` bytes at offset 0; an
    /// ftruncate(2) when the file had another size). A missing record is created whole.
    mutating func write(_ state: StoreMountState) throws(UnionMountError) {
        guard let fd else { return try state.write(to: file) }
        let bytes = state.bytes
        do throws(Errno) {
            let written = try FileSystem.write(fd, bytes, atOffset: 0)
            guard written == bytes.count else { throw Errno.noSpace }
        } catch {
            throw UnionMountError.systemCall(
                "pwrite", error, message: "cannot write \(file.readable)", input: file.readable)
        }
        if size != bytes.count {
            do {
                try FileSystem.truncate(fd, size: Int64(bytes.count))
            } catch {
                throw UnionMountError.systemCall(
                    "ftruncate", error, message: "cannot write \(file.readable)", input: file.readable)
            }
            size = bytes.count
        }
    }

    deinit { if let fd { FileSystem.close(fd) } }
}

extension String {
    fileprivate var trimmingTrailingSpaces: String {
        var text = Substring(self)
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}
