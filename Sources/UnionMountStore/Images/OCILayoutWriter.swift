import SystemPackage
import UnionMount

/// Writes into an OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), creating it or
/// adding to one that exists: what ``LayerStore/exportImage(named:to:options:)`` writes images with.
///
/// Every blob is written to a temporary name in `blobs/sha256/` (`O_CREAT | O_EXCL | O_NOFOLLOW`) and renamed to
/// its digest once written, so a reader never sees half a blob and a blob already there is replaced only by the
/// same bytes. `index.json` is rewritten whole through a temporary file and rename(2). The layout directory and
/// `blobs/sha256` must be directories, not symbolic links.
struct OCILayoutWriter {
    let directory: FilePath
    var blobs: FilePath { directory.appending("blobs").appending("sha256") }

    /// Prepares `directory` (created when missing, with `blobs/sha256/` and `oci-layout`).
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` for an `oci-layout` of another version or a symbolic link
    ///   in place of a directory; `UnionMountError.Code.systemCallFailed`.
    init(directory: FilePath) throws(UnionMountError) {
        self.directory = directory
        for path in [directory, directory.appending("blobs"), blobs] { try Self.makeDirectory(path) }
        let layoutFile = directory.appending("oci-layout")
        if let existing = try Self.read(layoutFile, limit: 1 << 16) {
            try ImageLayoutVersion.check(existing, file: layoutFile.readable)
        } else {
            try Self.replace(
                layoutFile, with: Array("{\"imageLayoutVersion\":\"\(ImageLayoutVersion.current)\"}".utf8))
        }
    }

    /// Writes `bytes` as a blob; returns its digest.
    @discardableResult
    func writeBlob(_ bytes: [UInt8]) throws(UnionMountError) -> ImageDigest {
        let digest = SHA256.digest(of: bytes)
        _ = try writeBlob { (fd) throws(UnionMountError) -> ImageDigest in
            do throws(Errno) {
                try FileSystem.writeAll(fd, bytes)
            } catch {
                throw UnionMountError.systemCall(
                    "write", error, message: "cannot write a blob in \(blobs.readable)", input: blobs.readable)
            }
            return digest
        }
        return digest
    }

    /// Writes a blob by `produce`, which writes it to the descriptor it is given and returns its digest (and
    /// whatever else the caller wants back).
    func writeBlob<Result>(_ produce: (FileDescriptor) throws(UnionMountError) -> Result) throws(UnionMountError)
        -> Result where Result: BlobProduct
    {
        let temporary = blobs.appending(Self.temporaryName())
        let fd: FileDescriptor
        do {
            fd = try FileSystem.open(
                temporary, .writeOnly, options: [.create, .exclusiveCreate, .noFollow], permissions: 0o644)
        } catch {
            throw UnionMountError.systemCall(
                "open", error, message: "cannot create \(temporary.readable)", input: temporary.readable)
        }
        let result: Result
        do {
            defer { FileSystem.close(fd) }
            result = try produce(fd)
        } catch {
            try? FileSystem.unlink(temporary)
            throw error
        }
        let target = blobs.appending(result.blobDigest.hex)
        do {
            try FileSystem.rename(temporary, to: target)
        } catch {
            try? FileSystem.unlink(temporary)
            throw UnionMountError.systemCall(
                "rename", error, message: "cannot name the blob \(target.readable)", input: target.readable)
        }
        return result
    }

    /// Adds `manifest` to `index.json` under the tag `tag` (`org.opencontainers.image.ref.name`), replacing any
    /// entry of that tag; without a tag it is added unless the same digest is already listed untagged.
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` for an `index.json` that is not a JSON object with a
    ///   `manifests` list.
    func tag(_ manifest: ImageDescriptor, as tag: String?) throws(UnionMountError) {
        let file = directory.appending("index.json")
        var entries: [JSONValue] = []
        var document = JSONValue.object([
            .init(key: "schemaVersion", value: .number("2")),
            .init(key: "mediaType", value: .string(ImageMediaType.ociIndex)),
        ])
        if let bytes = try Self.read(file, limit: 64 << 20) {
            document = try JSONReader.parse(bytes, file: file.readable)
            guard case .object = document, case .array(let listed)? = document.member("manifests") ?? .array([])
            else {
                throw UnionMountError.malformed(
                    "\(file.readable): not an image index with a manifests list", input: file.readable)
            }
            entries = listed
        }
        var entry = manifest
        if let tag { entry.annotations = [ImageDescriptor.referenceNameAnnotation: tag] }
        let new = ImageDocuments.descriptor(entry)
        entries.removeAll { existing in
            let name = existing.member("annotations")?.member(ImageDescriptor.referenceNameAnnotation)
            if let tag { return name == .string(tag) }
            return name == nil && existing.member("digest") == .string(manifest.digest.description)
        }
        entries.append(new)
        try Self.replace(file, with: document.setting("manifests", .array(entries)).serialized)
    }

    // MARK: Files

    static func temporaryName() -> String {
        var generator = SystemRandomNumberGenerator()
        return ".tmp-" + lowercaseHex((0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// Creates the directory unless it is one already (never through a symbolic link).
    static func makeDirectory(_ path: FilePath) throws(UnionMountError) {
        do {
            try FileSystem.makeDirectory(path, permissions: 0o755)
        } catch  where error == .fileExists {
            let info: FileStatus
            do {
                info = try FileSystem.status(path)
            } catch {
                throw UnionMountError.systemCall(
                    "lstat", error, message: "cannot examine \(path.readable)", input: path.readable)
            }
            guard info.type == .directory else {
                throw UnionMountError.malformed(
                    "\(path.readable) is not a directory (a symbolic link is not followed)", input: path.readable)
            }
        } catch {
            throw UnionMountError.systemCall(
                "mkdir", error, message: "cannot create \(path.readable)", input: path.readable)
        }
    }

    /// The contents of a regular file (`O_NOFOLLOW`), nil when it does not exist.
    static func read(_ path: FilePath, limit: Int) throws(UnionMountError) -> [UInt8]? {
        do {
            return try FileSystem.readAll(path, options: [.noFollow], limit: limit)
        } catch {
            if error.systemCall == "open" && error.errno == .noSuchFileOrDirectory { return nil }
            throw UnionMountError.systemCall(
                error.systemCall, error.errno, message: "cannot read \(path.readable)", input: path.readable)
        }
    }

    /// Replaces `path` by a file of `bytes`, through a temporary file beside it and rename(2).
    static func replace(_ path: FilePath, with bytes: [UInt8]) throws(UnionMountError) {
        guard let parent = path.removingLastComponent().isEmpty ? nil : Optional(path.removingLastComponent()) else {
            throw UnionMountError.invalidArgument("\(path.readable) has no directory", input: path.readable)
        }
        let temporary = parent.appending(temporaryName())
        do throws(Errno) {
            let fd = try FileSystem.open(
                temporary, .writeOnly, options: [.create, .exclusiveCreate, .noFollow], permissions: 0o644)
            defer { FileSystem.close(fd) }
            try FileSystem.writeAll(fd, bytes)
        } catch {
            try? FileSystem.unlink(temporary)
            throw UnionMountError.systemCall(
                "write", error, message: "cannot write \(temporary.readable)", input: path.readable)
        }
        do {
            try FileSystem.rename(temporary, to: path)
        } catch {
            try? FileSystem.unlink(temporary)
            throw UnionMountError.systemCall(
                "rename", error, message: "cannot replace \(path.readable)", input: path.readable)
        }
    }
}

/// What a blob producer returns: at least the blob's digest.
protocol BlobProduct {
    var blobDigest: ImageDigest { get }
}

extension ImageDigest: BlobProduct {
    var blobDigest: ImageDigest { self }
}

extension ExportedLayer: BlobProduct {
    var blobDigest: ImageDigest { digest }
}
