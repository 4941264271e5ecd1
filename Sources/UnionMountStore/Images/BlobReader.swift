import SystemPackage
import UnionMount

/// A blob opened for streaming (a layer tar, compressed as stored), checked while it is read: the reader hashes
/// every byte it returns and, at the end, throws unless exactly the descriptor's size was read and the SHA-256 is
/// its digest. A consumer that stops early (on its own error) has verified nothing, so only what it has read up
/// to a clean end (``read(into:)`` returning 0) may be kept.
///
/// Owns its file descriptor; ``close()`` or deinit closes it.
public final class BlobReader {
    /// What the blob must be.
    public let descriptor: ImageDescriptor
    private var fd: FileDescriptor?
    private var hasher: SHA256? = SHA256()
    private var remaining: Int64
    private let file: String

    init(descriptor: ImageDescriptor, fd: FileDescriptor, file: String) {
        self.descriptor = descriptor
        self.fd = fd
        self.remaining = descriptor.size
        self.file = file
    }

    deinit { close() }

    /// Reads the next bytes into `buffer`; 0 at the end, returned only once the blob has proved exactly its
    /// descriptor's size and digest.
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` naming the blob when it ends before its size, goes on past
    ///   it, or has another SHA-256; `UnionMountError.Code.systemCallFailed` for a failed read(2).
    ///
    /// The corresponding system call is `read(2)`.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(UnionMountError) -> Int {
        guard let fd else {
            throw UnionMountError.invalidState("the blob reader of \(file) is closed or finished", input: file)
        }
        guard !buffer.isEmpty else { return 0 }
        if remaining == 0 {
            // At the declared size: one more byte would be one too many.
            var probe: UInt8 = 0
            let extra = try withUnsafeMutableBytes(of: &probe) { (raw) throws(UnionMountError) in
                try readSome(fd, raw)
            }
            guard extra == 0 else {
                throw UnionMountError.malformed(
                    "\(file) is longer than its descriptor's \(descriptor.size) bytes", input: file)
            }
            let digest = ImageDigest(sha256: hasher.take()?.finish() ?? [])
            close()
            guard digest == descriptor.digest else {
                throw UnionMountError.malformed(
                    "\(file) does not match its digest \(descriptor.digest) (its SHA-256 is \(digest))", input: file)
            }
            return 0
        }
        let wanted = Int(min(Int64(buffer.count), remaining))
        let got = try readSome(fd, UnsafeMutableRawBufferPointer(rebasing: buffer[..<wanted]))
        guard got > 0 else {
            throw UnionMountError.malformed(
                "\(file) ends after \(descriptor.size - remaining) of its descriptor's \(descriptor.size) bytes",
                input: file)
        }
        hasher?.update(UnsafeRawBufferPointer(rebasing: buffer[..<got]))
        remaining -= Int64(got)
        return got
    }

    /// Reads the whole rest of the blob, verified (for small blobs; a stream is read with ``read(into:)``).
    public func readAll() throws(UnionMountError) -> [UInt8] {
        var out: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)
        defer { chunk.deallocate() }
        while true {
            let got = try read(into: chunk)
            if got == 0 { return out }
            out += chunk[..<got]
        }
    }

    /// Closes the file (also done at deinit); reading afterwards throws.
    ///
    /// The corresponding system call is `close(2)`.
    public func close() {
        if let fd { FileSystem.close(fd) }
        fd = nil
    }

    private func readSome(_ fd: FileDescriptor, _ raw: UnsafeMutableRawBufferPointer) throws(UnionMountError) -> Int {
        do {
            return try FileSystem.read(fd, into: raw)
        } catch {
            throw UnionMountError.systemCall("read", error, message: "cannot read \(file)", input: file)
        }
    }
}
