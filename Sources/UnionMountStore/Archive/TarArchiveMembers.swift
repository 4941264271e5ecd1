import CLibArchive
import SystemPackage
import UnionMount

/// The members of an uncompressed tar file (a `docker save` archive, an `oci-archive`), indexed in one pass with
/// libarchive, then read one at a time without reading anything else.
///
/// The index pass reads every header (ustar, pax, GNU) and records each member's name, type, size and the offset
/// of its first header block; data is skipped by moving an offset, never read. Reading a member starts a fresh
/// libarchive tar reader at that offset (pread(2), so several readers share the descriptor), which decodes the
/// header again and yields the data blocks: a member's bytes are handed on as libarchive's own blocks, so a
/// layer member streams straight into a second reader (``TarStream``) without a copy on disk. A lookup is one
/// dictionary probe, so a 100-layer archive costs one pass plus one seek per member read.
///
/// Untrusted, like everything in an image: a member name that is absolute or has a `..` component, a name
/// that appears twice, more members than the limit, and a compressed or damaged archive are refused
/// (`UnionMountError.Code.malformedInput`). Symbolic links among members (`docker save` links a layer shared by
/// two images to the first copy, `../<id>/layer.tar`) are resolved by name inside the archive only, at most 16
/// deep; a hard link member reads its target's data.
final class TarArchiveMembers {
    /// What a member is.
    enum Kind: Equatable {
        case regular, directory, symbolicLink, hardLink, other
    }

    /// One member as indexed.
    struct Member {
        /// The name, normalized (`./a//b` is `a/b`).
        var name: [UInt8]
        var kind: Kind
        /// The size of its data (0 for anything but a regular file).
        var size: Int64
        /// Where its first header block starts in the file.
        var headerOffset: Int64
        /// A link's target as stored.
        var linkTarget: [UInt8]
    }

    /// The archive's name in messages (its path).
    let name: String
    private let fd: FileDescriptor
    private let fileSize: Int64
    private var members: [[UInt8]: Member] = [:]

    /// Opens `path` and indexes its members.
    ///
    /// Wraps open(2), fstat(2), pread(2) and libarchive's tar reader.
    ///
    /// - Throws: `UnionMountError.Code.notFound` when the file does not exist; `UnionMountError.Code.malformedInput`
    ///   naming the archive (and the member) for what ``TarArchiveMembers`` refuses;
    ///   `UnionMountError.Code.systemCallFailed`.
    init(opening path: FilePath, maximumMembers: Int) throws(UnionMountError) {
        name = path.readable
        do {
            fd = try FileSystem.open(path, .readOnly, options: [.nonBlocking])
        } catch {
            if error == .noSuchFileOrDirectory {
                throw UnionMountError(code: .notFound, message: "the archive \(name) does not exist", input: name)
            }
            throw UnionMountError.systemCall("open", error, message: "cannot open the archive \(name)", input: name)
        }
        let status: FileStatus
        do {
            status = try FileSystem.status(of: fd)
        } catch {
            FileSystem.close(fd)
            throw UnionMountError.systemCall("fstat", error, message: "cannot stat the archive \(name)", input: name)
        }
        guard status.type == .regular else {
            FileSystem.close(fd)
            throw UnionMountError.invalidArgument("the archive \(name) is not a regular file", input: name)
        }
        fileSize = status.size
        try index(maximumMembers: maximumMembers)
    }

    deinit { FileSystem.close(fd) }

    /// The regular-file member `name` (links followed inside the archive); nil when there is none.
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` naming the member when it is a directory or another
    ///   non-file, or a link that leaves the archive, loops or leads nowhere.
    func regularMember(_ name: String) throws(UnionMountError) -> Member? {
        guard let wanted = try? ArchivePath.components(Array(name.utf8), maximumLength: 4096) else { return nil }
        var key = ArchivePath.joined(wanted)
        for _ in 0..<16 {
            guard let member = members[key] else { return nil }
            switch member.kind {
            case .regular: return member
            case .directory:
                throw UnionMountError.malformed(
                    "\(self.name): the member \(name) is a directory, not a file", input: name)
            case .other:
                throw UnionMountError.malformed(
                    "\(self.name): the member \(name) is not a regular file", input: name)
            case .hardLink:
                key = try linked(member.linkTarget, from: [], member: name)
            case .symbolicLink:
                key = try linked(member.linkTarget, from: Array(splitName(member.name).dropLast()), member: name)
            }
        }
        throw UnionMountError.malformed(
            "\(self.name): the member \(name) is a chain of more than 16 links", input: name)
    }

    /// The data of `member`, at most `maximumSize` bytes.
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` naming the member when it holds more (nothing read), or
    ///   when the archive is damaged there.
    func read(_ member: Member, maximumSize: Int) throws(UnionMountError) -> [UInt8] {
        guard member.size <= Int64(maximumSize) else {
            throw UnionMountError.malformed(
                "\(name): the member \(member.name.readable) holds \(member.size) bytes, over the limit of "
                    + "\(maximumSize)", input: member.name.readable)
        }
        let data = try open(member)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(member.size))
        while true {
            let block: UnsafeRawBufferPointer
            do {
                block = try data.nextBlock()
            } catch {
                throw UnionMountError(
                    code: error.code, message: "\(name): the member \(member.name.readable): \(error.message)",
                    input: member.name.readable)
            }
            if block.isEmpty { return bytes }
            bytes += block
        }
    }

    /// A reader of `member`'s data, positioned at its start.
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` when its header no longer reads as it did.
    func open(_ member: Member) throws(UnionMountError) -> TarMemberData {
        let reader = try PositionedTarReader(fd: fd, offset: member.headerOffset, fileSize: fileSize, archive: name)
        guard let entry = try reader.nextHeader(), entry.name == member.name, entry.kind == .regular else {
            throw UnionMountError.malformed(
                "\(name): the member \(member.name.readable) does not read back at its offset", input: name)
        }
        return TarMemberData(reader: reader, size: member.size)
    }

    // MARK: Implementation

    private func index(maximumMembers: Int) throws(UnionMountError) {
        let reader = try PositionedTarReader(fd: fd, offset: 0, fileSize: fileSize, archive: name)
        while let entry = try reader.nextHeader() {
            guard !entry.name.isEmpty else { continue }
            guard members[entry.name] == nil else {
                throw UnionMountError.malformed(
                    "\(name): the member \(entry.name.readable) appears twice", input: entry.name.readable)
            }
            guard members.count < maximumMembers else {
                throw UnionMountError.malformed(
                    "\(name) has more than the limit of \(maximumMembers) members", input: name)
            }
            members[entry.name] = entry
        }
    }

    private func splitName(_ name: [UInt8]) -> [[UInt8]] {
        name.split(separator: UInt8(ascii: "/")).map(Array.init)
    }

    /// The name a link's `target` leads to, relative to the directory `base` (components).
    private func linked(_ target: [UInt8], from base: [[UInt8]], member: String) throws(UnionMountError) -> [UInt8] {
        guard !target.isEmpty, target[0] != UInt8(ascii: "/") else {
            throw UnionMountError.malformed(
                "\(name): the member \(member) links to \(target.readable), outside the archive", input: member)
        }
        var components = base
        for component in target.split(separator: UInt8(ascii: "/")) {
            if component.elementsEqual(".".utf8) { continue }
            if component.elementsEqual("..".utf8) {
                guard !components.isEmpty else {
                    throw UnionMountError.malformed(
                        "\(name): the member \(member) links to \(target.readable), outside the archive",
                        input: member)
                }
                components.removeLast()
                continue
            }
            components.append(Array(component))
        }
        return ArchivePath.joined(components)
    }
}

/// The data of one member of a ``TarArchiveMembers``, block by block (libarchive's blocks, valid until the next
/// call).
final class TarMemberData {
    private let reader: PositionedTarReader
    private let size: Int64
    private var delivered: Int64 = 0

    fileprivate init(reader: PositionedTarReader, size: Int64) {
        self.reader = reader
        self.size = size
    }

    /// The next block of the member's data; empty at its end.
    ///
    /// - Throws: a damaged or truncated archive; a sparse member (a hole is not a blob's bytes).
    func nextBlock() throws(TarStream.Failure) -> UnsafeRawBufferPointer {
        var pointer: UnsafeRawPointer?
        var count = 0
        var offset: la_int64_t = 0
        while true {
            let status = archive_read_data_block(reader.archive, &pointer, &count, &offset)
            if status == ARCHIVE_EOF {
                guard delivered == size else {
                    throw TarStream.Failure(
                        code: .malformedInput,
                        message: "the archive member ends after \(delivered) of its \(size) bytes")
                }
                return UnsafeRawBufferPointer(start: nil, count: 0)
            }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN else { throw reader.failure() }
            guard Int64(offset) == delivered else {
                throw TarStream.Failure(
                    code: .malformedInput, message: "the archive member is sparse (a hole at byte \(delivered))")
            }
            if count == 0 { continue }
            delivered += Int64(count)
            return UnsafeRawBufferPointer(start: pointer, count: count)
        }
    }
}

/// A libarchive tar reader (format tar only, no filter) over a descriptor from `offset`, reading with pread(2)
/// and skipping data by moving its offset.
private final class PositionedTarReader {
    let archive: OpaquePointer
    let fd: FileDescriptor
    var offset: Int64
    let fileSize: Int64
    let name: String
    let buffer: UnsafeMutableRawBufferPointer
    var callbackFailure: TarStream.Failure?

    init(fd: FileDescriptor, offset: Int64, fileSize: Int64, archive name: String) throws(UnionMountError) {
        guard let archive = archive_read_new() else {
            throw UnionMountError.systemCall(
                "archive_read_new", .noMemory, message: "libarchive: archive_read_new failed", input: name)
        }
        self.archive = archive
        self.fd = fd
        self.offset = offset
        self.fileSize = fileSize
        self.name = name
        self.buffer = .allocate(byteCount: 1 << 20, alignment: 64)
        guard archive_read_support_format_tar(archive) == ARCHIVE_OK else {
            throw UnionMountError(code: .unsupported, message: "libarchive has no tar reader", input: name)
        }
        let client = Unmanaged.passUnretained(self).toOpaque()
        archive_read_set_read_callback(archive, positionedRead)
        archive_read_set_skip_callback(archive, positionedSkip)
        archive_read_set_callback_data(archive, client)
        guard archive_read_open1(archive) == ARCHIVE_OK else { throw refusal() }
    }

    deinit {
        archive_read_free(archive)
        buffer.deallocate()
    }

    /// The next header as a member (its offset the first block of its header); nil after the last.
    func nextHeader() throws(UnionMountError) -> TarArchiveMembers.Member? {
        var entry: OpaquePointer?
        let status = archive_read_next_header(archive, &entry)
        if status == ARCHIVE_EOF { return nil }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else { throw refusal() }
        let header = Int64(archive_read_header_position(archive))
        let decoded: TarEntry
        do {
            decoded = try TarEntry(entry)
        } catch {
            throw UnionMountError(code: error.code, message: "\(name): \(error.message)", input: name)
        }
        let components: [[UInt8]]
        do {
            components = try ArchivePath.components(decoded.path, maximumLength: 4096)
        } catch {
            throw UnionMountError.malformed(
                "\(name): the member \(decoded.path.readable): \(error.reason)", input: decoded.path.readable)
        }
        let kind: TarArchiveMembers.Kind
        switch decoded.kind {
        case .regular: kind = .regular
        case .directory: kind = .directory
        case .symbolicLink: kind = .symbolicLink
        case .hardLink: kind = .hardLink
        default: kind = .other
        }
        var target = decoded.linkTarget
        if kind == .hardLink, let normalized = try? ArchivePath.components(target, maximumLength: 4096) {
            target = ArchivePath.joined(normalized)
        }
        return TarArchiveMembers.Member(
            name: ArchivePath.joined(components), kind: kind, size: kind == .regular ? decoded.size : 0,
            headerOffset: header, linkTarget: target)
    }

    /// A failure of libarchive (or of a callback) as a store error naming the archive.
    func refusal() -> UnionMountError {
        let failure = self.failure()
        if let errno = failure.errno {
            return UnionMountError.systemCall("pread", errno, message: "\(name): \(failure.message)", input: name)
        }
        return UnionMountError(
            code: failure.code,
            message: "\(name) is not a readable uncompressed tar archive (\(failure.message)); a compressed "
                + "archive must be decompressed first", input: name)
    }

    func failure() -> TarStream.Failure {
        if let callbackFailure { return callbackFailure }
        let text = archive_error_string(archive).map { String(cString: $0) } ?? "unreadable archive"
        return TarStream.Failure(code: .malformedInput, message: "libarchive: " + text)
    }

    fileprivate func readNext() throws(TarStream.Failure) -> Int {
        do {
            let count = try FileSystem.read(fd, into: buffer, atOffset: offset)
            offset += Int64(count)
            return count
        } catch {
            throw TarStream.Failure(code: .systemCallFailed, message: "cannot read the archive", errno: error)
        }
    }
}

/// The read callback: the next piece of the file from the reader's offset.
private func positionedRead(
    _ archive: OpaquePointer?, _ client: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<UnsafeRawPointer?>?
) -> la_ssize_t {
    guard let client, let out else { return -1 }
    let reader = Unmanaged<PositionedTarReader>.fromOpaque(client).takeUnretainedValue()
    do {
        let count = try reader.readNext()
        out.pointee = UnsafeRawPointer(reader.buffer.baseAddress)
        return la_ssize_t(count)
    } catch {
        if reader.callbackFailure == nil { reader.callbackFailure = error }
        return -1
    }
}

/// The skip callback: moves the offset, up to the end of the file (no read).
private func positionedSkip(
    _ archive: OpaquePointer?, _ client: UnsafeMutableRawPointer?, _ request: la_int64_t
) -> la_int64_t {
    guard let client, request > 0 else { return 0 }
    let reader = Unmanaged<PositionedTarReader>.fromOpaque(client).takeUnretainedValue()
    let skipped = min(Int64(request), max(0, reader.fileSize - reader.offset))
    reader.offset += skipped
    return la_int64_t(skipped)
}
