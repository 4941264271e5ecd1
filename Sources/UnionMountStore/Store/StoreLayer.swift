import SystemPackage
import UnionMount

/// A layer of a ``LayerStore``: read-only contents stacked on an optional parent.
public struct StoreLayer: Sendable, Hashable, Codable {
    /// The layer's id.
    public var id: String
    /// The id of the layer below it; nil for a base layer.
    public var parent: String?
    /// How many layers the chain ending here holds (1 for a base layer).
    public var depth: Int
    /// The container whose init layer this is; nil for an image layer.
    public var owner: String?
    /// The diff id (SHA-256 of the uncompressed tar) of a layer made by an image import (the layer's id is then
    /// its chain id's hex); nil for a layer made any other way (``LayerStore/createLayer(_:parent:populate:)``,
    /// ``LayerStore/importLayer(_:parent:from:format:)``, a commit, an init layer). Only layers that have one are
    /// reused by a later import and removed by ``LayerStore/prune()``.
    public var diffID: ImageDigest?
    /// The directory holding the layer's contents (`layers/<id>/diff`).
    public var directory: FilePath

    /// Creates a description of a layer.
    public init(
        id: String, parent: String?, depth: Int, owner: String?, directory: FilePath, diffID: ImageDigest? = nil
    ) {
        self.id = id
        self.parent = parent
        self.depth = depth
        self.owner = owner
        self.directory = directory
        self.diffID = diffID
    }

    private enum CodingKeys: String, CodingKey { case id, parent, depth, owner, directory, diffID }

    /// Decodes the JSON form of ``encode(to:)``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        parent = try container.decodeIfPresent(String.self, forKey: .parent)
        depth = try container.decode(Int.self, forKey: .depth)
        owner = try container.decodeIfPresent(String.self, forKey: .owner)
        directory = try container.decodePath(forKey: .directory)
        diffID = try container.decodeIfPresent(ImageDigest.self, forKey: .diffID)
    }

    /// Encodes `id`, `parent`, `depth`, `owner`, `directory` (a path that is not UTF-8 as `{"base64": …}`) and
    /// `diffID`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(parent, forKey: .parent)
        try container.encode(depth, forKey: .depth)
        try container.encodeIfPresent(owner, forKey: .owner)
        try container.encode(path: directory, forKey: .directory)
        try container.encodeIfPresent(diffID, forKey: .diffID)
    }

    /// The record written as `layer.conf`.
    var record: StoreRecord {
        var record = StoreRecord([("id", id), ("depth", String(depth))])
        record["parent"] = parent
        record["owner"] = owner
        record["diff-id"] = diffID?.description
        return record
    }
}

/// A layer being built in the store's staging area: fill ``directory``, then ``commit()``.
///
/// Until it is committed the layer does not exist for anyone else. The staging directory is flock(2)-locked
/// for as long as the builder lives, so a repair by another process leaves it alone; if this process dies,
/// the lock goes with it and the next open of the store removes the half-built layer.
public final class LayerBuilder {
    /// The store the layer is built in.
    public let store: LayerStore
    /// The id the layer will have.
    public let id: String
    /// The parent the layer will have.
    public let parent: String?
    /// Where to put the layer's contents (a directory, empty at first).
    public let directory: FilePath
    let staging: FilePath
    /// The diff id to record (an image import's layer).
    var diffID: ImageDigest?
    private var lock: FileDescriptor?
    private var finished = false

    init(store: LayerStore, id: String, parent: String?, staging: FilePath, lock: FileDescriptor) {
        self.store = store
        self.id = id
        self.parent = parent
        self.staging = staging
        self.directory = staging.appending("diff")
        self.lock = lock
    }

    /// Makes the layer part of the store: writes its `layer.conf`, syncs the filesystem (syncfs(2)) and renames
    /// the staging directory to `layers/<id>` (renameat2(2) `RENAME_NOREPLACE`), all under the store lock.
    ///
    /// - Throws: `UnionMountError.Code.alreadyExists` when a layer of that id appeared meanwhile;
    ///   `UnionMountError.Code.notFound` when the parent was removed meanwhile.
    @discardableResult
    public func commit() throws(UnionMountError) -> StoreLayer {
        guard !finished else {
            throw UnionMountError.invalidState("the layer \(id) was already committed or abandoned", input: id)
        }
        let layer = try store.locked { () throws(UnionMountError) -> StoreLayer in
            guard let lock else {
                throw UnionMountError.invalidState("the layer \(id) has no staging lock", input: id)
            }
            let layer = try store.commitStaged(
                id: id, parent: parent, owner: nil, diffID: diffID, staging: staging, syncing: lock)
            return layer
        }
        finish()
        return layer
    }

    /// Removes the half-built layer.
    public func abandon() throws(UnionMountError) {
        guard !finished else { return }
        finish()
        try StoreFiles.removeTree(staging)
    }

    private func finish() {
        finished = true
        if let lock { FileSystem.close(lock) }
        lock = nil
    }

    deinit {
        if !finished {
            if let lock { FileSystem.close(lock) }
            try? StoreFiles.removeTree(staging)
        }
    }
}
