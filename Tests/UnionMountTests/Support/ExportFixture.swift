import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// A two-layer base image in an OCI layout (real gzip tars), imported into an overlay store, a container on it
/// whose writable layer holds every kind of change, and that container committed as an image: what the export
/// tests start from. Needs root (whiteout devices, `trusted.overlay.*`). No mounts.
struct ExportFixture {
    let scratch: Scratch
    let store: LayerStore
    let base: StoreImage
    let committed: StoreImage
    /// The container's view (writable layer over its chain), described entry by entry (``describedView(_:_:)``).
    let containerView: [String]
    static let baseName = "test/base:1"
    static let appName = "test/app:2"

    static func baseLayers() -> [[TestArchive.Entry]] {
        var su = TestArchive.Entry.file("./bin/su", "#!su\n", mode: 0o4755)
        su.uid = 0
        var noted = TestArchive.Entry.file("./etc/noted", "note")
        noted.xattrs = [("user.note", Array("base".utf8))]
        let first: [TestArchive.Entry] = [
            .directory("./"), .directory("./etc"), .file("./etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
            .file("./etc/hostname", "base\n"), noted, .directory("./bin"), .file("./bin/sh", "#!sh\n", mode: 0o755),
            .hardlink("./bin/sh2", to: "./bin/sh"), su, .directory("./lib"), .file("./lib/libc.so", "ELF"),
            .symlink("./lib64", to: "lib"), .directory("./opt"), .directory("./opt/app"), .file("./opt/app/a", "a"),
            .file("./opt/app/b", "b"), .directory("./run"),
            TestArchive.Entry(path: Array("./run/fifo".utf8), kind: .fifo, permissions: 0o600),
        ]
        let second: [TestArchive.Entry] = [
            .directory("./etc"), .file("./etc/.wh.hostname"), .directory("./opt"), .directory("./opt/app"),
            .file("./opt/app/.wh..wh..opq"), .file("./opt/app/c", "c"),
            TestArchive.Entry(path: Array("./caf".utf8) + [0xE9], contents: Array("latin-1".utf8)),
        ]
        return [first, second]
    }

    /// Writes the base image into a new layout `directory`, tagged `1`.
    static func writeBaseLayout(_ directory: FilePath) throws {
        let fixture = try OCILayoutFixture(in: directory)
        let layers = baseLayers()
        let blobs = try layers.map {
            try fixture.blob(
                TestArchive($0, compression: .gzip).bytes(), mediaType: ImageDocuments.layerMediaType(.gzip))
        }
        let diffIDs = layers.map { SHA256.digest(of: TestArchive($0).bytes()) }
        let config = try fixture.blob(
            OCILayoutFixture.configJSON(diffIDs: diffIDs, architecture: ImagePlatform.host.architecture),
            mediaType: ImageMediaType.ociConfig)
        let manifest = try fixture.blob(
            "{\"schemaVersion\": 2, \"mediaType\": \"\(ImageMediaType.ociManifest)\", \"config\": \(config.json()), "
                + "\"layers\": [" + blobs.map { $0.json() }.joined(separator: ", ") + "]}",
            mediaType: ImageMediaType.ociManifest)
        try fixture.writeIndex(entries: [OCILayoutFixture.tagged(manifest, "1")])
    }

    /// Imports the image tagged `tag` of the layout `directory` into `store` as `name`, each layer applied by
    /// ``LayerApplier`` with the manifest's digest and size and the config's diff id checked.
    @discardableResult
    static func importImage(_ directory: FilePath, tag: String, into store: LayerStore, as name: String) throws
        -> StoreImage
    {
        let image = try ImageLayout(directory: directory).resolve(.tag(tag))
        return try store.importImage(image, name: name) { layer, builder in
            let descriptor = try #require(layer.blob.descriptor)
            let applier = LayerApplier(
                whiteoutFormat: store.whiteoutFormat,
                expectation: LayerArchiveExpectation(
                    digest: descriptor.digest, size: descriptor.size, diffID: layer.diffID))
            let blob = directory.appending("blobs/sha256/" + descriptor.digest.hex)
            return try applier.apply(archive: blob, into: builder.directory).diffID
        }
    }

    /// The view of an image's chain in `store` (no writable layer).
    static func imageView(_ image: StoreImage, in store: LayerStore) throws -> [String] {
        let branches = try image.layers.map { try store.layer($0).directory }
        return try describedView(branches, store.whiteoutFormat)
    }

    /// - Parameter features: the store's kernel features: made up by default (no mounts), ``KernelFeatures/current``
    ///   for a store that mounts.
    init(_ name: String, clampTimes: Int64? = nil, features: KernelFeatures = StoreBackendTests.features()) throws {
        scratch = try Scratch(name)
        store = try LayerStore.create(at: scratch.path.appending("store"), features: features)
        let layout = scratch.path.appending("base-layout")
        try Self.writeBaseLayout(layout)
        base = try Self.importImage(layout, tag: "1", into: store, as: Self.baseName)
        let container = try store.createContainer("c", image: Self.baseName)
        let upper = container.upperDirectory
        let writer = TreeBuilder(root: upper)
        try writer.directory("etc")
        try writer.file("etc/motd", "hello\n")
        try writer.file("etc/passwd", "root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
        try writer.directory("bin")
        try FileSystem.makeNode(upper.appending("bin/sh"), type: .characterDevice, permissions: 0o600, device: 0)
        try writer.directory("opt")
        try writer.directory("opt/app")
        try FileSystem.setExtendedAttribute(upper.appending("opt/app"), "trusted.overlay.opaque", Array("y".utf8))
        try writer.file("opt/app/d", "d")
        try writer.directory("new")
        try writer.file("new/tool", "#!tool\n")
        chmod(upper.appending("new/tool").string, 0o4755)
        link(upper.appending("new/tool").string, upper.appending("new/tool2").string)
        try FileSystem.setExtendedAttribute(upper.appending("new/tool"), "user.made", Array("in c".utf8))
        try writeFile(upper.appending(name: Array("new/odd".utf8) + [0xFF]), "odd")
        mkfifo(upper.appending("new/fifo").string, 0o640)
        symlink("../etc/motd", upper.appending("new/motd").string)
        containerView = try describedView(
            [upper] + store.lowerDirectories(try store.container("c")), store.whiteoutFormat)
        committed = try store.commit(
            container: "c", asImage: Self.appName, options: LayerExportOptions(clampTimes: clampTimes))
    }
}
