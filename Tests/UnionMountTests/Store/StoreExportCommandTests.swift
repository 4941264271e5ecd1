import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

/// `unionmount store commit --as-image`, `export-image` and `export-layer` through the command line: what they
/// write is read back by the library's strict readers. No mounts (the container's writable layer is written
/// directly).
@Suite struct StoreExportCommandTests {
    func json(_ result: ProcessResult) throws -> [String: Any] {
        #expect(result.status == 0, "\(result)")
        return try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
    }

    @Test("commit --as-image, export-image to a layout and an archive, export-layer; bad combinations exit 64")
    func commands() throws {
        try #require(TestEnvironment.isRoot, "the store is an overlay store as root")
        let scratch = try Scratch("cli-export")
        let root = scratch.path.appending("store").string
        #expect(try unionmount("store", "create-container", "--root", root, "c1").status == 0)
        let store = try LayerStore(opening: FilePath(root))
        try writeFile(try store.container("c1").upperDirectory.appending("hello"), "hi\n")

        let image = try json(
            try unionmount(
                "store", "commit", "--root", root, "--as-image", "demo/app:1", "--clamp-times", "1700000000", "--json",
                "c1"))
        #expect(image["name"] as? String == "demo/app:1")
        #expect((image["layers"] as? [String])?.count == 1)

        let layout = scratch.path.appending("layout")
        let exported = try json(
            try unionmount(
                "store", "export-image", "--root", root, "--oci-layout", layout.string + ":v1", "--zstd", "--json",
                "demo/app:1"))
        #expect(exported["tag"] as? String == "v1")
        let resolved = try ImageLayout(directory: layout).resolve(.tag("v1"))
        #expect(resolved.manifestDigest?.description == exported["manifestDigest"] as? String)
        #expect(resolved.layers.map(\.blob.compression) == [.zstd])
        #expect(resolved.config.created == "2023-11-14T22:13:20Z")

        let archive = scratch.path.appending("app.tar").string
        let saved = try json(
            try unionmount(
                "store", "export-image", "--root", root, "--docker-archive", archive, "--tag", "demo/app:saved",
                "--json",
                "demo/app:1"))
        #expect(saved["tag"] as? String == "demo/app:saved")

        let top = try #require((image["layers"] as? [String])?.first)
        let layerFile = scratch.path.appending("top.tar").string
        let layer = try json(
            try unionmount("store", "export-layer", "--root", root, "--uncompressed", "--json", top, layerFile))
        #expect(layer["digest"] as? String == layer["diffID"] as? String)
        #expect(layer["entries"] as? Int == 2)

        for bad in [
            ["store", "export-image", "--root", root, "--docker-archive", archive, "--zstd", "demo/app:1"],
            ["store", "export-image", "--root", root, "demo/app:1"],
            ["store", "commit", "--root", root, "--as", "x", "--as-image", "demo/app:2", "c1"],
        ] {
            #expect(try runProcess(try Examples.path("unionmount"), bad).status == 64, "\(bad)")
        }
        let missing = try runProcess(
            try Examples.path("unionmount"),
            ["store", "export-image", "--root", root, "--oci-layout", layout.string, "no/such:1"])
        #expect(missing.status == 1)
    }
}
