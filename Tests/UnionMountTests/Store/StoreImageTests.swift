import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

/// Image records in the store, fed by images resolved from layouts the tests write; the layers are "applied"
/// by a closure that writes a file and returns the config's diff id (the tar applier plugs in there). No mounts.
@Suite struct StoreImageTests {
    let scratch: Scratch
    let root: FilePath
    let store: LayerStore
    let fixture: OCILayoutFixture

    init() throws {
        scratch = try Scratch("store-images")
        root = scratch.path.appending("store")
        store = try LayerStore.create(at: root, features: StoreBackendTests.features())
        fixture = try OCILayoutFixture(in: scratch.path.appending("layout"))
    }

    /// Resolves an image of `layers` (their contents name them) from the fixture layout.
    func resolved(_ layers: [String]) throws -> ResolvedImage {
        let image = try fixture.image(layers: layers)
        try fixture.writeIndex(entries: [image.manifest.json()])
        return try ImageLayout(directory: fixture.directory).resolve(platform: .linuxAMD64)
    }

    /// An applier that writes `applied` (the diff id) into the layer and counts its calls.
    final class Applier {
        var calls: [ImageDigest] = []
        var wrongAt: Int?

        func apply(_ layer: ResolvedLayer, _ builder: LayerBuilder) throws -> ImageDigest {
            calls.append(layer.diffID)
            try writeFile(builder.directory.appending(layer.diffID.hex), "applied")
            if wrongAt == calls.count - 1 { return SHA256.digest(of: Array("wrong".utf8)) }
            return layer.diffID
        }
    }

    @Test("two images sharing a base store it once; removing frees only what nothing else uses")
    func sharedBase() throws {
        let applier = Applier()
        let first = try resolved(["base", "one"])
        let second = try resolved(["base", "two", "three"])
        let a = try store.importImage(first, name: "example/one:1", applyLayer: applier.apply)
        let b = try store.importImage(second, name: "example/two", applyLayer: applier.apply)
        #expect(applier.calls == [first.layers[0].diffID, first.layers[1].diffID] + second.layers[1...].map(\.diffID))
        #expect(a.layers == first.layers.reversed().map(\.chainID.hex))
        #expect(a.manifestDigest == first.manifestDigest && a.configDigest == first.configDigest)
        #expect(a.platform == "linux/amd64")
        #expect(b.name == "example/two:latest")
        #expect(try store.layers().count == 4)
        #expect(try store.images().map(\.name) == ["example/one:1", "example/two:latest"])
        #expect(try store.image(named: "example/two:latest") == b)
        #expect(try store.imageConfig(named: "example/one:1") == first.configBytes)
        let base = first.layers[0].chainID.hex
        #expect(try store.layer(base).parent == nil)
        #expect(try store.layer(second.layers[2].chainID.hex).parent == second.layers[1].chainID.hex)
        #expect(try store.users(ofLayer: base).contains("image example/one:1"))
        let busy = #expect(throws: UnionMountError.self) { try store.removeLayer(a.layers[0]) }
        #expect(busy?.code == .inUse)

        try store.removeImage(named: "example/one:1")
        #expect(try store.layers().map(\.id).sorted() == b.layers.sorted())
        #expect(throws: UnionMountError.self) { try store.image(named: "example/one:1") }
        try store.removeImage(named: "example/two")
        #expect(try store.layers().isEmpty)
        #expect(try store.images().isEmpty)
        #expect(try StoreFiles.names(in: store.imageBlobsDirectory).isEmpty)
        #expect(try store.check().isEmpty)
        // Importing again after a removal applies again.
        try store.importImage(first, name: "example/one:1", applyLayer: applier.apply)
        #expect(applier.calls.count == 6)
    }

    @Test("a container created from an image name keeps the image's layers alive")
    func containerKeepsLayers() throws {
        let applier = Applier()
        let image = try resolved(["base", "app"])
        let recorded = try store.importImage(image, name: "app:1", applyLayer: applier.apply)
        let container = try store.createContainer("web", image: "app:1")
        #expect(container.image == recorded.topLayer)
        #expect(container.layers == recorded.layers)
        try store.createContainer("init", image: "app:1") { try writeFile($0.appending("hostname"), "h") }
        try store.removeImage(named: "app:1")
        #expect(try store.layers().map(\.id).filter { $0.count == 64 }.sorted() == recorded.layers.sorted())
        #expect(try store.chain(try #require(recorded.topLayer)).map(\.id) == recorded.layers)
        let missing = #expect(throws: UnionMountError.self) { try store.createContainer("x", image: "app:1") }
        #expect(missing?.code == .notFound)
        try store.removeContainer("web")
        try store.removeContainer("init")
        // The layers are plain layers now: a new import of the image reuses them without applying.
        try store.importImage(image, name: "app:1", applyLayer: applier.apply)
        #expect(applier.calls.count == 2)
        #expect(try store.check().isEmpty)
    }

    @Test("a wrong diff id discards the layer, and the layers this import made; nothing is recorded")
    func wrongDiffID() throws {
        let applier = Applier()
        applier.wrongAt = 1
        let image = try resolved(["base", "bad"])
        let error = #expect(throws: UnionMountError.self) {
            try store.importImage(image, name: "bad:1", applyLayer: applier.apply)
        }
        #expect(error?.code == .malformedInput)
        #expect(error?.message.contains("unpacks to diff id") == true)
        #expect(error?.input == image.layers[1].blob.descriptor?.digest.description)
        #expect(try store.layers().isEmpty)
        #expect(try store.images().isEmpty)
        #expect(try StoreFiles.names(in: root.appending("staging")).isEmpty)
        // A failing applier, likewise.
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try store.importImage(image, name: "bad:1") { _, _ in throw Refused() }
        }
        #expect(try store.layers().isEmpty)
        #expect(try store.check().isEmpty)
    }

    @Test("names are checked; recording needs every layer; re-recording a name frees the old image's own layers")
    func recording() throws {
        let applier = Applier()
        let image = try resolved(["base", "v1"])
        for bad in ["Upper:1", "a//b", "a:", "../x", "a@sha256:" + String(repeating: "a", count: 64)] {
            let error = #expect(throws: UnionMountError.self) {
                try store.importImage(image, name: bad, applyLayer: applier.apply)
            }
            #expect(error?.code == .invalidArgument)
        }
        let missing = #expect(throws: UnionMountError.self) { try store.recordImage(image, name: "x:1") }
        #expect(missing?.code == .notFound)
        var forged = image
        forged.configBytes.append(0x20)
        #expect(throws: UnionMountError.self) { try store.recordImage(forged, name: "x:1") }
        try store.importImage(image, name: "app:latest", applyLayer: applier.apply)
        let next = try resolved(["base", "v2"])
        try store.importImage(next, name: "app", applyLayer: applier.apply)
        #expect(try store.images().count == 1)
        #expect(try store.image(named: "app").manifestDigest == next.manifestDigest)
        #expect(try store.layers().map(\.id).sorted() == next.layers.map(\.chainID.hex).sorted())
    }

    @Test("createContainer: a layer id or an image name; both, with different tops, is ambiguous")
    func containerArgument() throws {
        let applier = Applier()
        let image = try resolved(["base"])
        try store.importImage(image, name: "base", applyLayer: applier.apply)
        try store.createLayer("base") { try writeFile($0.appending("f"), "x") }
        let error = #expect(throws: UnionMountError.self) { try store.createContainer("c", image: "base") }
        #expect(error?.code == .invalidArgument)
        #expect(try store.createContainer("c", image: "base:latest").image == image.layers[0].chainID.hex)
        #expect(try store.createContainer("d", image: image.layers[0].chainID.hex).image == image.layers[0].chainID.hex)
        let none = #expect(throws: UnionMountError.self) { try store.createContainer("e", image: "nothing:1") }
        #expect(none?.code == .notFound)
    }

    @Test("repair reports an image whose layers are gone, keeps its record, and removes unreferenced blobs")
    func repair() throws {
        let applier = Applier()
        let image = try resolved(["base", "top"])
        let recorded = try store.importImage(image, name: "app:1", applyLayer: applier.apply)
        try writeFile(store.imageBlobsDirectory.appending(String(repeating: "c", count: 64)), "{}")
        removeTree(root.appending("layers/" + recorded.layers[0]))
        let problems = try store.check()
        #expect(problems.contains { $0.contains("image app:1") }, "\(problems)")
        let reopened = try LayerStore(opening: root, features: StoreBackendTests.features())
        #expect(
            reopened.repairReport.problems == [
                "the image app:1 lacks its layers \(recorded.layers[0]): import it again to restore them"
            ])
        #expect(
            reopened.repairReport.actions == [
                "removed the unreferenced image blob images/blobs/\(String(repeating: "c", count: 64))"
            ])
        #expect(try reopened.image(named: "app:1") == recorded)
        try reopened.importImage(image, name: "app:1", applyLayer: applier.apply)
        #expect(applier.calls.count == 3)
        #expect(try reopened.check().isEmpty)
        // What a writer killed before its rename leaves: temporary files, removed.
        try writeFile(root.appending("images/" + String(repeating: "d", count: 64) + ".conf.tmp"), "name=x")
        try writeFile(store.imageBlobsDirectory.appending(String(repeating: "e", count: 64) + ".tmp"), "{")
        let cleaned = try LayerStore(opening: root, features: StoreBackendTests.features())
        #expect(cleaned.repairReport.actions.count == 2, "\(cleaned.repairReport.actions)")
        #expect(cleaned.repairReport.actions.allSatisfy { $0.contains("temporary record") })
        #expect(try cleaned.check().isEmpty)
        // A damaged record is reported, not removed.
        try writeFile(reopened.imageRecordFile(try ImageReference(parsing: "app:1")), "name=other:1\n")
        let again = try LayerStore(opening: root, features: StoreBackendTests.features())
        #expect(again.repairReport.problems.count == 1)
        #expect(again.repairReport.problems.first?.contains("names another image") == true)
    }
}
