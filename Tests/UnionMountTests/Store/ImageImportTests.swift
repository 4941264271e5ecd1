import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// ``LayerStore/importImage(from:name:options:progress:)`` end to end, without mounting: images written by `umoci`
/// and converted by `skopeo`, imported in one call, their merged view (``MergedView`` over the stored chain)
/// compared with `umoci unpack`'s rootfs.
@Suite(.enabled(if: OracleTools.present, "needs umoci, skopeo, gzip and tar (apt-get install umoci skopeo)"))
struct ImageImportTests {
    let scratch: Scratch
    let oracle = ImageOracleTests()

    init() throws {
        scratch = try Scratch("image-import")
    }

    func newStore(_ name: String) throws -> LayerStore {
        try LayerStore.create(at: scratch.path.appending(name), features: StoreBackendTests.features())
    }

    /// What the comparison looks at: no union-private attributes, no hard-link groups (a merged view of layers
    /// has none across layers), no times (umoci sets a directory's time from its own walk of the bundle, which the
    /// layer tars do not carry for directories a later layer does not touch).
    static let options = TreeManifest.Options(
        includeModificationTimes: false,
        ignoredXattrPrefixes: ["trusted.overlay.", "user.overlay.", "user.fuseoverlayfs.", "security.selinux"],
        includeHardLinks: false)

    /// The merged view of the chain ending at `top`, as a manifest: each visible name described from the
    /// branch it comes from.
    static func mergedManifest(_ store: LayerStore, top: String) throws -> TreeManifest {
        let branches = try store.chain(top).map(\.directory)
        let view = try MergedView.entries(branches: branches, format: store.whiteoutFormat)
        var byBranch: [[[UInt8]: TreeManifest.Entry]] = []
        for branch in branches {
            let manifest = try TreeManifest.read(branch, options: options)
            byBranch.append(Dictionary(manifest.entries.map { ($0.path.bytes, $0) }) { first, _ in first })
        }
        let entries = try view.map { entry in try #require(byBranch[entry.branch][entry.path.bytes]) }
        return TreeManifest(entries: entries, options: options)
    }

    /// `umoci unpack`'s rootfs of `image` (a `layout:tag`), without its root entry.
    func unpacked(_ image: String) throws -> TreeManifest {
        let bundle = scratch.path.appending("unpack-\(abs(image.hashValue))")
        let rootless = geteuid() == 0 ? [] : ["--rootless"]
        try oracle.run("umoci", ["unpack"] + rootless + ["--image", image, bundle.string])
        var manifest = try TreeManifest.read(bundle.appending("rootfs"), options: Self.options)
        manifest.entries.removeAll { $0.path == "." }
        return manifest
    }

    @Test("an OCI layout from umoci imports in one call; the merged chain equals umoci unpack's rootfs")
    func umociLayout() throws {
        let layout = try oracle.umociImage(in: scratch.path)
        let store = try newStore("store")
        var reports: [ImageImportProgress] = []
        let imported = try store.importImage(from: .ociLayout(layout, reference: "v1"), name: "oracle/app:v1") {
            reports.append($0)
        }
        let resolved = try ImageLayout(directory: layout).resolve(.tag("v1"))
        #expect(imported.image.name == "oracle/app:v1")
        #expect(imported.layers.map(\.chainID) == resolved.layers.map(\.chainID))
        #expect(imported.layers.map(\.diffID) == resolved.layers.map(\.diffID))
        #expect(imported.layers.map(\.blobDigest) == resolved.layers.map(\.blob.descriptor?.digest))
        #expect(imported.layers.allSatisfy { $0.outcome == .applied && $0.entries > 0 && $0.bytesRead > 0 })
        #expect(imported.layers.map(\.bytesRead) == resolved.layers.map { $0.blob.descriptor?.size ?? -1 })
        #expect(reports.last?.layersDone == 2 && reports.last?.layerCount == 2)
        #expect(reports.last?.bytesRead == imported.layers.map(\.bytesRead).reduce(0, +))
        #expect(reports.last?.bytesTotal == reports.last?.bytesRead)
        for layer in imported.layers { #expect(try store.layer(layer.layerID).diffID == layer.diffID) }
        let top = try #require(imported.image.topLayer)
        let merged = try Self.mergedManifest(store, top: top)
        let expected = try unpacked(layout.string + ":v1")
        #expect(merged.differences(from: expected).isEmpty, "\(merged.differences(from: expected))")
        #expect(merged.entries.contains { $0.path == "etc/motd" } && !merged.entries.contains { $0.path == "gone" })
        #expect(try store.check().isEmpty)

        // Imported again, under another name: every layer reused, nothing read.
        let again = try store.importImage(from: .ociLayout(layout, reference: nil), name: "copy")
        #expect(again.layers.allSatisfy { $0.outcome == .reused && $0.bytesRead == 0 })
        #expect(again.image.layers == imported.image.layers)
        #expect(try store.layers().count == 2)
    }
}

extension ImageImportTests {
    @Test(
        "skopeo's docker-archive of the same image imports to the same chain and merged view; into the same store it reuses every layer"
    )
    func skopeoDockerArchive() throws {
        let layout = try oracle.umociImage(in: scratch.path)
        let archive = scratch.path.appending("app.tar")
        try oracle.run(
            "skopeo", ["copy", "-q", "oci:\(layout.string):v1", "docker-archive:\(archive.string):example/app:v1"])
        let fromLayout = try ImageLayout(directory: layout).resolve(.tag("v1"))
        let store = try newStore("archive-store")
        let imported = try store.importImage(from: .dockerArchive(archive, reference: nil))
        #expect(imported.image.name == "docker.io/example/app:v1")
        #expect(imported.image.configDigest == fromLayout.configDigest)
        #expect(imported.layers.map(\.chainID) == fromLayout.layers.map(\.chainID))
        #expect(imported.layers.allSatisfy { $0.outcome == .applied })
        // skopeo writes the layers uncompressed: the blob digest computed on the way is the diff id.
        #expect(imported.layers.allSatisfy { $0.blobDigest == $0.diffID })
        let merged = try Self.mergedManifest(store, top: try #require(imported.image.topLayer))
        let expected = try unpacked(layout.string + ":v1")
        #expect(merged.differences(from: expected).isEmpty, "\(merged.differences(from: expected))")

        let shared = try newStore("shared-store")
        try shared.importImage(from: .ociLayout(layout, reference: "v1"), name: "app:layout")
        let second = try shared.importImage(from: .dockerArchive(archive, reference: "docker.io/example/app:v1"))
        #expect(second.layers.allSatisfy { $0.outcome == .reused })
        #expect(try shared.layers().count == 2)
        #expect(try shared.images().map(\.name) == ["app:layout", "docker.io/example/app:v1"])
    }

    @Test("a second image on the same base reuses the base's layers and applies only its own")
    func sharedBase() throws {
        let layout = try oracle.umociImage(in: scratch.path)
        let bundle = scratch.path.appending("bundle-v2").string
        let rootless = geteuid() == 0 ? [] : ["--rootless"]
        try oracle.run("umoci", ["unpack"] + rootless + ["--image", layout.string + ":v1", bundle])
        try writeFile(FilePath(bundle).appending("rootfs/etc/v2"), "third layer\n")
        try oracle.run("umoci", ["repack", "--image", layout.string + ":v2", bundle])
        let store = try newStore("store")
        let first = try store.importImage(from: .ociLayout(layout, reference: "v1"), name: "app:v1")
        let second = try store.importImage(from: .ociLayout(layout, reference: "v2"), name: "app:v2")
        #expect(second.layers.map(\.outcome) == [.reused, .reused, .applied])
        #expect(Array(second.layers.prefix(2).map(\.layerID)) == first.layers.map(\.layerID))
        #expect(try store.layers().count == 3)
        let merged = try Self.mergedManifest(store, top: try #require(second.image.topLayer))
        let expected = try unpacked(layout.string + ":v2")
        #expect(merged.differences(from: expected).isEmpty, "\(merged.differences(from: expected))")
        // Removing the first image keeps the shared layers (the second uses them).
        try store.removeImage(named: "app:v1")
        #expect(try store.layers().count == 3)
    }
}

/// Crafted layouts and archives whose blobs do not match their metadata, or whose members are wrong: each a
/// typed error, the store unchanged. Runs without umoci.
@Suite struct ImageImportRefusalTests {
    let scratch: Scratch
    let store: LayerStore

    init() throws {
        scratch = try Scratch("image-import-refusals")
        store = try LayerStore.create(at: scratch.path.appending("store"), features: StoreBackendTests.features())
    }

    static let layerTars: [[UInt8]] = [
        TestArchive([.directory("etc"), .file("etc/hostname", "base\n")]).bytes(),
        TestArchive([.directory("etc"), .file("etc/motd", "hello\n"), .file(".wh.gone")]).bytes(),
    ]

    /// The store holds nothing: no layer, no image, no staging entry, no problem.
    func expectUnchanged(sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try store.layers().isEmpty, sourceLocation: sourceLocation)
        #expect(try store.images().isEmpty, sourceLocation: sourceLocation)
        #expect(
            try StoreFiles.names(in: store.root.appending("staging")).isEmpty, sourceLocation: sourceLocation)
        #expect(try store.check().isEmpty, sourceLocation: sourceLocation)
    }

    /// A layout of the two layers (uncompressed), tag `t`; `diffIDs` override the true ones.
    func layout(
        _ name: String, diffIDs: [ImageDigest]? = nil, sizeDelta: Int = 0
    ) throws -> (OCILayoutFixture, [OCILayoutFixture.Blob]) {
        try Self.craftedLayout(
            at: scratch.path.appending(name), layers: Self.layerTars, diffIDs: diffIDs, sizeDelta: sizeDelta)
    }

    /// A layout at `directory` of `layers` (uncompressed tars, bottom first), linux/amd64, tag `t`; `diffIDs`
    /// override the true ones, `sizeDelta` is added to the last layer's declared size.
    static func craftedLayout(
        at directory: FilePath, layers: [[UInt8]], diffIDs: [ImageDigest]? = nil, sizeDelta: Int = 0
    ) throws -> (OCILayoutFixture, [OCILayoutFixture.Blob]) {
        let fixture = try OCILayoutFixture(in: directory)
        let blobs = try layers.map {
            try fixture.blob($0, mediaType: "application/vnd.oci.image.layer.v1.tar")
        }
        let config = try fixture.blob(
            OCILayoutFixture.configJSON(diffIDs: diffIDs ?? layers.map { SHA256.digest(of: $0) }),
            mediaType: ImageMediaType.ociConfig)
        var layerJSON = blobs.map { $0.json() }
        if sizeDelta != 0, var last = blobs.last {
            last.size += sizeDelta
            layerJSON[layerJSON.count - 1] = last.json()
        }
        let manifest = try fixture.blob(
            "{\"schemaVersion\": 2, \"mediaType\": \"\(ImageMediaType.ociManifest)\", \"config\": \(config.json()), "
                + "\"layers\": [" + layerJSON.joined(separator: ", ") + "]}",
            mediaType: ImageMediaType.ociManifest)
        try fixture.writeIndex(entries: [OCILayoutFixture.tagged(manifest, "t")])
        return (fixture, blobs)
    }

    func refusal(_ source: ImageSource, options: ImageImportOptions = ImageImportOptions()) throws
        -> UnionMountError
    {
        try #require(throws: UnionMountError.self) {
            try store.importImage(from: source, name: "bad:1", options: options)
        }
    }

    @Test("a layout: a layer blob with another digest, size or diff id is refused and leaves the store unchanged")
    func layoutMismatches() throws {
        let (good, _) = try layout("good")
        let options = ImageImportOptions(platform: .linuxAMD64)
        let imported = try store.importImage(from: .ociLayout(good.directory, reference: "t"), options: options)
        #expect(imported.image.name == "good:t")
        try store.removeImage(named: "good:t")
        try expectUnchanged()

        // The second blob's bytes changed (same size): its digest no longer matches; the first layer goes again.
        let (digest, blobs) = try layout("digest")
        var bytes = Self.layerTars[1]
        let at = try #require(bytes.indices.first { bytes[$0] == UInt8(ascii: "h") && bytes[$0 + 1] == 0x65 })
        bytes[at] = UInt8(ascii: "j")
        try TestArchive.write(bytes, to: digest.path(blobs[1]))
        let digestError = try refusal(.ociLayout(digest.directory, reference: "t"), options: options)
        #expect(digestError.code == .malformedInput)
        #expect(digestError.message.contains("digest"), "\(digestError.message)")
        #expect(digestError.message.contains("bad:1") && digestError.message.contains(blobs[1].digest.hex))
        try expectUnchanged()

        let (size, _) = try layout("size", sizeDelta: 1)
        let sizeError = try refusal(.ociLayout(size.directory, reference: "t"), options: options)
        #expect(sizeError.code == .malformedInput)
        #expect(sizeError.message.contains("bytes"), "\(sizeError.message)")
        try expectUnchanged()

        let wrong = [SHA256.digest(of: Self.layerTars[0]), SHA256.digest(of: Array("other".utf8))]
        let (diff, _) = try layout("diff", diffIDs: wrong)
        let diffError = try refusal(.ociLayout(diff.directory, reference: "t"), options: options)
        #expect(diffError.code == .malformedInput)
        #expect(diffError.message.contains("diff id"), "\(diffError.message)")
        try expectUnchanged()
    }

    /// A legacy `docker save` archive: `manifest.json`, `<hex>.json`, `l1/layer.tar`, `l2/layer.tar`; `extra`
    /// members appended, `layers` naming the members.
    func dockerArchive(
        _ name: String, layers: [String] = ["l1/layer.tar", "l2/layer.tar"], diffIDs: [ImageDigest]? = nil,
        extra: [TestArchive.Entry] = [], layerMembers: [TestArchive.Entry]? = nil
    ) throws -> FilePath {
        let config = Array(
            OCILayoutFixture.configJSON(diffIDs: diffIDs ?? Self.layerTars.map { SHA256.digest(of: $0) }).utf8)
        let configName = SHA256.digest(of: config).hex + ".json"
        let manifest =
            "[{\"Config\": \"\(configName)\", \"RepoTags\": [\"example/crafted:1\"], \"Layers\": ["
            + layers.map { "\"\($0)\"" }.joined(separator: ", ") + "]}]"
        var entries: [TestArchive.Entry] = [
            .file("manifest.json", manifest), TestArchive.Entry(path: Array(configName.utf8), contents: config),
        ]
        entries +=
            layerMembers ?? [
                .directory("l1"), TestArchive.Entry(path: Array("l1/layer.tar".utf8), contents: Self.layerTars[0]),
                .directory("l2"), TestArchive.Entry(path: Array("l2/layer.tar".utf8), contents: Self.layerTars[1]),
            ]
        entries += extra
        let path = scratch.path.appending(name + ".tar")
        try TestArchive(entries).write(to: path)
        return path
    }

    @Test("a docker archive imports by its RepoTags name; a wrong diff id is refused, the store unchanged")
    func dockerArchiveDiffID() throws {
        let good = try dockerArchive("good")
        let imported = try store.importImage(
            from: .dockerArchive(good, reference: "example/crafted:1"),
            options: ImageImportOptions(platform: .linuxAMD64))
        #expect(imported.image.name == "example/crafted:1")
        #expect(imported.layers.map(\.blobDigest) == Self.layerTars.map { SHA256.digest(of: $0) })
        #expect(fileExists(try store.layer(imported.layers[1].layerID).directory.appending("etc/motd")))
        try store.removeImage(named: "example/crafted:1")
        try expectUnchanged()

        let wrong = [SHA256.digest(of: Self.layerTars[0]), SHA256.digest(of: Array("other".utf8))]
        let error = try refusal(.dockerArchive(try dockerArchive("diff", diffIDs: wrong), reference: nil))
        #expect(error.code == .malformedInput)
        #expect(error.message.contains("diff id") && error.message.contains("l2/layer.tar"), "\(error.message)")
        try expectUnchanged()
    }

    @Test("a docker archive whose manifest names a member that is absent, a directory or too large: a typed error")
    func dockerArchiveMembers() throws {
        let absent = try refusal(
            .dockerArchive(try dockerArchive("absent", layers: ["l1/layer.tar", "l3/layer.tar"]), reference: nil))
        #expect(absent.code == .notFound)
        #expect(absent.message.contains("l3/layer.tar"), "\(absent.message)")

        let directory = try refusal(
            .dockerArchive(try dockerArchive("dir", layers: ["l1/layer.tar", "l2"]), reference: nil))
        #expect(directory.code == .malformedInput)
        #expect(directory.message.contains("is a directory"), "\(directory.message)")

        let big = try dockerArchive("big")
        let layerLimit = try refusal(
            .dockerArchive(big, reference: nil),
            options: ImageImportOptions(layerLimits: LayerArchiveLimits(maximumUncompressedBytes: 2048)))
        #expect(layerLimit.code == .malformedInput)
        #expect(layerLimit.message.contains("over the limit"), "\(layerLimit.message)")
        let configLimit = try refusal(
            .dockerArchive(big, reference: nil),
            options: ImageImportOptions(readLimits: ImageReadLimits(maximumJSONBytes: 64)))
        #expect(configLimit.code == .malformedInput)
        try expectUnchanged()
    }

    @Test("archive members: links resolved inside the archive; names leaving it, duplicates and compression refused")
    func archiveMembers() throws {
        // docker save links a layer shared by two images to its first copy.
        let linked = try dockerArchive(
            "linked",
            layerMembers: [
                .directory("l1"), TestArchive.Entry(path: Array("l1/layer.tar".utf8), contents: Self.layerTars[0]),
                .directory("x"), TestArchive.Entry(path: Array("x/layer.tar".utf8), contents: Self.layerTars[1]),
                .directory("l2"), .symlink("l2/layer.tar", to: "../x/layer.tar"),
            ])
        let imported = try store.importImage(from: .dockerArchive(linked, reference: nil))
        #expect(imported.layers.count == 2)
        try store.removeImage(named: imported.image.name)

        let escaping = try dockerArchive(
            "escaping",
            layerMembers: [
                .directory("l1"), TestArchive.Entry(path: Array("l1/layer.tar".utf8), contents: Self.layerTars[0]),
                .directory("l2"), .symlink("l2/layer.tar", to: "../../outside.tar"),
            ])
        let escape = try refusal(.dockerArchive(escaping, reference: nil))
        #expect(escape.code == .malformedInput && escape.message.contains("outside the archive"), "\(escape.message)")

        let traversal = try refusal(
            .dockerArchive(try dockerArchive("traversal", extra: [.file("../evil", "x")]), reference: nil))
        #expect(traversal.code == .malformedInput && traversal.message.contains("'..'"), "\(traversal.message)")

        let duplicate = try refusal(
            .dockerArchive(try dockerArchive("duplicate", extra: [.file("manifest.json", "[]")]), reference: nil))
        #expect(duplicate.code == .malformedInput && duplicate.message.contains("twice"), "\(duplicate.message)")

        let compressed = scratch.path.appending("compressed.tar.gz")
        try TestArchive([.file("manifest.json", "[]")], compression: .gzip).write(to: compressed)
        let gzip = try refusal(.dockerArchive(compressed, reference: nil))
        #expect(gzip.code == .malformedInput && gzip.message.contains("uncompressed"), "\(gzip.message)")
        try expectUnchanged()
    }

    @Test("an oci-archive: the layout's blobs read from the tar; a corrupt layer blob is refused")
    func ociArchive() throws {
        let (fixture, blobs) = try layout("packed")
        func pack(_ name: String) throws -> FilePath {
            var entries: [TestArchive.Entry] = [.directory("blobs"), .directory("blobs/sha256")]
            for file in ["oci-layout", "index.json"] {
                entries.append(
                    TestArchive.Entry(
                        path: Array(file.utf8), contents: try #require(readBytes(fixture.directory.appending(file)))))
            }
            for hex in try FileManager.default.contentsOfDirectory(
                atPath: fixture.directory.appending("blobs/sha256").string)
            {
                entries.append(
                    TestArchive.Entry(
                        path: Array(("blobs/sha256/" + hex).utf8),
                        contents: try #require(readBytes(fixture.directory.appending("blobs/sha256/" + hex)))))
            }
            let path = scratch.path.appending(name + ".tar")
            try TestArchive(entries).write(to: path)
            return path
        }
        let good = try pack("packed")
        let imported = try store.importImage(
            from: .ociArchive(good, reference: "t"), options: ImageImportOptions(platform: .linuxAMD64))
        #expect(imported.image.name == "packed:t")
        try store.removeImage(named: "packed:t")
        var bytes = Self.layerTars[1]
        let at = try #require(bytes.indices.first { bytes[$0] == UInt8(ascii: "h") && bytes[$0 + 1] == 0x65 })
        bytes[at] = UInt8(ascii: "j")
        try TestArchive.write(bytes, to: fixture.path(blobs[1]))
        let error = try refusal(
            .ociArchive(try pack("corrupt"), reference: "t"), options: ImageImportOptions(platform: .linuxAMD64))
        #expect(error.code == .malformedInput && error.message.contains("digest"), "\(error.message)")
        try expectUnchanged()
    }

    @Test("without a name: the source's full reference, a bare tag with the directory's name, else a typed error")
    func defaultNames() throws {
        let (fixture, _) = try layout("debian")
        let options = ImageImportOptions(platform: .linuxAMD64)
        #expect(
            try store.importImage(from: .ociLayout(fixture.directory, reference: "t"), options: options).image.name
                == "debian:t")
        let (odd, _) = try layout("Not A Name")
        let unnamed = try #require(throws: UnionMountError.self) {
            try store.importImage(from: .ociLayout(odd.directory, reference: "t"), options: options)
        }
        #expect(unnamed.code == .invalidArgument && unnamed.input == "name")
        let badName = try #require(throws: UnionMountError.self) {
            try store.importImage(from: .ociLayout(odd.directory, reference: "t"), name: "Upper", options: options)
        }
        #expect(badName.code == .invalidArgument)
        let badReference = try #require(throws: UnionMountError.self) {
            try store.importImage(from: .ociLayout(odd.directory, reference: "sha256:zz"), name: "x", options: options)
        }
        #expect(badReference.code == .invalidArgument)
    }
}

/// The bytes of the file at `path`, nil when unreadable.
func readBytes(_ path: FilePath) -> [UInt8]? {
    (try? Data(contentsOf: URL(fileURLWithPath: path.string))).map { [UInt8]($0) }
}

extension ImageImportRefusalTests {
    @Test("prune removes image layers nothing uses (a killed import's), never a user's layers or used ones")
    func prune() throws {
        let options = ImageImportOptions(platform: .linuxAMD64)
        let (kept, _) = try layout("kept")
        let image = try store.importImage(from: .ociLayout(kept.directory, reference: "t"), options: options)
        // What an import killed after committing its layers leaves: image layers no record names.
        let orphanTars = [
            TestArchive([.file("a", "orphan base")]).bytes(), TestArchive([.file("b", "orphan top")]).bytes(),
        ]
        var parent: String?
        var chain: ImageDigest?
        var orphans: [String] = []
        for tar in orphanTars {
            let diffID = SHA256.digest(of: tar)
            let id = ImageDigest.chainID(parent: chain, diffID: diffID).hex
            let builder = try store.beginLayer(id, parent: parent)
            builder.diffID = diffID
            try builder.commit()
            orphans.append(id)
            parent = id
            chain = ImageDigest.chainID(parent: chain, diffID: diffID)
        }
        // An image layer a user layer is built on stays, and so does a user layer on nothing.
        try store.createLayer("mine") { try writeFile($0.appending("m"), "mine") }
        let heldBase = try store.beginLayer(String(repeating: "a", count: 64))
        heldBase.diffID = SHA256.digest(of: Array("held".utf8))
        try heldBase.commit()
        try store.createLayer("on-held", parent: String(repeating: "a", count: 64)) { _ in }
        let containerBase = try store.beginLayer(String(repeating: "b", count: 64))
        containerBase.diffID = SHA256.digest(of: Array("container".utf8))
        try containerBase.commit()
        try store.createContainer("c", image: String(repeating: "b", count: 64))

        let removed = try store.prune()
        #expect(removed == orphans.reversed())
        let left = Set(try store.layers().map(\.id))
        #expect(
            left
                == Set(
                    image.layers.map(\.layerID) + [
                        "mine", "on-held", String(repeating: "a", count: 64), String(repeating: "b", count: 64),
                    ]))
        #expect(try store.prune().isEmpty)
        #expect(try store.check().isEmpty)
        // Once the user layer and the container go, their image layers are prunable.
        try store.removeLayer("on-held")
        try store.removeContainer("c")
        #expect(Set(try store.prune()) == [String(repeating: "a", count: 64), String(repeating: "b", count: 64)])
        try store.removeImage(named: image.image.name)
        #expect(try store.layers().map(\.id) == ["mine"])
    }
}
