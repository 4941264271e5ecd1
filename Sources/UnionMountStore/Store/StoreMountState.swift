import SystemPackage
import UnionMount

/// A container's `mounts` record: how many references its mount has, and the mount or unmount in progress.
///
/// A mount writes `pending=mount` before mount(2) and `count=1` after it; an unmount writes `pending=unmount`
/// before umount2(2) and `count=0` after it. The next open finds a `pending` left by a killed process and
/// undoes the mount or finishes the unmount, so a count is never behind the mount table.
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
        guard let record = try StoreRecord.read(file) else { return StoreMountState(count: 0) }
        var pending: Pending?
        if let padded = record["pending"], case let name = padded.trimmingTrailingSpaces, name != "none" {
            guard let value = Pending(rawValue: name) else {
                throw UnionMountError.malformed("unknown pending operation '\(name)'", input: file.readable)
            }
            pending = value
        }
        return StoreMountState(count: try record.count("count", in: file), pending: pending)
    }

    /// The record's bytes: always ``width`` long.
    var bytes: [UInt8] {
        let digits = String(min(count, 9_999_999_999))
        let name = pending?.rawValue ?? "none"
        return Array(
            ("count=" + String(repeating: "0", count: 10 - digits.count) + digits + "\n" + "pending=" + name
                + String(repeating: " ", count: 7 - name.count) + "\n").utf8)
    }

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

extension String {
    fileprivate var trimmingTrailingSpaces: String {
        var text = Substring(self)
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}
