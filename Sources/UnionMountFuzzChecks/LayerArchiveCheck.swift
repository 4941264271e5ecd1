import SystemPackage
import UnionMount
import UnionMountStore

/// A scratch place for layer application: `<dir>/root` (where the archive goes), `<dir>/outside/canary` (which
/// must never change) and `<dir>/input` (the archive), made once per process.
final class LayerArchiveScratch: @unchecked Sendable {
    let directory: FilePath
    var root: FilePath { directory.appending("root") }
    var outside: FilePath { directory.appending("outside") }
    var input: FilePath { directory.appending("input") }
    static let canary: [UInt8] = Array("canary\n".utf8)

    static let shared = LayerArchiveScratch()

    private init() {
        directory = FilePath("/tmp/unionmount-fuzz-layer-archive-\(ProcessFacts.processID)")
        try? StoreFiles.removeTree(directory)
        for path in [directory, outside, root] {
            _ = try? FileSystem.makeDirectory(path, permissions: 0o755)
        }
        if let fd = try? FileDescriptor.open(
            outside.appending("canary"), .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
        {
            _ = try? fd.writeAll(Self.canary)
            try? fd.close()
        }
    }
}

extension FuzzChecks {
    /// The limits the fuzz check applies under (small, so that an input runs in milliseconds).
    static let fuzzLimits = LayerArchiveLimits(
        maximumEntries: 2000, maximumUncompressedBytes: 32 << 20, maximumEntrySize: 16 << 20, maximumPathLength: 4096)

    /// A layer archive (tar, gzip or zstd) applied to an empty directory in the overlay whiteout form: the
    /// application returns or throws a `UnionMountError` (typed throws makes that the only way out but a trap),
    /// nothing appears or changes outside the directory (a canary beside it keeps its bytes, and the scratch
    /// directory holds nothing new), and a success reports the input's size as the blob's size.
    public static func layerArchive(_ bytes: [UInt8]) throws(FuzzFailure) {
        let scratch = LayerArchiveScratch.shared
        do {
            let fd = try FileDescriptor.open(
                scratch.input, .readWrite, options: [.create, .truncate], permissions: .ownerReadWrite)
            defer { try? fd.close() }
            _ = try fd.writeAll(bytes)
            _ = try fd.seek(offset: 0, from: .start)
            let root = try FileDescriptor.open(scratch.root, .readOnly, options: [.directory])
            defer { try? root.close() }
            let applier = LayerApplier(
                whiteoutFormat: .overlayTrusted, limits: fuzzLimits, rootless: ProcessFacts.effectiveUserID != 0,
                layerName: "fuzz input")
            do {
                let summary = try applier.apply(from: fd, into: root)
                guard summary.size == Int64(bytes.count) else {
                    throw FuzzFailure(
                        message: "applied, but the blob size is \(summary.size), not \(bytes.count)", input: bytes)
                }
            } catch let error as UnionMountError {
                _ = error.description
            }
        } catch let failure as FuzzFailure {
            throw failure
        } catch {
            throw FuzzFailure(message: "the scratch directory cannot be used: \(error)", input: bytes)
        }
        try checkOutside(scratch, bytes)
        do {
            try StoreFiles.removeTree(scratch.root)
            try FileSystem.makeDirectory(scratch.root, permissions: 0o755)
        } catch {
            throw FuzzFailure(message: "cannot clear the layer directory: \(error)", input: bytes)
        }
    }

    /// Removes the scratch directory of ``layerArchive(_:)`` (at the end of a process that used it; the check
    /// cannot run again in that process).
    public static func removeLayerArchiveScratch() {
        try? StoreFiles.removeTree(LayerArchiveScratch.shared.directory)
    }

    private static func checkOutside(_ scratch: LayerArchiveScratch, _ bytes: [UInt8]) throws(FuzzFailure) {
        let names = (try? FileSystem.names(in: scratch.directory).map(\.readable).sorted()) ?? []
        guard names == ["input", "outside", "root"] else {
            throw FuzzFailure(message: "the scratch directory now holds \(names)", input: bytes)
        }
        let outside = (try? FileSystem.names(in: scratch.outside).map(\.readable)) ?? []
        let canary = try? FileSystem.readAll(scratch.outside.appending("canary"))
        guard outside == ["canary"], canary == LayerArchiveScratch.canary else {
            throw FuzzFailure(message: "something was written outside the layer: \(outside)", input: bytes)
        }
    }
}
