import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// The layer store on real mounts: an OCI-style image of five layers, an init layer and a writable layer on
    /// every backend this machine has.
    @Suite struct LayerStoreTests {
        /// Imports the fixture image into a new store of `backend`, mounts a container, runs
        /// ``ImageFixture/exercise`` in it, and returns its merged view and change list.
        func exercise(
            _ backend: LayerStoreBackend, fixture: ImageFixture, scratch: Scratch
        ) throws -> (TreeManifest, [LayerChange]) {
            let store = try LayerStore.create(at: scratch.path.appending("store-\(backend.rawValue)"), backend: backend)
            #expect(store.backend == backend)
            var parent: String?
            for (name, directory) in zip(ImageFixture.layerNames, fixture.layers) {
                try store.importLayer(name, parent: parent, from: directory, format: .aufs)
                parent = name
            }
            try store.createContainer("c1", image: "l5") { diff in
                rmdir(diff.string)
                try LayerTree.copy(from: fixture.initLayer, to: diff)
            }
            let merged = try store.mount(container: "c1")
            let entry = try #require(try mountEntry(at: merged))
            #expect(entry.filesystemType == (backend == .fuseOverlayfs ? "fuse.fuse-overlayfs" : "overlay"))
            let script = try runProcess("/bin/bash", ["-c", ImageFixture.exercise, "exercise", merged.string])
            #expect(script.status == 0, "\(script.errorOutput)")
            let manifest = try TreeManifest.read(merged, options: ImageFixture.mergedViewOptions)
            let changes = try store.changes(container: "c1")
            #expect(try store.unmount(container: "c1"))
            #expect(try mountEntry(at: merged) == nil)
            #expect(try store.check().isEmpty)
            return (manifest, changes)
        }

        @Test("the same image gives the same merged view and change list on every backend")
        func sameViewOnEveryBackend() throws {
            let scratch = try Scratch("store-backends")
            let fixture = try ImageFixture(in: scratch.path.appending("image"))
            // Kernel overlay is the reference; without it (a kernel booted without the module) fuse-overlayfs is,
            // and the backends that need kernel overlay are left out.
            let reference: LayerStoreBackend = KernelOverlay.available ? .overlay : .fuseOverlayfs
            let (overlay, overlayChanges) = try exercise(reference, fixture: fixture, scratch: scratch)

            // What the merged view must show, from the layers' definitions and the exercise.
            let byPath = Dictionary(uniqueKeysWithValues: overlay.entries.map { ($0.path.string, $0) })
            #expect(byPath["etc/hostname"] != nil)
            #expect(byPath["var/log"] == nil)
            #expect(byPath["usr/share/doc/readme"] == nil)
            #expect(byPath["usr/share/doc/readme2"] != nil)
            #expect(byPath["opt/app/a"] == nil && byPath["opt/app/c"] == nil && byPath["opt/app/z"] != nil)
            #expect(byPath["lib/libc.so"]?.mode == 0o600)
            #expect(byPath["lib64"]?.symlinkTarget == Array("lib".utf8))
            #expect(byPath["run/fifo"]?.type == .fifo)
            #expect(byPath["noted"]?.xattrs == [TreeManifest.Xattr(name: "user.note", value: Array("v".utf8))])
            #expect(byPath["odd name"] == nil && byPath["co,lo:n=\\"] != nil)
            #expect(overlay.entries.contains { $0.path.bytes == [0x63, 0x61, 0x66, 0xE9] })

            let kinds = Dictionary(uniqueKeysWithValues: overlayChanges.map { ($0.path.string, $0.kind) })
            #expect(kinds["new"] == .added)
            #expect(kinds["link-to-new"] == .added)
            #expect(kinds["home/user/.profile"] == .added)
            #expect(kinds["etc/passwd"] == .modified)
            #expect(kinds["lib/libc.so"] == .modified)
            #expect(kinds["opt/app"] == .modified)
            #expect(kinds["opt/app/z"] == .added)
            #expect(kinds["opt/app/c"] == .deleted)
            #expect(kinds["usr/share/doc/readme"] == .deleted)
            #expect(kinds["odd name"] == .deleted)
            #expect(kinds["etc/hostname"] == nil, "the init layer is below the container's own layer")

            guard reference == .overlay else { return }
            if KernelFeatures.current.fuseOverlayfsProgram != nil && KernelFeatures.current.fuse {
                let (fuse, fuseChanges) = try exercise(.fuseOverlayfs, fixture: fixture, scratch: scratch)
                #expect(fuse.differences(from: overlay).isEmpty, "\(fuse.differences(from: overlay))")
                #expect(fuseChanges == overlayChanges)
            } else {
                Issue.record("fuse-overlayfs is not installed (apt-get install fuse-overlayfs); backend not compared")
            }

            if let reason = UnprivilegedDemo.unavailableReason {
                Issue.record("rootless overlay not compared: \(reason)")
                return
            }
            let (rootless, rootlessChanges, backend) = try rootlessRun(fixture: fixture, scratch: scratch)
            #expect(backend == "overlay-userxattr")
            #expect(rootless.differences(from: overlay).isEmpty, "\(rootless.differences(from: overlay))")
            #expect(rootlessChanges == overlayChanges)
        }

        /// The same steps as ``exercise(_:fixture:scratch:)``, by `unionmount store …` as uid 65534 inside
        /// `unshare --user --map-root-user --mount`: rootless overlay with `userxattr`.
        func rootlessRun(fixture: ImageFixture, scratch: Scratch) throws -> (TreeManifest, [LayerChange], String) {
            let nobody = try scratch.directory("rootless")
            let image = nobody.appending("image")
            #expect(try runProcess("/bin/cp", ["-a", fixture.directory.string, image.string]).status == 0)
            #expect(try runProcess("/bin/chown", ["-R", "65534:65534", nobody.string]).status == 0)
            chmod(scratch.path.string, 0o755)
            let tool = Examples.directory.appending("unionmount").string
            let script = """
                set -eu
                tool=$1; root=$2; image=$3; out=$4
                parent=""
                for layer in l1 l2 l3 l4 l5; do
                    "$tool" store create-layer --root "$root" ${parent:+--parent "$parent"} --from "$image/$layer" "$layer" >/dev/null
                    parent=$layer
                done
                "$tool" store create-container --root "$root" --image l5 --init-from "$image/init" c1 >/dev/null
                merged=$("$tool" store mount --root "$root" c1)
                bash -c "$5" exercise "$merged"
                "$tool" manifest --json --no-times --no-hard-links --ignore-xattr-prefix trusted.overlay. \
                    --ignore-xattr-prefix user.overlay. --ignore-xattr-prefix user.fuseoverlayfs. \
                    --ignore-xattr-prefix security. "$merged" > "$out/manifest.json"
                "$tool" store changes --root "$root" --json c1 > "$out/changes.json"
                "$tool" store unmount --root "$root" c1 >/dev/null
                "$tool" store check --root "$root"
                "$tool" store info --root "$root" --json > "$out/info.json"
                """
            let result = try runProcess(
                UnprivilegedDemo.dropPrivileges![0],
                Array(UnprivilegedDemo.dropPrivileges!.dropFirst()) + [
                    "/usr/bin/unshare", "--user", "--map-root-user", "--mount", "/bin/bash", "-c", script, "rootless",
                    tool, nobody.appending("store").string, image.string, nobody.string, ImageFixture.exercise,
                ])
            try #require(result.status == 0, "\(result.errorOutput)")
            let decoder = JSONDecoder()
            func read(_ name: String) throws -> Data {
                try Data(contentsOf: URL(fileURLWithPath: nobody.appending(name).string))
            }
            let manifest = try decoder.decode(TreeManifest.self, from: read("manifest.json"))
            let changes = try decoder.decode([LayerChange].self, from: read("changes.json"))
            struct Info: Decodable { var backend: String }
            return (manifest, changes, try decoder.decode(Info.self, from: read("info.json")).backend)
        }

        @Test("mounts are counted; layers in use, by the store or by any mount, are never removed")
        func referenceCountsAndUsers() throws {
            let scratch = try Scratch("store-refs")
            let store = try LayerStore.create(at: scratch.path.appending("store"))
            try store.createLayer("base") { try writeFile($0.appending("f"), "base") }
            try store.createContainer("c", image: "base")
            let merged = try store.mount(container: "c")
            #expect(readFile(merged.appending("f")) == "base")
            #expect(try store.mount(container: "c") == merged)
            #expect(try store.container("c").mountCount == 2)
            #expect(try !store.unmount(container: "c"))
            #expect(MountTable.isMountPoint(merged))
            #expect(thrown { try store.removeContainer("c") }?.code == .inUse)
            let users = try store.users(ofLayer: "base")
            #expect(users.first == "container c")
            // The mount itself is found through the mount table's branches, which fuse-overlayfs mounts do not show
            // (a kernel without overlay gives the store that backend); the container record still protects it.
            #expect(users.contains { $0.contains(merged.string) } == (store.backend != .fuseOverlayfs))
            #expect(try store.unmount(container: "c"))
            #expect(!MountTable.isMountPoint(merged))
            #expect(thrown { try store.unmount(container: "c") }?.code == .notMounted)

            // A mount the store did not make, using a store layer as a lower layer, keeps the layer too: a kernel
            // overlay mount, whose branches the mount table shows (not a fuse-overlayfs one: see above).
            try store.removeContainer("c")
            guard KernelOverlay.available else { return }
            let layer = try store.layer("base")
            let outside = try scratch.directory("outside")
            let spec = OverlaySpec(lowerDirectories: [layer.directory, store.emptyDirectory])
            try Mounter().withMount(.overlay(spec), at: outside) { _ in
                let error = thrown { try store.removeLayer("base") }
                #expect(error?.code == .inUse)
                #expect(error?.message.contains(outside.string) == true)
            }
            try store.removeLayer("base")
            #expect(try store.check().isEmpty)
        }

        @Test("a container is mounted on a 499-layer chain plus its init layer (the kernel's 500)")
        func fiveHundredLayers() throws {
            let scratch = try Scratch("store-500")
            let store = try LayerStore.create(at: scratch.path.appending("store"))
            var parent: String?
            for index in 1...499 {
                let builder = try store.beginLayer("layer-\(index)", parent: parent)
                try writeFile(builder.directory.appending("only-\(index)"), "\(index)")
                try writeFile(builder.directory.appending("top"), "\(index)")
                try builder.commit()
                parent = "layer-\(index)"
            }
            try store.createContainer("c", image: parent) { try writeFile($0.appending("init"), "init") }
            let merged = try store.mount(container: "c")
            #expect(readFile(merged.appending("top")) == "499")
            #expect(readFile(merged.appending("only-1")) == "1")
            #expect(readFile(merged.appending("init")) == "init")
            let report = try #require(try MountTable.reports().first { $0.mountPoint == merged })
            // fuse-overlayfs mounts (the backend on a kernel without overlay) show no branches in mountinfo.
            #expect(report.branches.count == (store.backend == .fuseOverlayfs ? 0 : 501))
            try writeFile(merged.appending("written"), "through")
            #expect(readFile(try store.container("c").upperDirectory.appending("written")) == "through")
            #expect(try store.unmount(container: "c"))
        }
    }
}
