import SystemPackage
import UnionMount

/// One run of a ``LayerApplier``: the stream, the root descriptor, what has been written (for duplicates and
/// hard links) and the directories whose permissions and times are set at the end.
final class LayerApplication {
    /// What an archive name became on disk.
    enum Written: Equatable {
        /// A directory the archive names.
        case directory
        /// A directory made because an entry's parent was missing (mode 0755); a later entry may describe it.
        case implicitDirectory
        /// A whiteout device, from the archive entry of that name.
        case whiteout(archiveName: [UInt8])
        /// Any other non-directory.
        case file
    }

    /// A directory whose permissions and times wait for the end.
    struct PendingDirectory {
        var components: [[UInt8]]
        var permissions: UInt32
        var access: FileTime
        var modification: FileTime
    }

    let applier: LayerApplier
    let stream: TarStream
    let root: FileDescriptor
    /// Disk path (components joined) → what is there.
    var written: [[UInt8]: Written] = [:]
    var pendingDirectories: [PendingDirectory] = []
    var rootDescribed = false
    /// The parent directory last opened, kept for the next entry (tars list a directory's files together).
    var cachedParent: (path: [UInt8], fd: FileDescriptor)?
    /// The name of the entry being applied, for messages.
    var current: [UInt8]?
    var counts = Counts()
    let uid = ProcessFacts.effectiveUserID

    /// The counters of the summary.
    struct Counts {
        var entries = 0, regularFiles = 0, directories = 0, symbolicLinks = 0, hardLinks = 0, specialFiles = 0
        var whiteouts = 0, opaqueDirectories = 0, skippedEntries = 0, droppedXattrs = 0
    }

    static let confined: FileSystem.Resolution = [.inRoot, .noMagicLinks, .noCrossDevice, .noSymbolicLinks]

    init(applier: LayerApplier, source: TarSource, root: FileDescriptor) throws(UnionMountError) {
        self.applier = applier
        self.root = root
        let limits = applier.limits
        do {
            stream = try TarStream(
                source: source, maximumUncompressedBytes: limits.maximumUncompressedBytes,
                maximumCompressedBytes: applier.expectation.size ?? .max)
        } catch {
            throw UnionMountError(code: error.code, message: "\(applier.displayName): \(error.message)")
        }
    }

    deinit {
        if let cachedParent { FileSystem.close(cachedParent.fd) }
    }

    /// Reads every entry, applies it, sets the directories' permissions and times, checks the digests.
    func run() throws(UnionMountError) -> LayerArchiveSummary {
        while let entry = try streamStep({ () throws(TarStream.Failure) in try stream.next() }) {
            counts.entries += 1
            current = entry.path
            guard counts.entries <= applier.limits.maximumEntries else {
                throw malformed("the archive has more than the limit of \(applier.limits.maximumEntries) entries")
            }
            try apply(entry)
        }
        current = nil
        try finishDirectories()
        let (digest, diffID) = try streamStep { () throws(TarStream.Failure) in try stream.finish() }
        let summary = makeSummary(digest: digest, diffID: diffID)
        try verify(summary)
        return summary
    }

    private func makeSummary(digest: ImageDigest, diffID: ImageDigest) -> LayerArchiveSummary {
        var summary = LayerArchiveSummary(
            diffID: diffID, digest: digest, size: stream.compressedSize, uncompressedSize: stream.uncompressedSize,
            compression: stream.compression.rawValue)
        summary.entries = counts.entries
        summary.regularFiles = counts.regularFiles
        summary.directories = counts.directories
        summary.symbolicLinks = counts.symbolicLinks
        summary.hardLinks = counts.hardLinks
        summary.specialFiles = counts.specialFiles
        summary.whiteouts = counts.whiteouts
        summary.opaqueDirectories = counts.opaqueDirectories
        summary.skippedEntries = counts.skippedEntries
        summary.droppedXattrs = counts.droppedXattrs
        return summary
    }

    private func verify(_ summary: LayerArchiveSummary) throws(UnionMountError) {
        let expected = applier.expectation
        let name = applier.displayName
        if let size = expected.size, size != summary.size {
            throw UnionMountError(
                code: .malformedInput,
                message: "\(name): the blob has \(summary.size) bytes, the image says \(size)", input: name)
        }
        if let digest = expected.digest, digest != summary.digest {
            throw UnionMountError(
                code: .malformedInput, message: "\(name): the blob's digest is \(summary.digest), not \(digest)",
                input: name)
        }
        if let diffID = expected.diffID, diffID != summary.diffID {
            throw UnionMountError(
                code: .malformedInput,
                message: "\(name): the decompressed tar's digest (diff id) is \(summary.diffID), not \(diffID)",
                input: name)
        }
    }

    // MARK: Errors

    /// The entry as messages name it.
    var entryName: String { current.map { "entry \($0.readable)" } ?? "the end of the archive" }

    /// Hostile or broken content at the current entry.
    func malformed(_ message: String) -> UnionMountError {
        UnionMountError(
            code: .malformedInput, message: "\(applier.displayName): \(entryName): \(message)",
            input: current?.readable ?? applier.displayName)
    }

    /// A failed system call at the current entry.
    func failed(_ call: String, _ errno: Errno, _ what: String) -> UnionMountError {
        UnionMountError.systemCall(
            call, errno, message: "\(applier.displayName): \(entryName): cannot \(what)",
            input: current?.readable ?? applier.displayName)
    }

    /// Runs a step of the stream, naming the layer and the entry in its failure.
    func streamStep<R>(_ body: () throws(TarStream.Failure) -> R) throws(UnionMountError) -> R {
        do {
            return try body()
        } catch {
            let place = current.map { "at or after entry \($0.readable)" } ?? "before the first entry"
            if let errno = error.errno {
                throw UnionMountError.systemCall(
                    "read", errno, message: "\(applier.displayName): \(error.message) (\(place))",
                    input: current?.readable ?? applier.displayName)
            }
            throw UnionMountError(
                code: error.code, message: "\(applier.displayName): \(error.message) (\(place))",
                input: current?.readable ?? applier.displayName)
        }
    }
}
