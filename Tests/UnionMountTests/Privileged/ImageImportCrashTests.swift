import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// `unionmount store import` as a separate process, end to end through the command line (one mount, to see
    /// the imported image for real).
    @Suite struct ImageImportCommandTests {
        static func unionmount(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
            try runProcess(
                try Examples.path("unionmount"), ["store"] + arguments,
                environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
        }

        static let layerTars: [[UInt8]] = [
            TestArchive([.directory("etc"), .file("etc/hostname", "base\n"), .file("etc/gone", "x")]).bytes(),
            TestArchive([.directory("etc"), .file("etc/motd", "second\n"), .file("etc/.wh.gone")]).bytes(),
            TestArchive([.directory("usr"), .file("usr/third", "third\n", mode: 0o4755)]).bytes(),
        ]

        @Test("store import, images, create-container --image, mount, remove-image, prune through the CLI")
        func commandLine() throws {
            let scratch = try Scratch("import-cli")
            let (layout, _) = try ImageImportRefusalTests.craftedLayout(
                at: scratch.path.appending("app"), layers: Self.layerTars)
            let root = scratch.path.appending("store").string
            let imported = try Self.unionmount([
                "import", "--root", root, "--oci-layout", layout.directory.string + ":t", "--platform",
                "linux/amd64", "--progress", "--json",
            ])
            try #require(imported.status == 0, "\(imported)")
            let result = try imported.decode(ImportedImage.self)
            #expect(result.image.name == "app:t")
            #expect(result.layers.map(\.outcome) == [.applied, .applied, .applied])
            #expect(imported.errorOutput.contains("app:t: 3/3 layers"), "\(imported.errorOutput)")
            let images = try Self.unionmount(["images", "--root", root, "--json"])
            #expect(try images.decode([StoreImage].self) == [result.image])

            let created = try Self.unionmount(["create-container", "--root", root, "--image", "app:t", "web"])
            #expect(created.status == 0, "\(created)")
            let store = try LayerStore(opening: FilePath(root))
            let merged = try store.mount(container: "web")
            #expect(readFile(merged.appending("etc/hostname")) == "base\n")
            #expect(readFile(merged.appending("etc/motd")) == "second\n")
            #expect(!fileExists(merged.appending("etc/gone")))
            #expect(try FileSystem.status(merged.appending("usr/third")).permissions & 0o4000 != 0)
            try store.unmount(container: "web")

            // The image goes, its layers stay for the container; once that goes, prune frees them.
            #expect(try Self.unionmount(["remove-image", "--root", root, "app:t"]).status == 0)
            #expect(try store.layers().count == 3)
            #expect(try Self.unionmount(["remove-container", "--root", root, "web"]).status == 0)
            let pruned = try Self.unionmount(["prune", "--root", root, "--json"])
            #expect(try pruned.decode([String: [String]].self)["removedLayers"]?.count == 3, "\(pruned)")
            #expect(try store.layers().isEmpty)
            let missing = try Self.unionmount([
                "import", "--root", root, "--oci-layout", layout.directory.string + ":nope",
            ])
            #expect(missing.status == 1 && missing.errorOutput.contains("nope"), "\(missing)")
        }
    }

    /// An import killed with `SIGKILL` at each of its step boundaries in turn (crash points, debug builds), each
    /// followed by a reopen. Host time about 3 s; listed in `.ci/run`'s guest skips with the store's other crash
    /// suites.
    @Suite struct ImageImportCrashTests {
        @Test(
            "SIGKILL at every step of an import: the reopen leaves no staging, no image; a re-import reuses the committed layers, prune clears them"
        )
        func killedImport() throws {
            let scratch = try Scratch("import-crash")
            let (layout, _) = try ImageImportRefusalTests.craftedLayout(
                at: scratch.path.appending("app"), layers: ImageImportCommandTests.layerTars)
            let root = scratch.path.appending("store")
            let trace = scratch.path.appending("trace")
            let arguments = [
                "import", "--root", root.string, "--oci-layout", layout.directory.string + ":t", "--platform",
                "linux/amd64",
            ]
            #expect(try ImageImportCommandTests.unionmount(["info", "--root", root.string]).status == 0)
            let probe = try ImageImportCommandTests.unionmount(
                arguments, environment: ["UNIONMOUNT_STORE_CRASH_TRACE": trace.string])
            try #require(probe.status == 0, "\(probe)")
            try #require(fileExists(trace), "crash points are compiled into debug builds only")
            let points = (readFile(trace) ?? "").split(separator: "\n").compactMap { $0.split(separator: " ").last }
                .map(String.init)
            for point in ["import-image.layer-committed", "import-image.layers-ready", "image.recorded"] {
                #expect(points.contains(point), "the import passes \(point): \(points)")
            }
            let cleanStore = try LayerStore(opening: root)
            try cleanStore.removeImage(named: "app:t")
            #expect(try cleanStore.layers().isEmpty)

            var killedAt: Set<String> = []
            for crashAt in 1...points.count {
                unlink(trace.string)
                let run = try ImageImportCommandTests.unionmount(
                    arguments,
                    environment: [
                        "UNIONMOUNT_STORE_CRASH_AT": String(crashAt), "UNIONMOUNT_STORE_CRASH_TRACE": trace.string,
                    ])
                let point =
                    (readFile(trace) ?? "").split(separator: "\n").last?.split(separator: " ").last
                    .map(String.init) ?? "?"
                #expect(run.status != 0, "crash point \(crashAt) (\(point)) was not reached: \(run)")
                killedAt.insert(point)

                let store = try LayerStore(opening: root)
                let problems = try store.check()
                #expect(problems.isEmpty, "after \(point): \(problems)")
                #expect(try StoreFiles.names(in: root.appending("staging")).isEmpty, "after \(point)")
                let recorded = try store.images().map(\.name)
                #expect(
                    recorded == (points[..<crashAt].contains("image.recorded") ? ["app:t"] : []),
                    "after \(point)")
                let committed = Set(try store.layers().map(\.id))
                if crashAt % 2 == 1 || !recorded.isEmpty {
                    // Imported again: what the killed process committed is reused, the rest applied.
                    let again = try store.importImage(
                        from: .ociLayout(layout.directory, reference: "t"),
                        options: ImageImportOptions(platform: .linuxAMD64))
                    #expect(Set(again.layers.filter { $0.outcome == .reused }.map(\.layerID)) == committed)
                    #expect(try store.check().isEmpty)
                    try store.removeImage(named: "app:t")
                } else {
                    // Not imported again: prune clears the committed layers.
                    #expect(Set(try store.prune()) == committed)
                }
                #expect(try store.layers().isEmpty, "after \(point)")
            }
            for point in [
                "staging.created", "layer.record-written", "layer.committed", "import-image.layer-committed",
                "import-image.layers-ready", "image.recorded",
            ] {
                #expect(killedAt.contains(point), "never killed at \(point)")
            }
        }
    }
}
