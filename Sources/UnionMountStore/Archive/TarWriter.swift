import CLibArchive
import SystemPackage
import UnionMount

/// A tar stream written with libarchive in one pass to a file descriptor, optionally compressed, with the
/// SHA-256 and size of the tar itself (a layer's diff id) and of the bytes written (the blob's digest and size),
/// both computed while the stream is written.
///
/// Two libarchive writer objects are stacked, the mirror of ``TarStream``:
///
/// 1. the *tar writer*: format pax (`archive_write_set_format_pax`: ustar headers, a pax extended header only for
///    what ustar cannot hold: long or non-ASCII names, large ids or sizes, nanosecond modification times,
///    extended attributes), attributes as `SCHILY.xattr.<name>` only (`xattrheader=SCHILY`), no filter. libarchive
///    converts names from the locale's charset to UTF-8 for pax `path` records and writes a name it cannot
///    convert as its bytes under `hdrcharset=BINARY`; ``LayerArchiveWriter`` runs it under the thread locale
///    `C.UTF-8`, so valid UTF-8 names get plain `path` records, other names their bytes, whatever the
///    program's locale. Only the modification time is ever set on an entry (no access or change time, no user
///    or group names), so the same tree gives the same bytes. Its write callback hashes every tar byte and hands
///    it on.
/// 2. the *compressor* (when compressing): format `raw`, one entry, filter `gzip` (without a timestamp in its
///    header) or `zstd`. Its write callback hashes every compressed byte and writes it to the descriptor.
///
/// Without compression the tar writer's callback writes to the descriptor itself and both digests are the same.
final class TarWriter {
    /// Why writing failed; the exporter names the layer and the entry.
    struct Failure: Error {
        /// `.systemCallFailed` (write(2)), `.unsupported`, `.malformedInput` (an entry libarchive refused).
        var code: UnionMountError.Code
        /// libarchive's or this writer's words.
        var message: String
        /// For a failed write(2).
        var errno: Errno?
    }

    /// One entry's header.
    struct Header {
        /// What kind of file the entry is.
        enum Kind: Equatable {
            case regular, directory, symbolicLink, fifo, characterDevice, blockDevice
            /// A hard link to an earlier entry (``Header/linkTarget``).
            case hardLink
        }

        /// The name in the archive, as bytes.
        var path: [UInt8]
        var kind: Kind
        /// Permission and special bits (`mode & 07777`).
        var permissions: UInt32
        var uid: UInt32
        var gid: UInt32
        /// The size of the contents of a regular file (0 for everything else).
        var size: Int64 = 0
        var modificationTime: FileTime
        /// A symbolic link's target or the earlier entry a hard link names.
        var linkTarget: [UInt8] = []
        var deviceMajor: UInt32 = 0
        var deviceMinor: UInt32 = 0
        /// Extended attributes, in the order to write them.
        var xattrs: [(name: String, value: [UInt8])] = []
    }

    /// What was written, once ``finish()`` returns.
    struct Digests {
        /// SHA-256 of the tar stream (before compression).
        var tar: ImageDigest
        var tarSize: Int64
        /// SHA-256 of the bytes written to the descriptor.
        var blob: ImageDigest
        var blobSize: Int64
    }

    private let output: FileDescriptor
    private let tar: OpaquePointer
    private let compressor: OpaquePointer?
    private let entry: OpaquePointer
    private var tarHash = SHA256()
    private var blobHash = SHA256()
    private var tarSize: Int64 = 0
    private var blobSize: Int64 = 0
    /// The first failure a callback met (libarchive only sees `-1`).
    private var callbackFailure: Failure?
    private var closed = false

    /// Prepares to write a tar stream to `output` from its current offset.
    init(writingTo output: FileDescriptor, compression: LayerCompression) throws(Failure) {
        guard let tar = archive_write_new(), let entry = archive_entry_new() else {
            throw Failure(code: .systemCallFailed, message: "libarchive: archive_write_new failed", errno: .noMemory)
        }
        self.output = output
        self.tar = tar
        self.entry = entry
        if compression == .none {
            compressor = nil
        } else {
            guard let compressor = archive_write_new() else {
                archive_write_free(tar)
                archive_entry_free(entry)
                throw Failure(
                    code: .systemCallFailed, message: "libarchive: archive_write_new failed", errno: .noMemory)
            }
            self.compressor = compressor
        }
        try configure(compression)
    }

    deinit {
        // After a failure nothing more is flushed: archive_write_fail makes archive_write_free skip the close.
        if !closed {
            archive_write_fail(tar)
            if let compressor { archive_write_fail(compressor) }
        }
        if let compressor { archive_write_free(compressor) }
        archive_write_free(tar)
        archive_entry_free(entry)
    }

    private func configure(_ compression: LayerCompression) throws(Failure) {
        let client = Unmanaged.passUnretained(self).toOpaque()
        if let compressor {
            let added =
                compression == .gzip
                ? archive_write_add_filter_gzip(compressor) : archive_write_add_filter_zstd(compressor)
            guard added == ARCHIVE_OK else {
                throw Failure(code: .unsupported, message: "this libarchive cannot compress \(compression.rawValue)")
            }
            if compression == .gzip {
                try check(archive_write_set_filter_option(compressor, "gzip", "timestamp", nil), compressor)
            }
            try check(archive_write_set_format_raw(compressor), compressor)
            try check(archive_write_set_bytes_per_block(compressor, 0), compressor)
            try check(archive_write_open2(compressor, client, nil, writeBlobCallback, nil, nil), compressor)
            let raw = archive_entry_new()
            defer { archive_entry_free(raw) }
            archive_entry_set_filetype(raw, 0o100000)
            archive_entry_copy_pathname(raw, "layer.tar")
            try check(archive_write_header(compressor, raw), compressor)
        }
        try check(archive_write_set_format_pax(tar), tar)
        try check(archive_write_set_format_option(tar, "pax", "xattrheader", "SCHILY"), tar)
        try check(archive_write_set_bytes_in_last_block(tar, 1), tar)
        try check(archive_write_open2(tar, client, nil, writeTarCallback, nil, nil), tar)
    }

    /// Writes one entry's header; a regular file's contents follow with ``write(_:)``.
    func write(_ header: Header) throws(Failure) {
        archive_entry_clear(entry)
        withCString(header.path) { archive_entry_copy_pathname(entry, $0) }
        let type: UInt32
        switch header.kind {
        case .regular, .hardLink: type = 0o100000
        case .directory: type = 0o040000
        case .symbolicLink: type = 0o120000
        case .fifo: type = 0o010000
        case .characterDevice: type = 0o020000
        case .blockDevice: type = 0o060000
        }
        archive_entry_set_filetype(entry, type)
        archive_entry_set_perm(entry, mode_t(header.permissions & 0o7777))
        archive_entry_set_uid(entry, la_int64_t(header.uid))
        archive_entry_set_gid(entry, la_int64_t(header.gid))
        archive_entry_set_size(entry, header.kind == .regular ? header.size : 0)
        archive_entry_set_mtime(
            entry, time_t(header.modificationTime.seconds), Int(header.modificationTime.nanoseconds))
        switch header.kind {
        case .symbolicLink: withCString(header.linkTarget) { archive_entry_copy_symlink(entry, $0) }
        case .hardLink: withCString(header.linkTarget) { archive_entry_copy_hardlink(entry, $0) }
        case .characterDevice, .blockDevice:
            archive_entry_set_rdevmajor(entry, dev_t(header.deviceMajor))
            archive_entry_set_rdevminor(entry, dev_t(header.deviceMinor))
        default: break
        }
        for (name, value) in header.xattrs {
            value.withUnsafeBytes { archive_entry_xattr_add_entry(entry, name, $0.baseAddress, $0.count) }
        }
        let status = archive_write_header(tar, entry)
        // ARCHIVE_WARN: a name that is not in the locale's charset, written as its bytes with `hdrcharset=BINARY`.
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN else { throw failure(of: tar) }
    }

    /// Writes contents of the current regular file.
    func write(_ bytes: UnsafeRawBufferPointer) throws(Failure) {
        var done = 0
        while done < bytes.count {
            let count = archive_write_data(tar, bytes.baseAddress! + done, bytes.count - done)
            guard count > 0 else { throw failure(of: tar) }
            done += count
        }
    }

    /// Ends the archive (the two zero blocks), flushes the compressor and returns what was written.
    func finish() throws(Failure) -> Digests {
        closed = true
        guard archive_write_close(tar) == ARCHIVE_OK else { throw failure(of: tar) }
        if let compressor {
            guard archive_write_close(compressor) == ARCHIVE_OK else { throw failure(of: compressor) }
        }
        if let callbackFailure { throw callbackFailure }
        let tarDigest = ImageDigest(sha256: tarHash.finishAndRestart())
        let blobDigest = compressor == nil ? tarDigest : ImageDigest(sha256: blobHash.finishAndRestart())
        return Digests(
            tar: tarDigest, tarSize: tarSize, blob: blobDigest, blobSize: compressor == nil ? tarSize : blobSize)
    }

    // MARK: The two callbacks

    /// The tar writer's output: hashed, then compressed or written.
    fileprivate func tarWritten(_ bytes: UnsafeRawBufferPointer) -> Bool {
        tarHash.update(bytes)
        tarSize += Int64(bytes.count)
        guard let compressor else { return writeOutput(bytes) }
        var done = 0
        while done < bytes.count {
            let count = archive_write_data(compressor, bytes.baseAddress! + done, bytes.count - done)
            guard count > 0 else {
                record(failure(of: compressor))
                return false
            }
            done += count
        }
        return true
    }

    /// The compressor's output: hashed and written.
    fileprivate func blobWritten(_ bytes: UnsafeRawBufferPointer) -> Bool {
        blobHash.update(bytes)
        blobSize += Int64(bytes.count)
        return writeOutput(bytes)
    }

    private func writeOutput(_ bytes: UnsafeRawBufferPointer) -> Bool {
        do {
            try FileSystem.writeAll(output, bytes)
            return true
        } catch {
            record(Failure(code: .systemCallFailed, message: "cannot write the layer archive", errno: error))
            return false
        }
    }

    private func record(_ failure: Failure) {
        if callbackFailure == nil { callbackFailure = failure }
    }

    private func check(_ status: Int32, _ archive: OpaquePointer) throws(Failure) {
        guard status == ARCHIVE_OK else { throw failure(of: archive) }
    }

    /// The failure a callback recorded, else libarchive's message for `archive`.
    private func failure(of archive: OpaquePointer) -> Failure {
        if let callbackFailure { return callbackFailure }
        let text = archive_error_string(archive).map { String(cString: $0) } ?? "cannot write the archive"
        return Failure(code: .malformedInput, message: "libarchive: " + text)
    }

    private func withCString<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
        (bytes + [0]).withUnsafeBytes { body($0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
    }
}

/// The tar writer's write callback.
private func writeTarCallback(
    _ archive: OpaquePointer?, _ client: UnsafeMutableRawPointer?, _ buffer: UnsafeRawPointer?, _ length: Int
) -> la_ssize_t {
    guard let client else { return -1 }
    let writer = Unmanaged<TarWriter>.fromOpaque(client).takeUnretainedValue()
    return writer.tarWritten(UnsafeRawBufferPointer(start: buffer, count: length)) ? la_ssize_t(length) : -1
}

/// The compressor's write callback.
private func writeBlobCallback(
    _ archive: OpaquePointer?, _ client: UnsafeMutableRawPointer?, _ buffer: UnsafeRawPointer?, _ length: Int
) -> la_ssize_t {
    guard let client else { return -1 }
    let writer = Unmanaged<TarWriter>.fromOpaque(client).takeUnretainedValue()
    return writer.blobWritten(UnsafeRawBufferPointer(start: buffer, count: length)) ? la_ssize_t(length) : -1
}
