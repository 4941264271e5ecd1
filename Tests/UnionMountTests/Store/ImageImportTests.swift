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
