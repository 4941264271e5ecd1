import CLibArchive
import SystemPackage
import UnionMount

/// A layer tar read in one pass with libarchive (from a file descriptor, or from a member of an enclosing tar: see
/// ``TarSource``), with the SHA-256 and size of the bytes
/// as stored (the compressed blob: an OCI manifest's `digest`/`size`) and as decompressed (the tar itself: the
/// config's diff id), both computed while the entries are read.
///
/// Two libarchive reader objects are stacked:
///
/// 1. the *decompressor*: format `raw` only, filters `gzip` and `zstd` only (plain input passes through). Its read
///    callback reads the source (read(2) of the descriptor, or the next data block of the enclosing archive's
///    member, handed on without a copy) and hashes every compressed byte; its one "entry" is the decompressed
///    stream.
/// 2. the *tar reader*: format `tar` only (ustar, pax, GNU and v7, with GNU long names and sparse files), no
///    filter. Its read callback pulls blocks from the decompressor (no copy: libarchive's own buffer is handed
///    on) and hashes every uncompressed byte, counting them against the caller's limit.
///
/// The diff id is the digest of the *whole* decompressed stream and the blob digest that of the whole file, so
/// ``finish()`` reads what the tar reader left after the end-of-archive blocks through both hashes.
///
/// Attack surface, on purpose: no other archive format (zip, cpio, 7z, ISO, RAR…) and no other filter (bzip2,
/// xz, lz4, uuencode, external programs) is registered. A libarchive that would decompress gzip or zstd by
/// running an external program (built without zlib or libzstd; it says `ARCHIVE_WARN`) is refused.
final class TarStream {
    /// Why reading failed; the applier names the layer and the entry.
    struct Failure: Error {
        /// `.malformedInput` (damaged stream), `.systemCallFailed` (read(2)), `.unsupported`.
        var code: UnionMountError.Code
        /// libarchive's or this reader's words.
        var message: String
        /// For a failed read(2).
        var errno: Errno?
    }

    /// The compression the decompressor found.
    enum Compression: String, Sendable {
        case none, gzip, zstd
    }

    private let source: TarSource
    private let decompressor: OpaquePointer
    private let reader: OpaquePointer
    fileprivate let buffer: UnsafeMutableRawBufferPointer
    private var compressedHash = SHA256()
    private var uncompressedHash = SHA256()
    /// Bytes read from the descriptor so far.
    private(set) var compressedSize: Int64 = 0
    /// Bytes of decompressed stream handed to the tar reader (or drained) so far.
    private(set) var uncompressedSize: Int64 = 0
    private let maximumUncompressed: Int64
    private let maximumCompressed: Int64
    /// The first failure a callback met (libarchive only sees `-1`).
    private var callbackFailure: Failure?
    private var decompressedEnd = false
    private var opened = false
    /// Called with the bytes read from the source so far, after each read.
    var onRead: ((Int64) -> Void)?

    /// Prepares to read `source` from its current offset.
    ///
    /// - Parameters:
    ///   - maximumUncompressedBytes: the decompressed stream may not be longer (a decompression bomb).
    ///   - maximumCompressedBytes: the file may not be longer (the manifest's size, when known).
    convenience init(
        reading source: FileDescriptor, maximumUncompressedBytes: Int64, maximumCompressedBytes: Int64 = .max
    ) throws(Failure) {
        try self.init(
            source: .file(source), maximumUncompressedBytes: maximumUncompressedBytes,
            maximumCompressedBytes: maximumCompressedBytes)
    }

    /// Prepares to read `source` (a descriptor from its current offset, or an archive member from its start).
    init(source: TarSource, maximumUncompressedBytes: Int64, maximumCompressedBytes: Int64 = .max) throws(Failure) {
        guard let decompressor = archive_read_new() else {
            throw Failure(code: .systemCallFailed, message: "libarchive: archive_read_new failed", errno: .noMemory)
        }
        guard let reader = archive_read_new() else {
            archive_read_free(decompressor)
            throw Failure(code: .systemCallFailed, message: "libarchive: archive_read_new failed", errno: .noMemory)
        }
        self.source = source
        self.decompressor = decompressor
        self.reader = reader
        self.buffer = .allocate(byteCount: 1 << 20, alignment: 64)
        self.maximumUncompressed = maximumUncompressedBytes
        self.maximumCompressed = maximumCompressedBytes
        for (name, register) in [
            ("gzip", archive_read_support_filter_gzip), ("zstd", archive_read_support_filter_zstd),
        ] as [(String, (OpaquePointer?) -> Int32)] {
            guard register(decompressor) == ARCHIVE_OK else {
                throw Failure(
                    code: .unsupported,
                    message: "this libarchive cannot decompress \(name) in process (it would run an external program)")
            }
        }
        guard archive_read_support_format_raw(decompressor) == ARCHIVE_OK,
            archive_read_support_format_tar(reader) == ARCHIVE_OK
        else {
            throw Failure(code: .unsupported, message: "libarchive has no raw or tar reader")
        }
    }

    deinit {
        archive_read_free(reader)
        archive_read_free(decompressor)
        buffer.deallocate()
    }

    /// What the decompressor found once it has started.
    var compression: Compression {
        switch archive_filter_code(decompressor, 0) {
        case ARCHIVE_FILTER_GZIP: .gzip
        case ARCHIVE_FILTER_ZSTD: .zstd
        default: .none
        }
    }

    /// The next entry's header, nil after the last one.
    func next() throws(Failure) -> TarEntry? {
        if !opened { try open() }
        var entry: OpaquePointer?
        let status = archive_read_next_header(reader, &entry)
        if status == ARCHIVE_EOF { return nil }
        // ARCHIVE_WARN: a name that is not in the locale's charset (kept as raw bytes) and the like.
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else { throw failure(of: reader) }
        return try TarEntry(entry)
    }

    /// The next block of the current entry's data at its offset (sparse files skip their holes), nil at its end.
    func nextBlock() throws(Failure) -> (bytes: UnsafeRawBufferPointer, offset: Int64)? {
        var pointer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        let status = archive_read_data_block(reader, &pointer, &size, &offset)
        if status == ARCHIVE_EOF { return nil }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN else { throw failure(of: reader) }
        return (UnsafeRawBufferPointer(start: pointer, count: size), Int64(offset))
    }

    /// Reads the rest of the decompressed stream and of the file through the hashes, and returns the digests of
    /// the whole file (compressed) and of the whole decompressed stream.
    func finish() throws(Failure) -> (compressed: ImageDigest, uncompressed: ImageDigest) {
        if !opened { try open() }
        while try pullDecompressed() != nil {}
        while try !readSource().isEmpty {}
        let compressed = ImageDigest(sha256: compressedHash.finishAndRestart())
        let uncompressed = ImageDigest(sha256: uncompressedHash.finishAndRestart())
        return (compressed, uncompressed)
    }

    // MARK: The two callbacks

    /// The next piece of the source (read(2) into the buffer, or the member's next block), hashed and counted;
    /// empty at the end.
    fileprivate func readSource() throws(Failure) -> UnsafeRawBufferPointer {
        let block: UnsafeRawBufferPointer
        switch source {
        case .file(let fd):
            let count: Int
            do {
                count = try FileSystem.read(fd, into: buffer)
            } catch {
                throw Failure(code: .systemCallFailed, message: "cannot read the layer archive", errno: error)
            }
            block = UnsafeRawBufferPointer(rebasing: buffer[..<count])
        case .member(let member):
            block = try member.nextBlock()
        }
        let count = block.count
        compressedSize += Int64(count)
        guard compressedSize <= maximumCompressed else {
            throw Failure(
                code: .malformedInput,
                message: "the layer blob is longer than the \(maximumCompressed) bytes its descriptor says")
        }
        compressedHash.update(block)
        onRead?(compressedSize)
        return block
    }

    /// The decompressor's next block, hashed and counted; nil at the end of the stream.
    fileprivate func pullDecompressed() throws(Failure) -> UnsafeRawBufferPointer? {
        guard !decompressedEnd else { return nil }
        var pointer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        // An empty block is not the end (a 0 returned to the tar reader would be).
        while size == 0 {
            let status = archive_read_data_block(decompressor, &pointer, &size, &offset)
            if status == ARCHIVE_EOF {
                decompressedEnd = true
                return nil
            }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN else { throw failure(of: decompressor) }
        }
        let block = UnsafeRawBufferPointer(start: pointer, count: size)
        uncompressedSize += Int64(size)
        guard uncompressedSize <= maximumUncompressed else {
            throw Failure(
                code: .malformedInput,
                message: "the layer's tar stream is longer than the limit of \(maximumUncompressed) bytes (a tar bomb?)"
            )
        }
        uncompressedHash.update(block)
        return block
    }

    fileprivate func record(_ failure: Failure) {
        if callbackFailure == nil { callbackFailure = failure }
    }

    // MARK: Opening

    private func open() throws(Failure) {
        opened = true
        let client = Unmanaged.passUnretained(self).toOpaque()
        guard archive_read_open(decompressor, client, nil, readCompressedCallback, nil) == ARCHIVE_OK else {
            throw failure(of: decompressor)
        }
        var entry: OpaquePointer?
        let header = archive_read_next_header(decompressor, &entry)
        if header == ARCHIVE_EOF {
            decompressedEnd = true
        } else if header != ARCHIVE_OK && header != ARCHIVE_WARN {
            throw failure(of: decompressor)
        }
        guard archive_read_open(reader, client, nil, readUncompressedCallback, nil) == ARCHIVE_OK else {
            throw failure(of: reader)
        }
    }

    /// The failure a callback recorded, else libarchive's message for `archive`.
    private func failure(of archive: OpaquePointer) -> Failure {
        if let callbackFailure { return callbackFailure }
        let text = archive_error_string(archive).map { String(cString: $0) } ?? "unreadable archive"
        return Failure(code: .malformedInput, message: "libarchive: " + text)
    }
}

/// The decompressor's read callback: the next piece of the file.
private func readCompressedCallback(
    _ archive: OpaquePointer?, _ client: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<UnsafeRawPointer?>?
) -> la_ssize_t {
    guard let client, let out else { return -1 }
    let stream = Unmanaged<TarStream>.fromOpaque(client).takeUnretainedValue()
    do {
        let block = try stream.readSource()
        out.pointee = block.baseAddress
        return la_ssize_t(block.count)
    } catch {
        stream.record(error)
        return -1
    }
}

/// The tar reader's read callback: the decompressor's next block.
private func readUncompressedCallback(
    _ archive: OpaquePointer?, _ client: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<UnsafeRawPointer?>?
) -> la_ssize_t {
    guard let client, let out else { return -1 }
    let stream = Unmanaged<TarStream>.fromOpaque(client).takeUnretainedValue()
    do {
        guard let block = try stream.pullDecompressed() else { return 0 }
        out.pointee = block.baseAddress
        return la_ssize_t(block.count)
    } catch {
        stream.record(error)
        return -1
    }
}

/// Where a ``TarStream`` reads the blob from.
enum TarSource {
    /// A file descriptor, read with read(2) from its current offset to its end.
    case file(FileDescriptor)
    /// A member of an enclosing (uncompressed) tar, such as a `docker save` archive's `<id>/layer.tar`.
    case member(TarMemberData)
}
