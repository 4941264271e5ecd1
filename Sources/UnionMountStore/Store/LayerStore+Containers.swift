import SystemPackage
import UnionMount

extension LayerStore {
    /// Every container, sorted by id (reads `containers/*/container.conf` and `mounts`).
    public func containers() throws(UnionMountError) -> [StoreContainer] {
        var containers: [StoreContainer] = []
        for id in try identifiers(in: containersDirectory) {
            if let container = try readContainer(id) { containers.append(container) }
        }
        return containers
    }

    /// The container `id`.
    ///
    /// - Throws: `UnionMountError.Code.notFound` when there is none.
    public func container(_ id: String) throws(UnionMountError) -> StoreContainer {
        try StoreIdentifier.validate(id, input: "container id")
        guard let container = try readContainer(id) else {
            throw UnionMountError(code: .notFound, message: "the store has no container \(id)", input: id)
        }
        return container
    }

    /// Creates a container on `image` (nil: an empty image), with an init layer `<id>-init`
    /// filled by `initialize` when given (Docker's `-init` layer: files the runtime provides, such as
    /// `/etc/hostname`).
    ///
    /// `image` is a layer id, or the name (`name[:tag]`) of an image recorded in the store (``images()``), whose
    /// top layer the container then stacks on; a string that is both a layer and an image with another top
    /// layer is refused as ambiguous.
    ///
    /// The writable layer, work directory, mount point and init layer are built in the staging area and appear
    /// together under the store lock; a crash leaves either all of them or none (the next open removes the rest).
    ///
    /// With `idMapping`, every mount of the container idmaps its layers (`IDMapping`, see
    /// ``mount(container:)``): many containers with different mappings share the same layers, uncopied. The
    /// mapping is recorded in `container.conf` (`uidmap`, `gidmap`), and the writable layer and work directory are
    /// owned by the container's root as mapped (the host ids of inside id 0; left to the store's owner when the
    /// mapping has no id 0), so files the container creates land there with its host ids. Only the `overlay`
    /// backend idmaps (the kernel does it; rootless and FUSE stores cannot).
    ///
    /// - Throws: `UnionMountError.Code.notFound` for a missing image or layer, `UnionMountError.Code.alreadyExists`,
    ///   `UnionMountError.Code.invalidArgument` for a bad id or a chain with no room for the init layer;
    ///   `UnionMountError.Code.invalidSpec` for a bad mapping, `UnionMountError.Code.unsupported` for a mapping on
    ///   another backend or one given as a user namespace file (it does not outlive its process); or what
    ///   `initialize` throws.
    @discardableResult
    public func createContainer(
        _ id: String? = nil, image: String?, idMapping: IDMapping? = nil,
        initialize: ((FilePath) throws -> Void)? = nil
    ) throws -> StoreContainer {
        let id = id ?? StoreIdentifier.random()
        try StoreIdentifier.validate(id, input: "container id")
        let root = try checkedMapping(idMapping)
        let image = try containerBase(image)
        let initLayer = initialize == nil ? nil : id + "-init"
        if let initLayer { try StoreIdentifier.validate(initLayer, input: "container id") }
        let (staging, lock) = try locked { () throws(UnionMountError) -> (FilePath, FileDescriptor) in
            try checkNewContainer(id, image: image, initLayer: initLayer)
            let (staging, lock) = try makeStaging(id)
            for directory in ["diff", "work", "merged"] {
                try StoreFiles.makeDirectory(staging.appending(directory), existing: false)
            }
            if let root {
                for directory in ["diff", "work"] {
                    try LayerIO.setOwner(staging.appending(directory), uid: root.uid, gid: root.gid)
                }
            }
            if initLayer != nil {
                try StoreFiles.makeDirectory(staging.appending("init"), mode: 0o700, existing: false)
                try StoreFiles.makeDirectory(staging.appending("init/diff"), existing: false)
            }
            return (staging, lock)
        }
        defer { FileSystem.close(lock) }
        do {
            try initialize?(staging.appending("init/diff"))
            StoreFaultInjection.point("container.initialized")
            return try locked { () throws(UnionMountError) -> StoreContainer in
                try checkNewContainer(id, image: image, initLayer: initLayer)
                if let initLayer {
                    _ = try commitStaged(
                        id: initLayer, parent: image, owner: id, staging: staging.appending("init"), syncing: lock)
                }
                var record = StoreRecord([("id", id)])
                record["image"] = image
                record["init"] = initLayer
                // The chain is fixed for the container's life (a layer under a container cannot be removed),
                // so it is recorded once and a mount reads one record, not one per layer.
                let chain = try image.map { (image) throws(UnionMountError) in try self.chain(image).map(\.id) } ?? []
                record["layers"] = ((initLayer.map { [$0] } ?? []) + chain).joined(separator: " ")
                if case .ranges(let uids, let gids) = idMapping {
                    record["uidmap"] = IDRange.text(uids, separator: " ")
                    record["gidmap"] = IDRange.text(gids, separator: " ")
                }
                try record.write(to: staging.appending("container.conf"))
                try StoreMountState(count: 0).write(to: staging.appending("mounts"))
                StoreFaultInjection.point("container.record-written")
                try StoreFiles.rename(staging, to: containerDirectory(id), replacing: false)
                try StoreFiles.syncDirectory(containersDirectory)
                StoreFaultInjection.point("container.committed")
                return try container(id)
            }
        } catch {
            try? StoreFiles.removeTree(staging)
            throw error
        }
    }

    /// Removes the container `id`: its writable layer, work directory, mount point and init layer.
    ///
    /// - Throws: `UnionMountError.Code.inUse` while it is mounted (its count is not 0, or the live mount table
    ///   shows a mount at or below its directory); `UnionMountError.Code.notFound`.
    public func removeContainer(_ id: String) throws(UnionMountError) {
        let trash = try locked { () throws(UnionMountError) -> [TrashEntry] in
            let container = try container(id)
            let directory = containerDirectory(id)
            if container.mountCount > 0 {
                throw UnionMountError(
                    code: .inUse, message: "the container \(id) is mounted \(container.mountCount) time(s)", input: id)
            }
            let mounts = try mountUsers(of: directory, branch: container.upperDirectory)
            guard mounts.isEmpty else {
                throw UnionMountError(
                    code: .inUse, message: "the container \(id) is in use by \(mounts.joined(separator: ", "))",
                    input: id)
            }
            var trash = [try moveToTrash(directory, id: id)]
            if let initLayer = container.initLayer, (try? layer(initLayer)) != nil {
                let users = try users(ofLayer: initLayer)
                if users.isEmpty { trash.append(try moveToTrash(layerDirectory(initLayer), id: initLayer)) }
            }
            return trash
        }
        for entry in trash { try entry.remove() }
    }

    // MARK: Implementation

    func mountsFile(_ id: String) -> FilePath { containerPaths(id).mounts }

    /// The paths of the container `id`'s files (``ContainerRecordCache``); `id` must be a checked id.
    func containerPaths(_ id: String) -> ContainerRecordCache.Paths {
        containerCache.paths(id) {
            ContainerRecordCache.Paths(
                record: storePath("containers", id, "container.conf"), mounts: storePath("containers", id, "mounts"),
                upper: storePath("containers", id, "diff"), work: storePath("containers", id, "work"),
                merged: storePath("containers", id, "merged"))
        }
    }

    func readContainer(_ id: String) throws(UnionMountError) -> StoreContainer? {
        try readContainerRecords(id)?.container
    }

    /// The container `id` and its mount record as read, or the error that record gave (a damaged one counts as
    /// 0 in ``StoreContainer/mountCount``; ``repair()`` reports it and rebuilds it from the mount table). Both
    /// files are read once.
    func readContainerRecords(
        _ id: String
    ) throws(UnionMountError) -> (container: StoreContainer, mountState: Result<StoreMountState, UnionMountError>)? {
        guard let entry = try readContainerRecord(id) else { return nil }
        let mountState: Result<StoreMountState, UnionMountError>
        do {
            mountState = .success(try StoreMountState.read(entry.paths.mounts))
        } catch {
            mountState = .failure(error)
        }
        var container = entry.container
        container.mountCount = (try? mountState.get())?.count ?? 0
        return (container, mountState)
    }

    /// The container `id`'s `container.conf`, parsed and checked (or, for the same bytes as last time, as parsed
    /// then: ``ContainerRecordCache``), with its union's lower directories; nil when it has none.
    func readContainerRecord(_ id: String) throws(UnionMountError) -> ContainerRecordCache.Entry? {
        let paths = containerPaths(id)
        let file = paths.record
        guard let bytes = try StoreFiles.read(file) else { return nil }
        if let entry = containerCache.entry(id, bytes: bytes) { return entry }
        let record = try StoreRecord(parsing: bytes, file: file)
        guard try record.required("id", in: file) == id else {
            throw UnionMountError.malformed("the record names another container", input: file.readable)
        }
        let image = record["image"]
        if let image { try StoreIdentifier.validate(image, key: "image", recordedIn: file) }
        let initLayer = record["init"]
        if let initLayer { try StoreIdentifier.validate(initLayer, key: "init", recordedIn: file) }
        let layers = (record["layers"] ?? "").split(separator: " ").map(String.init)
        for layer in layers { try StoreIdentifier.validate(layer, key: "layers", recordedIn: file) }
        guard layers.count <= OverlaySpec.maximumLayerCount, layers.first == (initLayer ?? image) else {
            throw UnionMountError.malformed(
                "the layer chain does not match the image and init layer", input: file.readable)
        }
        let container = StoreContainer(
            id: id, image: image, initLayer: initLayer, layers: layers, mountCount: 0, upperDirectory: paths.upper,
            workDirectory: paths.work, mergedDirectory: paths.merged, idMapping: try recordedMapping(record, file))
        let entry = ContainerRecordCache.Entry(
            bytes: bytes, container: container, lowers: lowerDirectories(container), paths: paths)
        containerCache.keep(entry, for: id)
        return entry
    }

    /// The mapping recorded in `container.conf` (`uidmap`, `gidmap`: ranges separated by spaces), checked.
    private func recordedMapping(_ record: StoreRecord, _ file: FilePath) throws(UnionMountError) -> IDMapping? {
        guard let uidText = record["uidmap"] else { return nil }
        func ranges(_ text: String) throws(UnionMountError) -> [IDRange] {
            guard let ranges = IDRange.ranges(text.split(separator: " ")) else {
                throw UnionMountError.malformed(
                    "the id map '\(text)' is not inside:outside:count ranges", input: file.readable)
            }
            return ranges
        }
        let mapping = IDMapping.ranges(uids: try ranges(uidText), gids: try ranges(record["gidmap"] ?? ""))
        do {
            try mapping.validate()
        } catch {
            throw UnionMountError.malformed("the recorded id mapping: \(error.message)", input: file.readable)
        }
        return mapping
    }

    /// Checks a new container's mapping; returns the host uid and gid of its root (inside id 0) to own its
    /// writable layer by, nil without a mapping or without an id 0 in it.
    private func checkedMapping(_ mapping: IDMapping?) throws(UnionMountError) -> (uid: UInt32, gid: UInt32)? {
        guard let mapping else { return nil }
        guard case .ranges(let uids, let gids) = mapping else {
            throw UnionMountError(
                code: .unsupported,
                message:
                    "a store container's id mapping must be ranges: a user namespace file does not outlive its process",
                input: "idMapping")
        }
        guard backend == .overlay else {
            throw UnionMountError(
                code: .unsupported,
                message:
                    "idmapped layers need the overlay backend (the kernel's idmapped mounts); this store uses \(backend.rawValue)",
                input: "idMapping")
        }
        try mapping.validate()
        func root(_ ranges: [IDRange]) -> UInt32? { ranges.first { $0.inside == 0 }?.outside }
        guard let uid = root(uids), let gid = root(gids) else { return nil }
        return (uid, gid)
    }

    private func checkNewContainer(_ id: String, image: String?, initLayer: String?) throws(UnionMountError) {
        if StoreFiles.exists(containerDirectory(id)) {
            throw UnionMountError(code: .alreadyExists, message: "the store already has a container \(id)", input: id)
        }
        if let image { _ = try layer(image) }
        if let initLayer { try checkNewLayer(initLayer, parent: image, extraDepth: 1) }
    }
}
