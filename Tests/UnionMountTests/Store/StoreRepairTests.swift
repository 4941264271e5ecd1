import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// Crash debris, made by hand the way a killed process leaves it, and repaired by the next open. No mounts are
/// involved, so these run unprivileged too; the crash tests with real kills and mounts are in `StoreCrashTests`.
@Suite struct StoreRepairTests {
    let scratch: Scratch
    let root: FilePath
    let store: LayerStore

    init() throws {
        scratch = try Scratch("store-repair")
        root = scratch.path.appending("store")
        store = try LayerStore.create(at: root, features: StoreBackendTests.features())
        try store.createLayer("base") { try writeFile($0.appending("f"), "base") }
        try store.createContainer("c", image: "base")
    }

    func reopen() throws -> LayerStore { try LayerStore(opening: root, features: StoreBackendTests.features()) }

    @Test func cleanStoreNeedsNothing() throws {
        let reopened = try reopen()
        #expect(reopened.repairReport.isClean)
        #expect(try reopened.check().isEmpty)
    }

    @Test("a half-created layer whose builder died is removed; a live builder's is kept")
    func stagingDebris() throws {
        try makeDirectories(root.appending("staging/dead.0123/diff"))
        try writeFile(root.appending("staging/dead.0123/diff/f"), "x")
        let live = try store.beginLayer("live")
        try writeFile(live.directory.appending("g"), "y")
        #expect(try store.check() == ["staging/dead.0123 is left over"])
        let reopened = try reopen()
        #expect(reopened.repairReport.actions == ["removed the half-created staging/dead.0123"])
        #expect(!fileExists(root.appending("staging/dead.0123")))
        #expect(fileExists(live.directory.appending("g")))
        let layer = try live.commit()
        #expect(readFile(layer.directory.appending("g")) == "y")
        #expect(try reopened.layers().map(\.id) == ["base", "live"])
    }

    @Test func trashDebrisIsRemoved() throws {
        try makeDirectories(root.appending("trash/old.9/diff/deep/er"))
        let reopened = try reopen()
        #expect(reopened.repairReport.actions == ["removed the half-removed trash/old.9"])
        #expect(try StoreFiles.names(in: root.appending("trash")).isEmpty)
    }

    @Test("a count for a mount that is gone is reset")
    func staleCount() throws {
        try writeFile(root.appending("containers/c/mounts"), "count=3\n")
        let reopened = try reopen()
        #expect(reopened.repairReport.actions == ["reset the stale count 3 of c, which is not mounted"])
        #expect(try reopened.container("c").mountCount == 0)
    }

    @Test("an interrupted mount is undone, an interrupted unmount finished")
    func pendingOperations() throws {
        try writeFile(root.appending("containers/c/mounts"), "count=0\npending=mount\n")
        #expect(try store.check() == ["container c has a pending mount"])
        var reopened = try reopen()
        #expect(reopened.repairReport.actions == ["undid the interrupted mount of c"])
        #expect(readFile(root.appending("containers/c/mounts")) == "count=0000000000\npending=none   \n")
        try writeFile(root.appending("containers/c/mounts"), "count=1\npending=unmount\n")
        reopened = try reopen()
        #expect(reopened.repairReport.actions == ["finished the interrupted unmount of c"])
        #expect(try reopened.container("c").mountCount == 0)
        try writeFile(root.appending("containers/c/mounts"), "count=1\npending=fly\n")
        reopened = try reopen()
        #expect(reopened.repairReport.problems.count == 1)
        #expect(readFile(root.appending("containers/c/mounts")) == "count=0000000000\npending=none   \n")
        #expect(try reopened.check().isEmpty)
    }

    @Test func temporaryRecordsAndMissingDirectories() throws {
        try writeFile(root.appending("containers/c/mounts.tmp"), "count=")
        try writeFile(root.appending("store.conf.tmp"), "form")
        #expect(rmdir(root.appending("containers/c/merged").string) == 0)
        let reopened = try reopen()
        #expect(!fileExists(root.appending("containers/c/mounts.tmp")))
        #expect(!fileExists(root.appending("store.conf.tmp")))
        #expect(fileExists(root.appending("containers/c/merged")))
        #expect(reopened.repairReport.actions.count == 3)
        #expect(try reopened.check().isEmpty)
    }

    @Test("an init layer whose container never appeared is removed")
    func orphanInitLayer() throws {
        try store.createContainer("d", image: "base") { try writeFile($0.appending("hostname"), "d") }
        #expect(try store.layer("d-init").owner == "d")
        // What a crash between the two renames of createContainer leaves: the init layer, no container.
        #expect(rename(root.appending("containers/d").string, root.appending("trash/d.1").string) == 0)
        let reopened = try reopen()
        #expect(reopened.repairReport.actions.contains("removed the init layer d-init of the vanished container d"))
        #expect(thrown { try reopened.layer("d-init") }?.code == .notFound)
    }

    @Test("damaged records are reported, not guessed at")
    func damagedRecords() throws {
        try writeFile(root.appending("layers/base/layer.conf"), "id=base\ndepth=x\n")
        let reopened = try reopen()
        let problems = try reopened.check()
        #expect(problems.contains { $0.contains("depth") })
        #expect(thrown { try reopened.layer("base") }?.code == .malformedInput)
        // A container record whose chain does not start at its image.
        try writeFile(root.appending("containers/c/container.conf"), "id=c\nimage=base\nlayers=other base\n")
        #expect(thrown { try reopened.container("c") }?.code == .malformedInput)
        // A bad id read back from a record is damaged input naming the file, not a bad argument.
        let record = root.appending("containers/c/container.conf")
        try writeFile(record, "id=c\nimage=base\nlayers=base ../x\n")
        let badLayer = thrown { try reopened.container("c") }
        #expect(badLayer?.code == .malformedInput)
        #expect(badLayer?.input == record.string)
        #expect(badLayer?.message.contains("layers") == true)
    }

    @Test("layers: ids, parents, chains, users and removal")
    func layerLifecycle() throws {
        #expect(thrown { try store.createLayer("base") { _ in } }?.code == .alreadyExists)
        #expect(thrown { try store.createLayer("x", parent: "missing") { _ in } }?.code == .notFound)
        #expect(thrown { try store.createLayer("../x") { _ in } }?.code == .invalidArgument)
        try store.createLayer("app", parent: "base") { try writeFile($0.appending("g"), "app") }
        #expect(try store.chain("app").map(\.id) == ["app", "base"])
        #expect(try store.layer("app").depth == 2)
        #expect(try store.users(ofLayer: "base") == ["layer app", "container c"])
        #expect(thrown { try store.removeLayer("base") }?.code == .inUse)
        try store.removeLayer("app")
        try store.removeContainer("c")
        try store.removeLayer("base")
        #expect(try store.layers().isEmpty)
        #expect(try store.containers().isEmpty)
        #expect(try StoreFiles.names(in: root.appending("trash")).isEmpty)
        #expect(try store.check().isEmpty)
    }

    @Test("a populate that throws leaves nothing behind")
    func failedPopulate() throws {
        struct Failure: Error {}
        #expect(throws: Failure.self) { try store.createLayer("x") { _ in throw Failure() } }
        #expect(throws: Failure.self) { try store.createContainer("y", image: "base") { _ in throw Failure() } }
        #expect(try StoreFiles.names(in: root.appending("staging")).isEmpty)
        #expect(thrown { try store.layer("x") }?.code == .notFound)
        #expect(thrown { try store.container("y") }?.code == .notFound)
    }

    @Test("chains stop at the kernel's 500 layers")
    func depthLimit() throws {
        var parent = "base"
        for index in 2...500 {
            try store.beginLayer("l\(index)", parent: parent).commit()
            parent = "l\(index)"
        }
        #expect(try store.layer("l500").depth == 500)
        #expect(try store.chain("l500").count == 500)
        #expect(thrown { try store.beginLayer("l501", parent: "l500") }?.code == .invalidArgument)
        // No room for an init layer on a full chain either.
        #expect(thrown { try store.createContainer("full", image: "l500") { _ in } }?.code == .invalidArgument)
    }
}

/// The container mount record: fixed width, written in place, read back exactly.
@Suite struct StoreMountStateTests {
    @Test(arguments: [
        StoreMountState(count: 0), StoreMountState(count: 1, pending: .unmount),
        StoreMountState(count: 0, pending: .mount),
        StoreMountState(count: 12345),
    ])
    func roundTrip(state: StoreMountState) throws {
        let scratch = try Scratch("mount-state")
        let file = scratch.path.appending("mounts")
        try state.write(to: file)
        #expect(try StoreMountState.read(file) == state)
        #expect(readFile(file)?.utf8.count == StoreMountState.width)
        // Overwritten in place by a different state; a longer file written by hand is cut to the record.
        try writeFile(file, "count=7\npending=mount\n" + String(repeating: "x", count: 40))
        try StoreMountState(count: 2).write(to: file)
        #expect(try StoreMountState.read(file) == StoreMountState(count: 2))
    }
}

/// The open form of the mount record a mount or unmount works through, and the store's caches of paths and
/// parsed records.
@Suite struct StoreMountRecordFileTests {
    @Test("read once, rewritten in place; a record of another width is cut; a damaged one counts 0 and is replaced")
    func readAndRewrite() throws {
        let scratch = try Scratch("mount-record-file")
        let file = scratch.path.appending("mounts")
        try StoreMountState(count: 4, pending: .mount).write(to: file)
        do {
            var record = try StoreMountRecordFile(file)
            let exists = record.exists
            let state = try record.state.get()
            #expect(exists)
            #expect(state == StoreMountState(count: 4, pending: .mount))
            try record.write(StoreMountState(count: 5))
            try record.write(StoreMountState(count: 6, pending: .unmount))
        }
        #expect(try StoreMountState.read(file) == StoreMountState(count: 6, pending: .unmount))
        // Written by hand, shorter and longer than the fixed width, and damaged beyond one read's buffer.
        for text in ["count=3\n", "count=3\npending=none\n" + String(repeating: "#", count: 100)] {
            try writeFile(file, text)
            var record = try StoreMountRecordFile(file)
            let (count, state) = (record.count, record.state)
            if text.count < 40 {
                #expect(count == 3)
            } else {
                #expect(count == 0, "a damaged record counts 0")
                #expect(throws: UnionMountError.self) { try state.get() }
            }
            try record.write(StoreMountState(count: 1))
            #expect(readFile(file) == "count=0000000001\npending=none   \n")
        }
        // A missing record reads as 0 and is created whole by the first write.
        unlink(file.string)
        var record = try StoreMountRecordFile(file)
        let (exists, count) = (record.exists, record.count)
        #expect(!exists && count == 0)
        try record.write(StoreMountState(count: 2))
        #expect(try StoreMountState.read(file) == StoreMountState(count: 2))
    }

    @Test("a container record replaced behind the store's back is read anew, never answered from the cache")
    func replacedRecordIsReadAgain() throws {
        let scratch = try Scratch("record-cache")
        let root = scratch.path.appending("store")
        let store = try LayerStore.create(at: root, features: StoreBackendTests.features())
        try store.createLayer("base") { try writeFile($0.appending("f"), "base") }
        try store.createLayer("other") { try writeFile($0.appending("g"), "other") }
        try store.createContainer("c", image: "base")
        func lowers() throws -> [FilePath] {
            guard case .overlay(let spec) = try store.unionSpec(container: "c") else { return [] }
            return spec.lowerDirectories
        }
        #expect(try lowers() == [root.appending("layers/base/diff")])
        #expect(try lowers() == [root.appending("layers/base/diff")])  // from the cache
        // Another process (here: by hand) replaces the record.
        try writeFile(root.appending("containers/c/container.conf"), "id=c\nimage=other\nlayers=other\n")
        let before = try store.container("c")
        #expect(before.image == "other")
        #expect(try lowers() == [root.appending("layers/other/diff")])
        try writeFile(root.appending("containers/c/container.conf"), "id=c\nimage=../x\nlayers=../x\n")
        #expect(throws: UnionMountError.self) { try store.unionSpec(container: "c") }
    }
}

/// The store lock within one process: copies of one `LayerStore` share one open lock file, so a mutex must
/// exclude their threads; two `LayerStore` values open two descriptions, which flock(2) excludes.
@Suite struct StoreLockTests {
    /// A counter bumped by read, pause, write: any two bodies that overlap lose an update.
    final class Counter: @unchecked Sendable {
        var value = 0
    }

    @Test("threads of one process, on one store value and on two, never run locked bodies at once")
    func lockedBodiesDoNotOverlap() throws {
        let scratch = try Scratch("store-lock")
        let root = scratch.path.appending("store")
        let store = try LayerStore.create(at: root, features: StoreBackendTests.features())
        let other = try LayerStore(opening: root, features: StoreBackendTests.features())
        let counter = Counter()
        let rounds = 50
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            let mine = worker == 3 ? other : store
            for _ in 0..<rounds {
                try? mine.locked { () throws(UnionMountError) -> Void in
                    let seen = counter.value
                    usleep(20)
                    counter.value = seen + 1
                }
            }
        }
        #expect(counter.value == 4 * rounds)
    }
}
