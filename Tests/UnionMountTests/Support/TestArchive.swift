import CLibArchive
import SystemPackage

@testable import UnionMount

/// Crafts exact layer tars with libarchive's writer (pax, optionally gzip or zstd), hostile ones included:
/// libarchive writes `../x`, `/etc/x`, duplicates and links anywhere exactly as asked (only its extractor
/// sanitizes names).
struct TestArchive {
    enum Compression { case none, gzip, zstd }

    struct Entry {
        enum Kind { case file, directory, symlink, hardlink, fifo, characterDevice, blockDevice }
        var path: [UInt8]
        var kind: Kind = .file
        var permissions: UInt32 = 0o644
        var uid: Int64 = 0
        var gid: Int64 = 0
        var modification = (seconds: 1_700_000_000, nanoseconds: 123_456_789)
        var access: (seconds: Int, nanoseconds: Int)? = nil
        var contents: [UInt8] = []
        /// Declared size when it differs from the contents (for limits).
        var declaredSize: Int64? = nil
        var linkTarget: [UInt8] = []
        var device = (major: UInt32(0), minor: UInt32(0))
        var xattrs: [(String, [UInt8])] = []

        static func file(_ path: String, _ contents: String = "", mode: UInt32 = 0o644) -> Entry {
            Entry(path: Array(path.utf8), permissions: mode, contents: Array(contents.utf8))
        }
        static func directory(_ path: String, mode: UInt32 = 0o755) -> Entry {
            Entry(path: Array(path.utf8), kind: .directory, permissions: mode)
        }
        static func symlink(_ path: String, to target: String) -> Entry {
            Entry(path: Array(path.utf8), kind: .symlink, permissions: 0o777, linkTarget: Array(target.utf8))
        }
        static func hardlink(_ path: String, to target: String) -> Entry {
            Entry(path: Array(path.utf8), kind: .hardlink, linkTarget: Array(target.utf8))
        }
    }

    var entries: [Entry]
    var compression: Compression = .none

    init(_ entries: [Entry], compression: Compression = .none) {
        self.entries = entries
        self.compression = compression
    }

    /// The archive's bytes.
    func bytes() -> [UInt8] {
        let archive = archive_write_new()!
        defer { archive_write_free(archive) }
        archive_write_set_format_pax(archive)
        switch compression {
        case .none: break
        case .gzip: archive_write_add_filter_gzip(archive)
        case .zstd: archive_write_add_filter_zstd(archive)
        }
        archive_write_set_bytes_in_last_block(archive, 1)
        var capacity = 1 << 20
        for entry in entries { capacity += entry.contents.count * 2 + 4096 }
        var output = [UInt8](repeating: 0, count: capacity)
        var used = 0
        output.withUnsafeMutableBytes { buffer in
            precondition(archive_write_open_memory(archive, buffer.baseAddress, buffer.count, &used) == ARCHIVE_OK)
            for entry in entries {
                let header = archive_entry_new()!
                defer { archive_entry_free(header) }
                (entry.path.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer {
                    archive_entry_copy_pathname(header, $0.baseAddress)
                }
                let type: UInt32
                switch entry.kind {
                case .file, .hardlink: type = 0o100000
                case .directory: type = 0o040000
                case .symlink: type = 0o120000
                case .fifo: type = 0o010000
                case .characterDevice: type = 0o020000
                case .blockDevice: type = 0o060000
                }
                archive_entry_set_filetype(header, type)
                archive_entry_set_perm(header, mode_t(entry.permissions))
                archive_entry_set_uid(header, entry.uid)
                archive_entry_set_gid(header, entry.gid)
                archive_entry_set_mtime(header, time_t(entry.modification.seconds), entry.modification.nanoseconds)
                if let access = entry.access {
                    archive_entry_set_atime(header, time_t(access.seconds), access.nanoseconds)
                }
                let target = entry.linkTarget.map { CChar(bitPattern: $0) } + [0]
                if entry.kind == .symlink {
                    target.withUnsafeBufferPointer { archive_entry_copy_symlink(header, $0.baseAddress) }
                }
                if entry.kind == .hardlink {
                    target.withUnsafeBufferPointer { archive_entry_copy_hardlink(header, $0.baseAddress) }
                }
                if entry.kind == .characterDevice || entry.kind == .blockDevice {
                    archive_entry_set_rdevmajor(header, dev_t(entry.device.major))
                    archive_entry_set_rdevminor(header, dev_t(entry.device.minor))
                }
                for (name, value) in entry.xattrs {
                    value.withUnsafeBytes { archive_entry_xattr_add_entry(header, name, $0.baseAddress, $0.count) }
                }
                let size = entry.declaredSize ?? Int64(entry.contents.count)
                if entry.kind == .file { archive_entry_set_size(header, size) }
                precondition(archive_write_header(archive, header) >= ARCHIVE_WARN)
                if entry.kind == .file && !entry.contents.isEmpty {
                    _ = entry.contents.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
                }
            }
            archive_write_close(archive)
        }
        return Array(output[..<used])
    }

    /// Writes the archive to `path`.
    func write(to path: FilePath) throws {
        try Self.write(bytes(), to: path)
    }

    static func write(_ bytes: [UInt8], to path: FilePath) throws {
        let fd = try FileDescriptor.open(path, .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
        defer { try? fd.close() }
        _ = try fd.writeAll(bytes)
    }
}
