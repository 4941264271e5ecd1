import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

extension PrivilegedTests {
    /// The round trip through real mounts: a container committed as an image, exported to an OCI layout,
    /// imported into a new store and mounted there shows what the original container shows mounted.
    @Suite struct ImageExportMounts {
        @Test("import(export(commit(c))) mounts to the same tree as c")
        func mountedRoundTrip() throws {
            let fixture = try ExportFixture("export-mount", features: .current)
            let layout = fixture.scratch.path.appending("layout")
            try fixture.store.exportImage(named: ExportFixture.appName, to: .ociLayout(layout, tag: "v2"))
            let fresh = try LayerStore.create(at: fixture.scratch.path.appending("fresh"))
            try ExportFixture.importImage(layout, tag: "v2", into: fresh, as: "again/app:2")
            _ = try fresh.createContainer("c2", image: "again/app:2")
            let original = try fixture.store.mount(container: "c")
            defer { _ = try? fixture.store.unmount(container: "c") }
            let copy = try fresh.mount(container: "c2")
            defer { _ = try? fresh.unmount(container: "c2") }
            // The roots differ (each container's own writable layer root); everything below them is compared.
            let options = TreeManifest.Options.ignoringUnionXattrs
            let mine = try TreeManifest.read(original, options: options).entries.filter { $0.path != "." }
            let theirs = try TreeManifest.read(copy, options: options).entries.filter { $0.path != "." }
            #expect(mine.count > 10)
            #expect(theirs == mine, "\(TreeManifest(entries: theirs).differences(from: TreeManifest(entries: mine)))")
            #expect(try fresh.unmount(container: "c2") && (try fixture.store.unmount(container: "c")))
        }
    }
}
