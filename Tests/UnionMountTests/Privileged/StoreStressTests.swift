import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

extension PrivilegedTests {
    /// Many processes sharing one store at once.
    @Suite struct StoreStressTests {
        @Test("8 processes mount and unmount shared containers 2,000 times: no leaked mount, exact counts")
        func eightProcesses() throws {
            let scratch = try Scratch("store-stress")
            let root = scratch.path.appending("store")
            let store = try LayerStore.create(at: root)
            try store.createLayer("base") { try writeFile($0.appending("f"), "base") }
            try store.createLayer("app", parent: "base") { try writeFile($0.appending("g"), "app") }
            let ids = ["a", "b", "c"]
            for id in ids { try store.createContainer(id, image: "app") }
            let expected = [
                "base": try TreeManifest.read(store.layer("base").directory),
                "app": try TreeManifest.read(store.layer("app").directory),
            ]
            let tool = try Examples.path("unionmount")
            let workers = (0..<8).map { worker in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: tool)
                process.arguments =
                    [
                        "store", "churn", "--root", root.string, "--operations", "250", "--seed", String(worker),
                        "--json",
                    ]
                    + ids.flatMap { ["--container", $0] }
                process.standardOutput = FileHandle.nullDevice
                process.standardInput = FileHandle.nullDevice
                return process
            }
            for process in workers { try process.run() }
            // While they run, the store stays consistent for a reader.
            for _ in 0..<5 {
                let containers = try LayerStore(opening: root).containers()
                #expect(containers.allSatisfy { $0.mountCount >= 0 })
                Thread.sleep(forTimeInterval: 0.2)
            }
            for process in workers {
                process.waitUntilExit()
                #expect(process.terminationReason == .exit && process.terminationStatus == 0)
            }
            let reopened = try LayerStore(opening: root)
            #expect(reopened.repairReport.isClean, "\(reopened.repairReport)")
            #expect(try reopened.containers().map(\.mountCount) == [0, 0, 0])
            #expect(try MountTable.entries(under: root).isEmpty)
            #expect(try reopened.check().isEmpty)
            try StoreCrashTests.expectConsistent(root, expected: expected)
        }

        @Test("threads sharing one LayerStore value exclude each other (one lock descriptor, a mutex first)")
        func threadsShareOneStore() throws {
            let scratch = try Scratch("store-threads")
            let root = scratch.path.appending("store")
            let store = try LayerStore.create(at: root)
            try store.createLayer("base") { try writeFile($0.appending("f"), "base") }
            for id in ["a", "b"] { try store.createContainer(id, image: "base") }
            let failures = Failures()
            DispatchQueue.concurrentPerform(iterations: 4) { worker in
                let id = worker % 2 == 0 ? "a" : "b"
                for _ in 0..<40 {
                    do {
                        try store.mount(container: id)
                        try store.unmount(container: id)
                    } catch {
                        failures.add("\(error)")
                    }
                }
            }
            #expect(failures.all.isEmpty, "\(failures.all.prefix(3))")
            #expect(try store.containers().map(\.mountCount) == [0, 0])
            #expect(try MountTable.entries(under: root).isEmpty)
            #expect(try store.check().isEmpty)
        }

        /// Errors collected from several threads.
        final class Failures: @unchecked Sendable {
            private let lock = NSLock()
            private var list: [String] = []
            func add(_ failure: String) { lock.withLock { list.append(failure) } }
            var all: [String] { lock.withLock { list } }
        }
    }
}
