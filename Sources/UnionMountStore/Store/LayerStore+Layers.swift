import SystemPackage
import UnionMount

extension LayerStore {
    /// Every layer, sorted by id (reads `layers/*/layer.conf`).
    public func layers() throws(UnionMountError) -> [StoreLayer] {
        var layers: [StoreLayer] = []
        for id in try identifiers(in: layersDirectory) {
            if let layer = try readLayer(id) { layers.append(layer) }
        }
        return layers
    }

    /// The layer `id`.
    ///
    /// - Throws: `UnionMountError.Code.notFound` when there is none; `UnionMountError.Code.malformedInput`
    ///   for a damaged `layer.conf`.
    public func layer(_ id: String) throws(UnionMountError) -> StoreLayer {
        try StoreIdentifier.validate(id, input: "layer id")
        guard let layer = try readLayer(id) else {
            throw UnionMountError(code: .notFound, message: "the store has no layer \(id)", input: id)
        }
        return layer
    }

    /// The chain of layers from `id` down to its base layer, `id` first: the lower layers of a union, top first.
    public func chain(_ id: String) throws(UnionMountError) -> [StoreLayer] {
        var chain: [StoreLayer] = []
        var next: String? = id
        while let current = next {
            let layer = try layer(current)
            chain.append(layer)
            guard chain.count <= OverlaySpec.maximumLayerCount else {
                throw UnionMountError.malformed(
                    "the chain of \(id) is longer than \(OverlaySpec.maximumLayerCount) layers (a parent loop?)",
                    input: id)
            }
            next = layer.parent
        }
        return chain
    }

    /// The `diff` directories of `id`'s chain, top first (empty for nil): what an archive applied on `id` is
    /// stacked on (``LayerApplier/lowerDirectories``).
    func layerDirectories(from id: String?) throws(UnionMountError) -> [FilePath] {
        guard let id else { return [] }
        return try chain(id).map { layerDirectory($0.id).appending("diff") }
    }

    /// Starts building a layer: returns a builder whose ``LayerBuilder/directory`` is to be filled and then
    /// committed.
    ///
    /// - Parameters:
    ///   - id: the new layer's id; nil for a random one.
    ///   - parent: the layer it stacks on; nil for a base layer.
    /// - Throws: `UnionMountError.Code.invalidArgument` for a bad id or a chain that would pass the kernel's 500
    ///   layers; `UnionMountError.Code.notFound` for a missing parent; `UnionMountError.Code.alreadyExists`.
    public func beginLayer(_ id: String? = nil, parent: String? = nil) throws(UnionMountError) -> LayerBuilder {
        let id = id ?? StoreIdentifier.random()
        try StoreIdentifier.validate(id, input: "layer id")
        if let parent { try StoreIdentifier.validate(parent, input: "parent") }
        return try locked { () throws(UnionMountError) -> LayerBuilder in
            try checkNewLayer(id, parent: parent, extraDepth: 1)
            let (staging, lock) = try makeStaging(id)
            try StoreFiles.makeDirectory(staging.appending("diff"), existing: false)
            return LayerBuilder(store: self, id: id, parent: parent, staging: staging, lock: lock)
        }
    }

    /// Creates a layer and fills it with `populate`, which is given the layer's (empty) directory; the layer
    /// exists only once `populate` returns and the layer is committed (see ``LayerBuilder``).
    ///
    /// - Throws: what ``beginLayer(_:parent:)`` and ``LayerBuilder/commit()`` throw, or what `populate` throws
    ///   (then nothing is left behind).
    @discardableResult
    public func createLayer(
        _ id: String? = nil, parent: String? = nil, populate: (FilePath) throws -> Void
    ) throws -> StoreLayer {
        let builder = try beginLayer(id, parent: parent)
        do {
            try populate(builder.directory)
        } catch {
            try? builder.abandon()
            throw error
        }
        return try builder.commit()
    }

    /// Creates a layer from a layer directory in `format` (an OCI/Docker layer unpacked as `.wh.` files is
    /// ``WhiteoutFormat/aufs``): copies it losslessly and converts its whiteouts to the store's format.
    @discardableResult
    public func importLayer(
        _ id: String? = nil, parent: String? = nil, from source: FilePath, format: WhiteoutFormat
    ) throws(UnionMountError) -> StoreLayer {
        let builder = try beginLayer(id, parent: parent)
        do {
            try StoreFiles.removeTree(builder.directory)
            try LayerTree.copy(from: source, to: builder.directory)
            StoreFaultInjection.point("import-layer.copied")
            if format != whiteoutFormat {
                try WhiteoutConversion.convert(builder.directory, from: format, to: whiteoutFormat)
            }
            StoreFaultInjection.point("import-layer.converted")
        } catch {
            try? builder.abandon()
            throw error
        }
        return try builder.commit()
    }

    /// Who uses the layer `id`: layers built on it, containers stacked on it, images whose chain holds it, and
    /// union mounts in the live mount table that use its directory as a branch or are mounted below it.
    public func users(ofLayer id: String) throws(UnionMountError) -> [String] {
        var users: [String] = []
        for layer in try layers() where layer.parent == id { users.append("layer \(layer.id)") }
        for container in try containers() where container.layer == id { users.append("container \(container.id)") }
        users += try imageUsers(ofLayer: id)
        users += try mountUsers(of: layerDirectory(id), branch: layerDirectory(id).appending("diff"))
        return users
    }

    /// Removes the layer `id` and its contents.
    ///
    /// - Throws: `UnionMountError.Code.inUse` naming the users when a layer is built on it, a container is
    ///   stacked on it, an image holds it, or the live mount table shows a mount using it (see ``users(ofLayer:)``);
    ///   `UnionMountError.Code.notFound`.
    ///
    /// The directory is renamed to `trash/` under the store lock (the commit point), then deleted; a crash
    /// during the deletion leaves the rest for the next open.
    public func removeLayer(_ id: String) throws(UnionMountError) {
        let trash = try locked { () throws(UnionMountError) -> TrashEntry in
            _ = try layer(id)
            let users = try users(ofLayer: id)
            guard users.isEmpty else {
                throw UnionMountError(
                    code: .inUse, message: "the layer \(id) is in use by \(users.joined(separator: ", "))", input: id)
            }
            return try moveToTrash(layerDirectory(id), id: id)
        }
        try trash.remove()
    }

    // MARK: Implementation

    /// The names in `directory` that are valid ids, sorted (anything else there is not the store's).
    func identifiers(in directory: FilePath) throws(UnionMountError) -> [String] {
        try StoreFiles.names(in: directory).compactMap { name in
            let id = String(decoding: name, as: UTF8.self)
            return (try? StoreIdentifier.validate(id, input: "id")) == nil ? nil : id
        }
    }

    func readLayer(_ id: String) throws(UnionMountError) -> StoreLayer? {
        let file = layerDirectory(id).appending("layer.conf")
        guard let record = try StoreRecord.read(file) else { return nil }
        guard try record.required("id", in: file) == id else {
            throw UnionMountError.malformed("the record names another layer", input: file.readable)
        }
        let parent = record["parent"]
        if let parent { try StoreIdentifier.validate(parent, key: "parent", recordedIn: file) }
        let owner = record["owner"]
        if let owner { try StoreIdentifier.validate(owner, key: "owner", recordedIn: file) }
        let depth = try record.count("depth", in: file)
        guard depth >= 1, depth <= OverlaySpec.maximumLayerCount else {
            throw UnionMountError.malformed("depth \(depth) is out of range", input: file.readable)
        }
        var diffID: ImageDigest?
        if let text = record["diff-id"] {
            do {
                diffID = try ImageDigest(parsing: text, input: "diff-id")
            } catch {
                throw UnionMountError.malformed("diff-id: \(error.message)", input: file.readable)
            }
        }
        return StoreLayer(
            id: id, parent: parent, depth: depth, owner: owner, directory: layerDirectory(id).appending("diff"),
            diffID: diffID)
    }

    /// Checks that `id` is free and `parent` exists, and that a chain on `parent` has room for `extraDepth` more.
    func checkNewLayer(_ id: String, parent: String?, extraDepth: Int) throws(UnionMountError) {
        if StoreFiles.exists(layerDirectory(id)) {
            throw UnionMountError(code: .alreadyExists, message: "the store already has a layer \(id)", input: id)
        }
        let depth = try parent.map { (parent) throws(UnionMountError) in try layer(parent).depth } ?? 0
        guard depth + extraDepth <= OverlaySpec.maximumLayerCount else {
            throw UnionMountError.invalidArgument(
                "a chain on \(parent ?? "") would hold \(depth + extraDepth) layers; overlay stacks at most "
                    + "\(OverlaySpec.maximumLayerCount)",
                input: "parent")
        }
    }

    /// Creates `staging/<token>/` and locks it (flock(2) on the directory); call under the store lock.
    func makeStaging(_ id: String) throws(UnionMountError) -> (FilePath, FileDescriptor) {
        let staging = stagingDirectory.appending(Self.token(id))
        try StoreFiles.makeDirectory(staging, mode: 0o700, existing: false)
        let fd = try Self.lockDirectory(staging, input: staging.readable)
        StoreFaultInjection.point("staging.created")
        return (staging, fd)
    }

    /// Turns `staging` (holding `diff/`) into the layer `id`; call under the store lock.
    func commitStaged(
        id: String, parent: String?, owner: String?, diffID: ImageDigest? = nil, staging: FilePath,
        syncing fd: FileDescriptor
    ) throws(UnionMountError) -> StoreLayer {
        try checkNewLayer(id, parent: parent, extraDepth: 1)
        let depth = try parent.map { (parent) throws(UnionMountError) in try layer(parent).depth } ?? 0
        let created = StoreLayer(
            id: id, parent: parent, depth: depth + 1, owner: owner, directory: layerDirectory(id).appending("diff"),
            diffID: diffID)
        try created.record.write(to: staging.appending("layer.conf"))
        StoreFaultInjection.point("layer.record-written")
        do {
            try FileSystem.syncFilesystem(fd)
        } catch {
            throw UnionMountError.systemCall("syncfs", error, message: "cannot sync the layer \(id)", input: id)
        }
        do {
            try StoreFiles.rename(staging, to: layerDirectory(id), replacing: false)
        } catch  where error.errno == .fileExists {
            throw UnionMountError(code: .alreadyExists, message: "the store already has a layer \(id)", input: id)
        }
        try StoreFiles.syncDirectory(layersDirectory)
        StoreFaultInjection.point("layer.committed")
        return created
    }

    /// Renames `directory` into `trash/` holding an flock(2) on it, so that a repair by another process leaves
    /// the deletion to this one while it lives; call under the store lock.
    func moveToTrash(_ directory: FilePath, id: String) throws(UnionMountError) -> TrashEntry {
        let trash = trashDirectory.appending(Self.token(id))
        let fd = try Self.lockDirectory(directory, noFollow: true, input: id)
        do {
            try StoreFiles.rename(directory, to: trash, replacing: false)
            try StoreFiles.syncDirectory(directory.removingLastComponent())
        } catch {
            FileSystem.close(fd)
            throw error
        }
        StoreFaultInjection.point("trash.moved")
        return TrashEntry(path: trash, lock: fd)
    }

    /// Opens the directory `path` and takes an flock(2) on it without waiting; the failure (the open's or a
    /// lock held elsewhere, `EWOULDBLOCK`) is reported as flock's, as the store always has.
    static func lockDirectory(_ path: FilePath, noFollow: Bool = false, input: String) throws(UnionMountError)
        -> FileDescriptor
    {
        let fd: FileDescriptor
        do {
            fd = try FileSystem.open(path, .readOnly, options: noFollow ? [.directory, .noFollow] : [.directory])
        } catch {
            throw UnionMountError.systemCall("flock", error, message: "cannot lock \(path.readable)", input: input)
        }
        let error: Errno
        do {
            if try FileSystem.lock(fd, wait: false) { return fd }
            error = .wouldBlock
        } catch let failure {
            error = failure
        }
        FileSystem.close(fd)
        throw UnionMountError.systemCall("flock", error, message: "cannot lock \(path.readable)", input: input)
    }

    /// The live mounts that use `branch` as a union branch, or are mounted at or below `directory`.
    func mountUsers(of directory: FilePath, branch: FilePath) throws(UnionMountError) -> [String] {
        var users: [String] = []
        for report in try MountTable.reports(usingBranch: branch) {
            users.append("the \(report.fsType) mount at \(report.mountPoint.readable)")
        }
        for entry in try MountTable.entries(under: directory) {
            users.append("the \(entry.filesystemType) mount at \(entry.mountPoint.readable)")
        }
        return users
    }
}

/// A directory renamed into `trash/`, locked until ``remove()`` has deleted it.
struct TrashEntry {
    let path: FilePath
    let lock: FileDescriptor

    /// Deletes the directory (see ``StoreFiles/removeTree(_:)``), then unlocks it.
    func remove() throws(UnionMountError) {
        defer { FileSystem.close(lock) }
        try StoreFiles.removeTree(path)
    }
}
