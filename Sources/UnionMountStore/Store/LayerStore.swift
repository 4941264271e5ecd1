import SystemPackage
import UnionMount

/// A store of image layers and the containers stacked on them, shared by every process that opens it.
///
///     let store = try LayerStore.create(at: "/var/lib/example")
///     try store.importLayer("base", from: "/images/base", format: .aufs)      // an OCI-style layer directory
///     try store.createLayer("app", parent: "base") { diff in try populate(diff) }
///     try store.createContainer("web", image: "app")
///     let rootfs = try store.mount(container: "web")                         // the merged directory
///     try store.unmount(container: "web")
///
/// Layout under the root, in the spirit of Docker's aufs driver (`diff/`, `layers/`, `mnt/`):
///
///     store.conf                     format, backend, whiteout format (written last at creation)
///     lock                           flock(2) lock every operation takes
///     layers/<id>/layer.conf         parent id; the layer exists only once this directory is renamed in
///     layers/<id>/diff/              the layer's contents (read-only once created)
///     containers/<id>/container.conf its image, its init layer and its whole chain of layers
///     containers/<id>/{diff,work,merged}/   writable layer, overlay work dir, mount point
///     images/<sha256 of name>.conf   an image: its name, manifest and config digests, its layers (chain ids)
///     images/blobs/<hex>             the configs and manifests of the images, as imported
///     containers/<id>/mounts         how many times it is mounted (a reference count), and a mount or
///                                    unmount in progress, finished by the next open after a crash
///     staging/<token>/               a layer or container being built, owned by whoever holds its flock
///     trash/<token>/                 a layer or container being deleted
///     empty/                         the lower layer of a container with no image
///
/// Every change is made under the store's flock(2) lock and committed by one rename(2), so a process killed at
/// any point leaves either the old state or the new one plus debris that the next open removes (see
/// ``repair()``). Layer data is removed only after the live mount table shows nothing mounted on or from it.
public struct LayerStore: Sendable {
    /// The store's root directory.
    public let root: FilePath
    /// The root's bytes, for ``storePath(_:_:_:)``.
    let rootBytes: [UInt8]
    /// How containers are mounted.
    public let backend: LayerStoreBackend
    /// The whiteout format of every layer in the store.
    public let whiteoutFormat: WhiteoutFormat
    /// What the last open found and repaired.
    public internal(set) var repairReport: RepairReport
    let mounter: Mounter
    /// The `lock` file, open for as long as this value (and its copies) lives.
    let lockFile: StoreLockFile
    /// Containers' records as last read, to skip parsing them again (see ``ContainerRecordCache``).
    let containerCache = ContainerRecordCache()

    /// The version of the on-disk layout this code writes and reads.
    public static let formatVersion = 1

    // MARK: Opening

    /// Creates a store at `root` (the directory is created when missing), or opens it when it already exists.
    ///
    /// - Parameters:
    ///   - root: an absolute path.
    ///   - backend: the backend; nil probes the ladder (``LayerStoreBackend/probe(_:)``). An existing store keeps
    ///     the backend it was created with; asking for another one throws.
    ///   - features: the kernel's features (probed once per process by default).
    /// - Throws: `UnionMountError.Code.unsupported` when no backend (or not the one asked for) works here;
    ///   `UnionMountError.Code.invalidArgument` for a relative root; `UnionMountError.Code.invalidState` for a
    ///   backend mismatch, or a root that already holds something other than a store.
    public static func create(
        at root: FilePath, backend: LayerStoreBackend? = nil, features: KernelFeatures = .current
    ) throws(UnionMountError) -> LayerStore {
        guard root.isAbsolute else {
            throw UnionMountError.invalidArgument("the store root must be an absolute path", input: root.readable)
        }
        if StoreFiles.exists(root.appending(configurationName)) {
            let store = try LayerStore(opening: root, features: features)
            if let backend, backend != store.backend {
                throw UnionMountError.invalidState(
                    "the store at \(root.readable) was created for \(store.backend.rawValue), not \(backend.rawValue)",
                    input: "backend")
            }
            return store
        }
        guard let chosen = backend ?? LayerStoreBackend.probe(features) else {
            throw UnionMountError(
                code: .unsupported,
                message: "no union filesystem works here: no kernel overlay, no fuse-overlayfs, no aufs",
                input: root.readable)
        }
        if let reason = chosen.unavailability(on: features) {
            throw UnionMountError(
                code: .unsupported, message: "the \(chosen.rawValue) backend cannot be used here: \(reason)",
                input: "backend")
        }
        try makeParents(root)
        try StoreFiles.makeDirectory(root, mode: 0o700)
        // An existing directory becomes a store only when empty, or holding what an interrupted creation left.
        let layout: Set<[UInt8]> = Set(
            ["layers", "containers", "images", "staging", "trash", "empty", lockName, configurationName + ".tmp"].map {
                Array($0.utf8)
            })
        if let foreign = try StoreFiles.names(in: root).first(where: { !layout.contains($0) }) {
            throw UnionMountError.invalidState(
                "\(root.readable) is not empty (it holds \(foreign.readable)) and is not a layer store",
                input: root.readable)
        }
        for directory in ["layers", "containers", "images", "staging", "trash", "empty"] {
            try StoreFiles.makeDirectory(root.appending(directory), mode: directory == "empty" ? 0o755 : 0o700)
        }
        let configuration = StoreRecord([
            ("format", String(formatVersion)),
            ("backend", chosen.rawValue),
            ("whiteouts", chosen.whiteoutFormat(initialUserNamespace: features.initialUserNamespace).storeName),
        ])
        do {
            guard let lock = try StoreLock(root.appending(lockName)) else { fatalError("a waiting lock always locks") }
            if !StoreFiles.exists(root.appending(configurationName)) {
                try StoreFiles.syncDirectory(root)
                try configuration.write(to: root.appending(configurationName))
            }
            lock.release()
        }
        return try LayerStore(opening: root, features: features)
    }

    /// Opens the store at `root` and repairs what a crashed process left behind (see ``repair()``).
    ///
    /// - Throws: `UnionMountError.Code.invalidArgument` for a relative root; `UnionMountError.Code.notFound` when `root`
    ///   holds no store;
    ///   `UnionMountError.Code.malformedInput` for a damaged `store.conf`; `UnionMountError.Code.unsupported`
    ///   when this process cannot use the store's backend (an overlay store from inside a user namespace, say) —
    ///   layers are never mixed between formats.
    public init(opening root: FilePath, features: KernelFeatures = .current) throws(UnionMountError) {
        guard root.isAbsolute else {
            throw UnionMountError.invalidArgument("the store root must be an absolute path", input: root.readable)
        }
        let file = root.appending(Self.configurationName)
        guard let record = try StoreRecord.read(file) else {
            throw UnionMountError(
                code: .notFound, message: "\(root.readable) holds no layer store (no store.conf)", input: root.readable)
        }
        let version = try record.count("format", in: file)
        guard version == Self.formatVersion else {
            throw UnionMountError(
                code: .unsupported,
                message: "the store uses layout format \(version); this library reads format \(Self.formatVersion)",
                input: file.readable)
        }
        let backendName = try record.required("backend", in: file)
        guard let backend = LayerStoreBackend(rawValue: backendName) else {
            throw UnionMountError.malformed("unknown backend '\(backendName)'", input: file.readable)
        }
        let formatName = try record.required("whiteouts", in: file)
        guard let format = WhiteoutFormat(storeName: formatName) else {
            throw UnionMountError.malformed("unknown whiteout format '\(formatName)'", input: file.readable)
        }
        if let reason = backend.unavailability(on: features) {
            throw UnionMountError(
                code: .unsupported,
                message:
                    "the store at \(root.readable) uses the \(backend.rawValue) backend, which this process cannot use: \(reason)",
                input: root.readable)
        }
        if case .overlay(let prefix) = format, prefix == "trusted.", !features.initialUserNamespace {
            throw UnionMountError(
                code: .unsupported,
                message: "the store's layers use trusted.overlay.* xattrs, which a user namespace cannot read or write",
                input: root.readable)
        }
        self.root = root
        self.rootBytes = root.bytes
        self.backend = backend
        self.whiteoutFormat = format
        self.mounter = Mounter(features: features, attachmentDirectory: root.appending(Self.attachmentsName))
        self.lockFile = try StoreLockFile(root.appending(Self.lockName))
        self.repairReport = RepairReport()
        self.repairReport = try repair()
    }

    // MARK: Layout

    static let configurationName = "store.conf"
    static let lockName = "lock"
    /// Where mounts of idmapped containers attach their layers' trees on kernels that need them attached
    /// (`IDMappedLayerRung.attachedTrees`), for the moment of the mount; repair detaches leftovers.
    static let attachmentsName = "idmapped"

    var layersDirectory: FilePath { root.appending("layers") }
    var containersDirectory: FilePath { root.appending("containers") }
    var stagingDirectory: FilePath { root.appending("staging") }
    var trashDirectory: FilePath { root.appending("trash") }
    var emptyDirectory: FilePath { root.appending("empty") }

    func layerDirectory(_ id: String) -> FilePath { layersDirectory.appending(id) }

    /// `<root>/<directory>/<id>/<leaf>`, joined as bytes: `id` is a checked store id (no `/`, no `..`), so no
    /// component needs the checks and normalization of `FilePath.appending(_:)`, three or four of them per path (a
    /// 500-layer container's lower directories are 500 such paths).
    func storePath(_ directory: String, _ id: String, _ leaf: String) -> FilePath {
        var bytes = rootBytes
        bytes.reserveCapacity(rootBytes.count + directory.utf8.count + id.utf8.count + leaf.utf8.count + 3)
        if bytes.last != UInt8(ascii: "/") { bytes.append(UInt8(ascii: "/")) }
        bytes.append(contentsOf: directory.utf8)
        bytes.append(UInt8(ascii: "/"))
        bytes.append(contentsOf: id.utf8)
        bytes.append(UInt8(ascii: "/"))
        bytes.append(contentsOf: leaf.utf8)
        return FilePath(bytes: bytes)
    }
    func containerDirectory(_ id: String) -> FilePath { containersDirectory.appending(id) }

    /// Runs `body` holding the store's exclusive lock.
    func locked<Result>(_ body: () throws(UnionMountError) -> Result) throws(UnionMountError) -> Result {
        try lockFile.withLock(body)
    }

    /// A fresh name for a staging or trash entry: `<id>.<random>`.
    static func token(_ id: String) -> String { id + "." + String(StoreIdentifier.random().prefix(12)) }

    private static func makeParents(_ path: FilePath) throws(UnionMountError) {
        var prefix = FilePath("/")
        for component in path.removingLastComponent().components {
            prefix.append(component)
            try StoreFiles.makeDirectory(prefix)
        }
    }
}
