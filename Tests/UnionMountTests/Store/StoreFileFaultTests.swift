#if ENABLE_MOCKING
    import SystemPackage
    import Testing

    @testable import UnionMount
    @testable import UnionMountStore

    /// File-system failures injected at the one layer every store file call goes through (``FileSystemFaults``):
    /// each one surfaces as the `UnionMountError` naming the step, and leaves nothing half-made behind. No mounts
    /// are involved, so these run unprivileged too.
    @Suite struct StoreFileFaultTests {
        let scratch: Scratch
        let root: FilePath
        let store: LayerStore

        init() throws {
            scratch = try Scratch("store-faults")
            root = scratch.path.appending("store")
            store = try LayerStore.create(at: root, features: StoreBackendTests.features())
            try store.createLayer("base") { try writeFile($0.appending("f"), "base") }
        }

        @Test("a failing commit rename is the renameat2 error, and the layer does not appear")
        func commitRenameFails() throws {
            let faults = FileSystemFaults { call in
                call.name == "renameat2" && call.path?.lastComponent?.string.hasPrefix("new.") == true
                    ? .noSpace : nil
            }
            let error = thrown {
                try faults.run {
                    try store.createLayer("new", parent: "base") { try writeFile($0.appending("g"), "g") }
                }
            }
            #expect(error?.systemCall == "renameat2")
            #expect(error?.errno == .noSpace)
            #expect(faults.calls.contains { $0.name == "syncfs" })
            #expect(try store.layers().map(\.id) == ["base"])
            #expect(try LayerStore(opening: root, features: StoreBackendTests.features()).check().isEmpty)
        }

        @Test("a failing fsync of a record is the fsync error, and the old record stays whole")
        func recordSyncFails() throws {
            let file = root.appending("probe.conf")
            try StoreRecord([("id", "old")]).write(to: file)
            let faults = FileSystemFaults { $0.name == "fsync" ? .ioError : nil }
            let error = thrown { try faults.run { try StoreRecord([("id", "new")]).write(to: file) } }
            #expect(error?.systemCall == "fsync")
            #expect(error?.errno == .ioError)
            #expect(try StoreRecord.read(file)?["id"] == "old")
        }

        @Test("an unreadable directory while listing layers is the opendir error naming it")
        func listingFails() throws {
            let layers = root.appending("layers")
            let faults = FileSystemFaults { $0.name == "opendir" && $0.path == layers ? .permissionDenied : nil }
            let error = thrown { try faults.run { _ = try store.layers() } }
            #expect(error?.systemCall == "opendir")
            #expect(error?.errno == .permissionDenied)
            #expect(error?.input == layers.readable)
        }

        @Test("outside run(_:) nothing is recorded or failed")
        func scopedToTheTask() throws {
            let faults = FileSystemFaults { _ in .ioError }
            #expect(try store.layers().map(\.id) == ["base"])
            #expect(faults.calls.isEmpty)
        }
    }
#endif
