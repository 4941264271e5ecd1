import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// The layer store's idmapped containers for real: one image, two containers with different mappings mounted
    /// at once, and the repair of a mount killed while its trees were attached.
    @Suite(.enabled(if: KernelFeatures.current.idmappedLayers, "needs overlay over idmapped mounts (Linux 5.19+)"))
    struct IDMappedStoreTests {
        typealias Mounts = IDMappedLayerMounts

        /// A store (mode 0755 all the way, so a user namespace's root may pass) with a two-layer image: `root`
        /// (0:0) and `www` (33:33) in the top layer, `user` (1000:1000) below.
        static func imageStore(_ scratch: Scratch) throws -> (LayerStore, FilePath) {
            chmod(scratch.path.string, 0o755)
            let root = scratch.path.appending("store")
            let store = try LayerStore.create(at: root)
            let base = try store.beginLayer("base")
            try writeFile(base.directory.appending("user"), "user")
            chown(base.directory.appending("user").string, 1000, 1000)
            try base.commit()
            let top = try store.beginLayer("top", parent: "base")
            for (name, id) in [("root", 0), ("www", 33)] {
                try writeFile(top.directory.appending(name), name)
                chown(top.directory.appending(name).string, uid_t(id), gid_t(id))
            }
            try top.commit()
            for directory in [root, root.appending("containers")] { chmod(directory.string, 0o755) }
            return (store, root)
        }

        static func openContainerDirectories(_ root: FilePath, _ ids: [String]) {
            for id in ids { chmod(root.appending("containers/\(id)").string, 0o755) }
        }

        @Test(
            "two containers on one image with different mappings, mounted at once; records, owners, writes, no leftovers"
        )
        func twoContainers() throws {
            let scratch = try Scratch("idmap-store")
            let (store, root) = try Self.imageStore(scratch)
            let (a, b) = (Mounts.mapping(100000), Mounts.mapping(200000))
            let first = try store.createContainer("a", image: "top", idMapping: a)
            let second = try store.createContainer("b", image: "top", idMapping: b)
            Self.openContainerDirectories(root, ["a", "b"])
            #expect(try LayerStore(opening: root).container("a").idMapping == a)
            #expect(Mounts.owner(first.upperDirectory) == "100000:100000")
            #expect(Mounts.owner(second.workDirectory) == "200000:200000")
            guard case .overlay(let spec) = try store.unionSpec(container: "b") else {
                Issue.record("not an overlay spec")
                return
            }
            #expect(spec.idMapping == b)

            let descriptorsBefore = Mounts.leftoverDescriptors(under: root.appending("idmapped"))
            let mergedA = try store.mount(container: "a")
            defer { _ = try? store.unmount(container: "a", lazy: true) }
            let mergedB = try store.mount(container: "b")
            defer { _ = try? store.unmount(container: "b", lazy: true) }
            let names = ["root", "www", "user"]
            #expect(
                names.map { Mounts.owner(mergedA.appending($0)) } == [
                    "100000:100000", "100033:100033", "101000:101000",
                ])
            #expect(
                names.map { Mounts.owner(mergedB.appending($0)) } == [
                    "200000:200000", "200033:200033", "201000:201000",
                ])
            #expect(Mounts.owner(try store.layer("top").directory.appending("www")) == "33:33")
            #expect(try Mounts.ownersInside(a, mergedA, names) == ["0:0", "33:33", "1000:1000"])
            #expect(try Mounts.ownersInside(b, mergedB, names) == ["0:0", "33:33", "1000:1000"])
            try Mounts.writeInside(b, mergedB, "written")
            #expect(Mounts.owner(second.upperDirectory.appending("written")) == "200000:200000")

            #expect(try Mounts.mountsBelow(root.appending("idmapped")).isEmpty)
            #expect(((try? FileSystem.names(in: root.appending("idmapped"))) ?? []).isEmpty)
            #expect(Mounts.leftoverDescriptors(under: root.appending("idmapped")) == descriptorsBefore)
            #expect(try store.check().isEmpty)
            try store.unmount(container: "a")
            try store.unmount(container: "b")
            #expect(try Mounts.mountsBelow(root).isEmpty)
        }

        @Test("store create-container --uid-map/--gid-map records the mapping; bad maps exit 64")
        func commandLine() throws {
            let scratch = try Scratch("idmap-store-cli")
            let (_, root) = try Self.imageStore(scratch)
            let made = try StoreCrashTests.store(
                [
                    "create-container", "--root", root.string, "--image", "top", "--uid-map", "0:300000:65536",
                    "--gid-map", "0:400000:65536", "c",
                ])
            #expect(made.0 == .exited(0), "\(made.1)")
            let container = try LayerStore(opening: root).container("c")
            #expect(
                container.idMapping
                    == .ranges(
                        uids: [IDRange(inside: 0, outside: 300000, count: 65536)],
                        gids: [IDRange(inside: 0, outside: 400000, count: 65536)]))
            #expect(Mounts.owner(container.upperDirectory) == "300000:400000")
            let listed = try runProcess(try Examples.path("unionmount"), ["store", "containers", "--root", root.string])
            #expect(listed.output.contains("uidmap=0:300000:65536  gidmap=0:400000:65536"), "\(listed)")
            for bad in [["--uid-map", "0:1"], ["--gid-map", "0:1:1"], ["--uid-map", "0:1:5", "--uid-map", "2:9:1"]] {
                let refused = try StoreCrashTests.store(
                    ["create-container", "--root", root.string, "--image", "top"] + bad + ["d"])
                #expect(refused.0 == .exited(64), "\(bad): \(refused.1)")
            }
            #expect(try LayerStore(opening: root).containers().map(\.id) == ["c"])
        }

        @Test("refused: a user namespace file as a store mapping, a bad mapping, a backend that cannot idmap")
        func refusals() throws {
            let scratch = try Scratch("idmap-store-refusals")
            let (store, _) = try Self.imageStore(scratch)
            #expect(
                thrown { try store.createContainer("n", image: "top", idMapping: .userNamespace("/proc/1/ns/user")) }?
                    .code == .unsupported)
            let overlapping = IDMapping.ranges(
                uids: [IDRange(inside: 0, outside: 1, count: 10), IDRange(inside: 5, outside: 100, count: 1)],
                gids: [IDRange(inside: 0, outside: 1, count: 10)])
            #expect(
                thrown { try store.createContainer("o", image: "top", idMapping: overlapping) }?.code == .invalidSpec)
            #expect(try store.containers().isEmpty)
            if KernelFeatures.current.fuse && KernelFeatures.current.fuseOverlayfsProgram != nil {
                let fuse = try LayerStore.create(at: scratch.path.appending("fuse"), backend: .fuseOverlayfs)
                #expect(
                    thrown { try fuse.createContainer("f", image: nil, idMapping: Mounts.mapping(100000)) }?.code
                        == .unsupported)
            }
        }

        @Test("a mount killed with its trees attached: the next open detaches them, undoes the mount, leaves nothing")
        func killedWhileAttached() throws {
            let scratch = try Scratch("idmap-store-crash")
            let (store, root) = try Self.imageStore(scratch)
            try store.createContainer("c", image: "top", idMapping: Mounts.mapping(100000))
            let trace = scratch.path.appending("trace")
            // The attached rung in the child even where this kernel takes detached trees (debug builds' hook).
            var environment = ["UNIONMOUNT_STORE_CRASH_TRACE": trace.string, "UNIONMOUNT_TEST_ATTACHED_TREES": "1"]
            let (traced, traceErrors) = try StoreCrashTests.store(
                ["mount", "c", "--root", root.string], environment: environment)
            #expect(traced == .exited(0), "\(traceErrors)")
            let points = (readFile(trace) ?? "").split(separator: "\n").map {
                $0.split(separator: " ").last.map(String.init) ?? ""
            }
            let index = try #require(points.firstIndex(of: "idmap.mounted"), "points passed: \(points)")
            try store.unmount(container: "c")

            environment["UNIONMOUNT_STORE_CRASH_AT"] = String(index + 1)
            unlink(trace.string)
            let (ending, errors) = try StoreCrashTests.store(
                ["mount", "c", "--root", root.string], environment: environment)
            #expect(ending == .killed, "\(errors)")
            let attached = try Mounts.mountsBelow(root.appending("idmapped"))
            #expect(attached.count == 3, "the scratch tmpfs and the two layers' trees on it at the kill: \(attached)")

            let reopened = try LayerStore(opening: root)
            let actions = reopened.repairReport.actions
            #expect(
                actions.filter { $0.hasPrefix("detached the leftover idmapped layer attachment") }.count == 3,
                "\(actions)")
            #expect(actions.contains("undid the interrupted mount of c"), "\(actions)")
            #expect(try Mounts.mountsBelow(root).isEmpty)
            #expect(((try? FileSystem.names(in: root.appending("idmapped"))) ?? []).isEmpty)
            #expect(try reopened.check().isEmpty)
            let merged = try reopened.mount(container: "c")
            #expect(Mounts.owner(merged.appending("www")) == "100033:100033")
            try reopened.unmount(container: "c")
        }
    }
}
