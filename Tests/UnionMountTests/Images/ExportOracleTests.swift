import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// Real peers read what the store exports: `skopeo inspect` of the OCI layout and of the docker archive (the
/// digests agree), `umoci unpack` of the layout (its rootfs is the container's view), `skopeo copy` of the docker
/// archive into an OCI layout (the same diff ids). Skipped, with the reason, when a tool is absent (`.ci/test`
/// installs them); root for the overlay store's whiteouts.
@Suite(
    .serialized, .enabled(if: OracleTools.present, "needs umoci, skopeo, gzip and tar (apt-get install umoci skopeo)"))
struct ExportOracleTests {
    @discardableResult
    func run(_ name: String, _ arguments: [String]) throws -> Data {
        let result = try runProcess(try #require(OracleTools.path(name)), arguments)
        let errors = String(decoding: result.stderr, as: UTF8.self)
        #expect(result.status == 0, "\(name) \(arguments.joined(separator: " ")): \(errors)")
        return result.stdout
    }

    func inspect(_ reference: String) throws -> [String: Any] {
        try #require(
            try JSONSerialization.jsonObject(with: try run("skopeo", ["inspect", reference])) as? [String: Any])
    }

    @Test("skopeo inspect reads the OCI layout; umoci unpack gives the container's view")
    func ociLayout() throws {
        try #require(TestEnvironment.isRoot, "the overlay store's whiteout devices need root")
        let fixture = try ExportFixture("oracle-export")
        let layout = fixture.scratch.path.appending("layout")
        let exported = try fixture.store.exportImage(named: ExportFixture.appName, to: .ociLayout(layout, tag: "v2"))
        let inspected = try inspect("oci:\(layout.string):v2")
        #expect(inspected["Digest"] as? String == exported.manifestDigest.description)
        #expect(inspected["Layers"] as? [String] == exported.layers.map(\.digest.description))
        #expect(inspected["Architecture"] as? String == ImagePlatform.host.architecture)

        let bundle = fixture.scratch.path.appending("bundle")
        try run("umoci", ["unpack", "--image", layout.string + ":v2", bundle.string])
        let rootfs = bundle.appending("rootfs")
        let unpacked = try describedView([rootfs], .aufs)
        // umoci restores every field the view compares (owners, modes, contents, xattrs, links, nanosecond
        // modification times of files and directories alike).
        #expect(unpacked == fixture.containerView, "\(unpacked.difference(from: fixture.containerView))")
    }

    @Test("skopeo inspect reads the docker archive; skopeo copy turns it into an OCI layout of the same diff ids")
    func dockerArchive() throws {
        try #require(TestEnvironment.isRoot, "the overlay store's whiteout devices need root")
        let fixture = try ExportFixture("oracle-export-archive")
        let file = fixture.scratch.path.appending("app.tar")
        let exported = try fixture.store.exportImage(
            named: ExportFixture.appName, to: .dockerArchive(file, tag: "example/app:v2"))
        let inspected = try inspect("docker-archive:\(file.string)")
        #expect(inspected["Layers"] as? [String] == exported.layers.map(\.digest.description))
        // Selected by the repo tag manifest.json lists (skopeo fails on a tag the archive does not have).
        let tagged = try inspect("docker-archive:\(file.string):example/app:v2")
        #expect(tagged["Layers"] as? [String] == exported.layers.map(\.digest.description))
        let missing = try runProcess(
            try #require(OracleTools.path("skopeo")), ["inspect", "docker-archive:\(file.string):no/such:tag"])
        #expect(missing.status != 0)
        let copied = fixture.scratch.path.appending("copied")
        try run("skopeo", ["copy", "-q", "docker-archive:\(file.string)", "oci:\(copied.string):copy"])
        let image = try ImageLayout(directory: copied).resolve(.tag("copy"))
        #expect(image.config.diffIDs == exported.layers.map(\.diffID))
        let fresh = try LayerStore.create(
            at: fixture.scratch.path.appending("fresh"), features: StoreBackendTests.features())
        let imported = try ExportFixture.importImage(copied, tag: "copy", into: fresh, as: "copied/app:1")
        #expect(try ExportFixture.imageView(imported, in: fresh) == fixture.containerView)
    }
}
