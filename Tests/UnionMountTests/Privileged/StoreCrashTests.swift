import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// Processes killed with `SIGKILL` in the middle of store operations, and the next open's repair.
    ///
    /// Each operation runs as `unionmount store …` (a separate process, as a runtime would be). The debug build's
    /// crash points (``StoreFaultInjection``: `UNIONMOUNT_STORE_CRASH_AT=n` kills at the n-th step boundary)
    /// place the kill between any two steps; a second test kills load generators after random delays.
    @Suite struct StoreCrashTests {
        /// How a worker process ended.
        enum Ending: Equatable { case exited(Int32), killed }

        /// Runs `unionmount store <arguments>` with `environment` added; kills it with SIGKILL after `killAfter`.
        static func store(
            _ arguments: [String], environment: [String: String] = [:], killAfter: Duration? = nil
        ) throws -> (Ending, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try Examples.path("unionmount"))
            process.arguments = ["store"] + arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let reader = PipeReader(errors.fileHandleForReading)
            if let killAfter {
                Thread.sleep(
                    forTimeInterval: Double(killAfter.components.attoseconds) / 1e18
                        + Double(killAfter.components.seconds))
                kill(process.processIdentifier, SIGKILL)
            }
            let stderr = String(decoding: reader.result(), as: UTF8.self)
            process.waitUntilExit()
            if process.terminationReason == .uncaughtSignal {
                return (process.terminationStatus == SIGKILL ? .killed : .exited(-process.terminationStatus), stderr)
            }
            return (.exited(process.terminationStatus), stderr)
        }

        /// The manifest every layer imported from `source` must have: the source converted to the store's format.
        static func expectedManifest(of source: FilePath, scratch: Scratch, format: WhiteoutFormat) throws
            -> TreeManifest
        {
            let copy = scratch.path.appending("expected-\(source.lastComponent!.string)")
            try LayerTree.copy(from: source, to: copy)
            try WhiteoutConversion.convert(copy, from: .aufs, to: format)
            return try TreeManifest.read(copy)
        }

        /// Opens the store (which repairs) and checks the invariants: nothing pending or left over, every count
        /// equal to the mount table, every layer complete with the contents it was created with, every mounted
        /// container's branches present, and no mount under the store but the counted containers'.
        static func expectConsistent(
            _ root: FilePath, expected: [String: TreeManifest], sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            let store = try LayerStore(opening: root)
            let problems = try store.check()
            #expect(problems.isEmpty, "\(problems); repairs: \(store.repairReport)", sourceLocation: sourceLocation)
            for layer in try store.layers() {
                // The layer's own root directory is left out: its times are the store's, not the source's.
                func contents(_ manifest: TreeManifest?) -> [TreeManifest.Entry] {
                    manifest?.entries.filter { $0.path != "." } ?? []
                }
                let found = contents(try TreeManifest.read(layer.directory))
                #expect(
                    found == contents(expected[layer.id]), "layer \(layer.id) is not complete",
                    sourceLocation: sourceLocation)
            }
            let containers = try store.containers()
            let mounted = Set(containers.filter { $0.mountCount > 0 }.map(\.mergedDirectory))
            let reports = try MountTable.reports()
            for entry in try MountTable.entries(under: root) {
                #expect(
                    mounted.contains(entry.mountPoint), "stray mount \(entry.mountPoint)",
                    sourceLocation: sourceLocation)
            }
            for report in reports where mounted.contains(report.mountPoint) {
                let missing = report.branches.filter { !$0.exists }.map(\.path)
                #expect(missing.isEmpty, "branches of \(report.mountPoint) are missing", sourceLocation: sourceLocation)
            }
        }

        @Test("SIGKILL between any two steps of hundreds of operations; each reopen repairs")
        func killedBetweenSteps() throws {
            let scratch = try Scratch("store-crash")
            let fixture = try ImageFixture(in: scratch.path.appending("image"))
            let root = scratch.path.appending("store")
            let (created, message) = try Self.store(["info", "--root", root.string])
            try #require(created == .exited(0), "\(message)")
            let format = try LayerStore(opening: root).whiteoutFormat
            let sources = [fixture.layers[0], fixture.layers[1], fixture.layers[2]]
            var expectedBySource: [TreeManifest] = []
            for source in sources {
                expectedBySource.append(try Self.expectedManifest(of: source, scratch: scratch, format: format))
            }
            var expected: [String: TreeManifest] = [:]
            let initManifest = try TreeManifest.read(fixture.initLayer)

            // Are crash points compiled in (debug build)? A trace of one operation says.
            let trace = scratch.path.appending("trace")
            _ = try Self.store(
                ["create-layer", "--root", root.string, "probe"],
                environment: ["UNIONMOUNT_STORE_CRASH_TRACE": trace.string])
            try #require(fileExists(trace), "crash points are compiled into debug builds only")

            var random = SplitMix64(seed: 0x5EED)
            var kills = 0
            var killedAt: Set<String> = []
            var layerCount = 0
            var containerCount = 0
            for iteration in 0..<300 {
                let store = try LayerStore(opening: root)
                let layers = try store.layers().filter { $0.owner == nil }.map(\.id)
                let containers = try store.containers().map(\.id)
                let mounted = try store.containers().filter { $0.mountCount > 0 }.map(\.id)
                func pick(_ ids: [String]) -> String? {
                    ids.isEmpty ? nil : ids[Int(random.next() % UInt64(ids.count))]
                }
                var arguments: [String]
                switch random.next() % 9 {
                case 0, 1:
                    layerCount += 1
                    let id = "layer\(layerCount)"
                    let source = Int(random.next() % UInt64(sources.count))
                    arguments = ["create-layer", "--from", sources[source].string, id]
                    if let parent = pick(layers), random.next() % 3 != 0 { arguments += ["--parent", parent] }
                    expected[id] = expectedBySource[source]
                case 2:
                    containerCount += 1
                    let id = "c\(containerCount)"
                    arguments = ["create-container", id]
                    if let image = pick(layers) { arguments += ["--image", image] }
                    if random.next() % 2 == 0 {
                        arguments += ["--init-from", fixture.initLayer.string]
                        expected[id + "-init"] = initManifest
                    }
                case 3, 4:
                    guard let id = pick(containers) else { continue }
                    arguments = ["mount", id]
                case 5, 8:
                    guard let id = pick(mounted) ?? pick(containers) else { continue }
                    arguments = ["unmount", id]
                case 6:
                    guard let id = pick(containers) else { continue }
                    arguments = ["remove-container", id]
                case 7:
                    guard let id = pick(layers) else { continue }
                    arguments = ["remove-layer", id]
                default:
                    continue
                }
                // 0 (one run in six): no crash; otherwise the n-th step boundary of this process (every operation
                // that changes something passes 2 to 8 of them).
                let crashAt = random.next() % 6 == 0 ? 0 : Int(1 + random.next() % 4)
                unlink(trace.string)
                var environment = ["UNIONMOUNT_STORE_CRASH_TRACE": trace.string]
                if crashAt > 0 { environment["UNIONMOUNT_STORE_CRASH_AT"] = String(crashAt) }
                let (ending, stderr) = try Self.store(arguments + ["--root", root.string], environment: environment)
                switch ending {
                case .killed:
                    kills += 1
                    // The trace's last line names the point the process died at.
                    if let last = readFile(trace)?.split(separator: "\n").last?.split(separator: " ").last {
                        killedAt.insert(String(last))
                    }
                case .exited(0): break
                case .exited(1):
                    // A refusal the operation may meet (in use, not mounted, already exists), never a crash.
                    #expect(
                        ["in use", "is mounted", "not mounted", "already has", "has no"].contains {
                            stderr.contains($0)
                        },
                        "iteration \(iteration) \(arguments): \(stderr)")
                case .exited(let status):
                    Issue.record("iteration \(iteration) \(arguments) exited \(status): \(stderr)")
                }
                try Self.expectConsistent(root, expected: expected)
            }
            #expect(kills >= 100, "only \(kills) operations were killed")
            // Every step boundary of every operation was a place of death at least once.
            let everyPoint: Set<String> = [
                "staging.created", "import-layer.copied", "import-layer.converted", "layer.record-written",
                "layer.committed", "container.initialized", "container.record-written", "container.committed",
                "mount.pending", "mount.mounted", "mount.counted", "unmount.unmounted",
                "unmount.counted", "trash.moved", "remove-tree.directory-emptied",
            ]
            #expect(everyPoint.subtracting(killedAt).isEmpty, "never killed at \(everyPoint.subtracting(killedAt))")

            // Tear down: everything unmounts and is removed, and nothing is left mounted.
            let store = try LayerStore(opening: root)
            for container in try store.containers() {
                for _ in 0..<container.mountCount { try store.unmount(container: container.id) }
                try store.removeContainer(container.id)
            }
            while let leaf = try store.layers().first(where: { layer in
                (try? store.users(ofLayer: layer.id).isEmpty) == true
            }) {
                try store.removeLayer(leaf.id)
            }
            #expect(try store.layers().isEmpty)
            #expect(try MountTable.entries(under: root).isEmpty)
        }

        @Test("load generators killed after random delays leave a store the next open repairs")
        func killedAtRandomTimes() throws {
            let scratch = try Scratch("store-kill")
            let root = scratch.path.appending("store")
            let store = try LayerStore.create(at: root)
            try store.createLayer("base") { try writeFile($0.appending("f"), "base") }
            try store.createLayer("app", parent: "base") { try writeFile($0.appending("g"), "app") }
            for id in ["a", "b", "c"] { try store.createContainer(id, image: "app") }
            var random = SplitMix64(seed: 0xC0FFEE)
            var kills = 0
            for round in 0..<25 {
                let delay = Duration.milliseconds(Int64(20 + random.next() % 400))
                let (ending, stderr) = try Self.store(
                    [
                        "churn", "--root", root.string, "--container", "a", "--container", "b", "--container", "c",
                        "--operations", "1000", "--seed", String(round),
                    ],
                    killAfter: delay)
                if ending == .killed { kills += 1 } else { #expect(ending == .exited(0), "\(stderr)") }
                let expected = [
                    "base": try TreeManifest.read(store.layer("base").directory),
                    "app": try TreeManifest.read(store.layer("app").directory),
                ]
                try Self.expectConsistent(root, expected: expected)
            }
            #expect(kills >= 20)
            let reopened = try LayerStore(opening: root)
            for container in try reopened.containers() {
                for _ in 0..<container.mountCount { try reopened.unmount(container: container.id) }
            }
            #expect(try MountTable.entries(under: root).isEmpty)
        }
    }
}
