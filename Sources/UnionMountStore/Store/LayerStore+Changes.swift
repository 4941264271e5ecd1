import SystemPackage
import UnionMount

extension LayerStore {
    /// What the container changed: its writable layer compared with the chain below it
    /// (see ``LayerChanges/list(upper:lowers:format:)``), sorted by path.
    public func changes(container id: String) throws(UnionMountError) -> [LayerChange] {
        let container = try container(id)
        return try LayerChanges.list(
            upper: container.upperDirectory, lowers: lowerDirectories(container), format: whiteoutFormat)
    }

    /// Writes the container's changes as a layer directory at `destination` (which must not exist) in `format`
    /// (``WhiteoutFormat/aufs`` gives the OCI/Docker `.wh.` form).
    public func exportChanges(
        container id: String, to destination: FilePath, format: WhiteoutFormat
    ) throws(UnionMountError) {
        let container = try container(id)
        try LayerChanges.export(
            upper: container.upperDirectory, lowers: lowerDirectories(container), format: whiteoutFormat,
            to: destination, as: format)
    }

    /// Makes a new layer of the container's changes, on top of the container's image (`docker commit`).
    ///
    /// - Parameters:
    ///   - containerID: the container whose changes become the layer.
    ///   - id: the new layer's id; nil for a random one.
    @discardableResult
    public func commit(container containerID: String, as id: String? = nil) throws(UnionMountError) -> StoreLayer {
        let container = try container(containerID)
        let builder = try beginLayer(id, parent: container.image)
        do {
            try StoreFiles.removeTree(builder.directory)
            try LayerChanges.export(
                upper: container.upperDirectory, lowers: lowerDirectories(container), format: whiteoutFormat,
                to: builder.directory, as: whiteoutFormat)
        } catch {
            try? builder.abandon()
            throw error
        }
        return try builder.commit()
    }

    /// The directories below the container's writable layer, top first (from its recorded chain).
    func lowerDirectories(_ container: StoreContainer) -> [FilePath] {
        container.layers.isEmpty ? [emptyDirectory] : container.layers.map { storePath("layers", $0, "diff") }
    }
}
