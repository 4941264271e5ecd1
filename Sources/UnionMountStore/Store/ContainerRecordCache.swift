import SystemPackage
import UnionMount

/// The paths of each container's files, and its `container.conf` as last parsed (keyed by the file's exact
/// bytes), so that a mount or unmount neither builds the same paths nor parses the same record again.
///
/// Speed: building a `FilePath` costs a microsecond or more in a perf profile of the store bench (it normalizes
/// what it is given), parsing a record and checking its ids more, and a container on 500 layers has 500 layer
/// paths; together they were most of the store's work around a 500-layer mount (Benchmarks/README.md). The paths depend only on the store's root and
/// the container's id. The record is still read on every operation, under the store lock, and compared byte for
/// byte, so a record replaced by another process (or by hand) is never answered from here: no time stamp, inode
/// number or size stands in for the contents.
final class ContainerRecordCache: @unchecked Sendable {
    /// Where a container's files are.
    struct Paths {
        let record: FilePath
        let mounts: FilePath
        let upper: FilePath
        let work: FilePath
        let merged: FilePath
    }

    /// A parsed record.
    struct Entry {
        /// The record's bytes.
        let bytes: [UInt8]
        /// The container it describes, with a mount count of 0 (the count is in another file).
        let container: StoreContainer
        /// The lower directories of its union, top first (``LayerStore/lowerDirectories(_:)``).
        let lowers: [FilePath]
        /// Its files.
        let paths: Paths
    }

    /// More containers than a host mounts at once; past it the cache starts over.
    static let capacity = 256

    private let mutex = ThreadMutex()
    private var paths: [String: Paths] = [:]
    private var entries: [String: Entry] = [:]

    /// The paths of container `id`, made by `make` the first time.
    func paths(_ id: String, _ make: () -> Paths) -> Paths {
        if let known = mutex.withLock({ paths[id] }) { return known }
        let made = make()
        mutex.withLock {
            if paths.count >= Self.capacity { paths.removeAll(keepingCapacity: true) }
            paths[id] = made
        }
        return made
    }

    /// The entry of container `id` when it was parsed from exactly `bytes`.
    func entry(_ id: String, bytes: [UInt8]) -> Entry? {
        mutex.withLock { () -> Entry? in
            guard let entry = entries[id], entry.bytes == bytes else { return nil }
            return entry
        }
    }

    /// Keeps `entry` for container `id`.
    func keep(_ entry: Entry, for id: String) {
        mutex.withLock { () -> Void in
            if entries.count >= Self.capacity && entries[id] == nil { entries.removeAll(keepingCapacity: true) }
            entries[id] = entry
        }
    }
}
