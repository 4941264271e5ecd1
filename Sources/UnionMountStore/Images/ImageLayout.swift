import SystemPackage
import UnionMount

/// An OCI image layout directory, as `skopeo copy … oci:DIR` and `umoci` write it: `oci-layout`, `index.json`,
/// `blobs/sha256/<hex>`.
///
///     let layout = ImageLayout(directory: "/images/debian")
///     let image = try layout.resolve(.tag("12"))                       // index.json → (index →)* manifest
///     for layer in image.layers { let stream = try layout.openBlob(layer.blob.descriptor!) … }
///
/// Everything read is untrusted. A blob's path is built only from a validated ``ImageDigest`` (never from a
/// string in the JSON), and opened one component at a time below the layout directory with `O_NOFOLLOW`
/// (`blobs`, `sha256`, `<hex>`, each openat(2) relative to the one before), so a symbolic link anywhere below
/// the layout directory is refused rather than followed out of it; the blob must be a regular file. Every blob
/// is checked against its descriptor while it is read: exactly its size, and its SHA-256.
///
/// The layout directory itself is opened as given (a symbolic link to it is the caller's choice).
public struct ImageLayout: Sendable {
    /// The layout directory.
    public let directory: FilePath
    /// Bounds on JSON sizes and index nesting.
    public var limits: ImageReadLimits

    /// A layout at `directory` (nothing is read yet).
    public init(directory: FilePath, limits: ImageReadLimits = ImageReadLimits()) {
        self.directory = directory
        self.limits = limits
    }

    /// Reads `index.json` and follows it to one image.
    ///
    /// - Parameters:
    ///   - selector: the only image, a tag (`org.opencontainers.image.ref.name`) or a manifest digest.
    ///   - platform: what an image index is chosen for (default: this machine, ``ImagePlatform/host``).
    /// - Throws: `UnionMountError.Code.notFound` (no such tag or digest, no manifest for the platform — the
    ///   message lists what there is —, a missing file or blob); `UnionMountError.Code.malformedInput` naming the
    ///   file and field (bad JSON, a blob whose size or digest is not its descriptor's, a symbolic link below the
    ///   layout, indexes nested too deep, layer and diff id counts that differ); `UnionMountError.Code.unsupported`
    ///   (another layout version, a manifest or layer type the store does not read).
    public func resolve(
        _ selector: ImageSelector = .only, platform: ImagePlatform = .host
    ) throws(UnionMountError) -> ResolvedImage {
        try OCIImageResolver(source: LayoutFiles(layout: self), limits: limits, platform: platform).resolve(selector)
    }

    /// Opens the blob of `descriptor` for reading, checked while read (see ``BlobReader``).
    ///
    /// - Throws: `UnionMountError.Code.notFound` when it is absent; `UnionMountError.Code.malformedInput` when a
    ///   symbolic link or something other than a regular file is in its place, or its size is not the
    ///   descriptor's.
    ///
    /// The corresponding system calls are `openat(2)` (`O_NOFOLLOW`, component by component) and `fstat(2)`.
    public func openBlob(_ descriptor: ImageDescriptor) throws(UnionMountError) -> BlobReader {
        let files = LayoutFiles(layout: self)
        guard let (fd, size) = try files.openBlob(descriptor.digest) else {
            throw UnionMountError(
                code: .notFound,
                message: "the blob \(blobFileName(descriptor.digest)) is missing from \(directory.readable)",
                input: blobFileName(descriptor.digest))
        }
        guard size == descriptor.size else {
            FileSystem.close(fd)
            throw UnionMountError.malformed(
                "\(blobFileName(descriptor.digest)) holds \(size) bytes, its descriptor says \(descriptor.size)",
                input: blobFileName(descriptor.digest))
        }
        return BlobReader(descriptor: descriptor, fd: fd, file: blobFileName(descriptor.digest))
    }
}

/// The files of a layout directory, opened without following a link below it.
struct LayoutFiles: OCIFileSource {
    let layout: ImageLayout

    var name: String { layout.directory.readable }

    func readTopFile(_ file: String, limit: Int) throws(UnionMountError) -> [UInt8]? {
        guard let (fd, _) = try open([file]) else { return nil }
        defer { FileSystem.close(fd) }
        return try read(fd, limit: limit, file: file)
    }

    func readBlob(_ digest: ImageDigest, limit: Int) throws(UnionMountError) -> [UInt8]? {
        guard let (fd, _) = try openBlob(digest) else { return nil }
        defer { FileSystem.close(fd) }
        return try read(fd, limit: limit, file: blobFileName(digest))
    }

    func blobSize(_ digest: ImageDigest) throws(UnionMountError) -> Int64? {
        guard let (fd, size) = try openBlob(digest) else { return nil }
        FileSystem.close(fd)
        return size
    }

    func member(of digest: ImageDigest) -> String? { nil }

    func openBlob(_ digest: ImageDigest) throws(UnionMountError) -> (FileDescriptor, Int64)? {
        try open(["blobs", "sha256", digest.hex])
    }

    /// Opens `components` below the layout directory, each relative to the one before with `O_NOFOLLOW`; the
    /// last must be a regular file (opened `O_NONBLOCK`, so a FIFO cannot hang the open). Nil when a component
    /// does not exist.
    func open(_ components: [String]) throws(UnionMountError) -> (FileDescriptor, Int64)? {
        let place = components.joined(separator: "/")
        var current: FileDescriptor
        do {
            current = try FileSystem.open(layout.directory, .readOnly, options: [.directory])
        } catch {
            if error == .noSuchFileOrDirectory {
                throw UnionMountError(
                    code: .notFound, message: "the image layout \(name) does not exist", input: name)
            }
            throw UnionMountError.systemCall(
                "open", error, message: "cannot open the image layout \(name)", input: name)
        }
        for (position, component) in components.enumerated() {
            let last = position == components.count - 1
            let next: FileDescriptor
            do {
                next = try FileSystem.open(
                    FilePath(component), .readOnly,
                    options: last ? [.noFollow, .nonBlocking] : [.directory, .noFollow],
                    relativeTo: current)
            } catch {
                // O_DIRECTORY|O_NOFOLLOW on a link says ENOTDIR: tell a link from a file.
                let isLink = (try? FileSystem.status(FilePath(component), relativeTo: current))?.type == .symbolicLink
                FileSystem.close(current)
                let prefix = components[...position].joined(separator: "/")
                switch isLink ? .tooManySymbolicLinkLevels : error {
                case .noSuchFileOrDirectory: return nil
                case .tooManySymbolicLinkLevels:
                    throw UnionMountError.malformed(
                        "\(name)/\(prefix) is a symbolic link; nothing below an image layout is followed out of it",
                        input: place)
                case .notDirectory:
                    throw UnionMountError.malformed("\(name)/\(prefix) is not a directory", input: place)
                default:
                    throw UnionMountError.systemCall(
                        "open", error, message: "cannot open \(name)/\(prefix)", input: place)
                }
            }
            FileSystem.close(current)
            current = next
        }
        let status: FileStatus
        do {
            status = try FileSystem.status(of: current)
        } catch {
            FileSystem.close(current)
            throw UnionMountError.systemCall("fstat", error, message: "cannot stat \(name)/\(place)", input: place)
        }
        guard status.type == .regular else {
            FileSystem.close(current)
            throw UnionMountError.malformed("\(name)/\(place) is not a regular file", input: place)
        }
        return (current, status.size)
    }

    func read(_ fd: FileDescriptor, limit: Int, file: String) throws(UnionMountError) -> [UInt8] {
        do {
            return try FileSystem.readAll(fd, limit: limit + 1)
        } catch {
            throw UnionMountError.systemCall("read", error, message: "cannot read \(name)/\(file)", input: file)
        }
    }
}
