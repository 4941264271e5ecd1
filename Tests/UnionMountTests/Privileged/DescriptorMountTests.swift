import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// mount-fd (``MountStrategy/legacyDescriptors``) and the mount records that give mount-fd and mount-relative
    /// mounts their real paths in reports, for real.
    @Suite struct DescriptorMounts {
        let mounter = Mounter()

        /// The kernel as probed, but without `lowerdir+`: what Linux before 6.8 offers, so the unforced ladder
        /// reaches mount-fd on any kernel.
        static let withoutLowerdirPlus: KernelFeatures = {
            var features = KernelFeatures.current
            features.appendLowerDirectory = false
            features.layerFileDescriptors = false
            return features
        }()

        /// `count` layers shaped like a layer store's (`<root>/layers/<64 hex digits>/diff`), each with the file
        /// `f<index>` saying its index, plus an upper and a work directory.
        struct StoreShapedStack {
            let scratch: Scratch
            let lowers: [FilePath]
            let upper: FilePath
            let work: FilePath
            let target: FilePath

            init(count: Int) throws {
                scratch = try Scratch("fd")
                var lowers: [FilePath] = []
                for index in 0..<count {
                    let hex = String(index, radix: 16)
                    let id = String(repeating: "0", count: 64 - hex.count) + hex
                    let layer = try scratch.directory("layers/\(id)/diff")
                    try writeFile(layer.appending("f\(index)"), "\(index)")
                    lowers.append(layer)
                }
                self.lowers = lowers
                upper = try scratch.directory("containers/c/diff")
                work = try scratch.directory("containers/c/work")
                target = try scratch.directory("containers/c/merged")
            }

            var spec: OverlaySpec { OverlaySpec(lowerDirectories: lowers, upperDirectory: upper, workDirectory: work) }

            /// Every layer's own file, read through the union.
            func expectEveryLayerReadable() {
                var wrong: [Int] = []
                for index in lowers.indices where readFile(target.appending("f\(index)")) != "\(index)" {
                    wrong.append(index)
                }
                #expect(wrong.isEmpty, "layers not readable through the union: \(wrong.prefix(10))")
            }

            /// The report's branches: upper, then every lower, and the work directory, as real absolute paths.
            func expectReportShowsRealPaths(_ report: UnionMountReport?) {
                guard let report else {
                    Issue.record("no report for \(target)")
                    return
                }
                #expect(report.branches.map(\.path) == [upper] + lowers)
                #expect(report.branches.allSatisfy { $0.exists })
                #expect(report.workdir == work)
            }
        }

        /// The descriptors in /proc/self/fd that name something below `directory` (other tests running in parallel
        /// open and close descriptors of their own, so only these tell whether a layer's descriptor stayed open).
        static func openDescriptors(under directory: FilePath) -> [String] {
            let names = (try? FileSystem.names(in: "/proc/self/fd")) ?? []
            return names.compactMap { name in
                guard let target = try? FileSystem.linkTarget(FilePath(bytes: Array("/proc/self/fd/".utf8) + name)),
                    FilePath(bytes: target).starts(with: directory)
                else { return nil }
                return String(decoding: name, as: UTF8.self)
            }
        }

        /// The record file of the mount at `target`, if there is one.
        static func recordFile(of target: FilePath) throws -> FilePath? {
            let entry = try #require(try mountEntry(at: target))
            return MountRecords.directory.map { MountRecords.file(entry.mountID, in: $0) }
        }

        @Test("500 store-shaped layers by descriptor number: every layer read, real paths reported, nothing left")
        func fiveHundredLayersForced() throws {
            let stack = try StoreShapedStack(count: 500)
            // The check sees a layer's descriptor when one is open.
            let probe = try FileSystem.open(stack.lowers[7], .readOnly, options: [.directory])
            #expect(Self.openDescriptors(under: stack.scratch.path) == [String(probe.rawValue)])
            FileSystem.close(probe)
            #expect(Self.openDescriptors(under: stack.scratch.path).isEmpty)
            let plan = try mounter.mount(.overlay(stack.spec), at: stack.target, strategy: .legacyDescriptors)
            defer { _ = try? mounter.unmount(stack.target) }
            #expect(plan.strategy == .legacyDescriptors)
            #expect(
                Self.openDescriptors(under: stack.scratch.path).isEmpty, "the descriptors died with the mounting thread"
            )

            let entry = try #require(try mountEntry(at: stack.target))
            let shown = try #require(entry.overlayLayout)
            #expect(shown.lowerDirectories.first == "0" && shown.lowerDirectories.last == "499")
            #expect(shown.upperDirectory == "500" && shown.workDirectory == "501")
            stack.expectEveryLayerReadable()
            try writeFile(stack.target.appending("written"), "w")
            #expect(readFile(stack.upper.appending("written")) == "w")

            stack.expectReportShowsRealPaths(try UnionMountReport(entry: entry))
            stack.expectReportShowsRealPaths(try MountTable.reports().first { $0.mountPoint == stack.target })
            stack.expectReportShowsRealPaths(try MountTable.report(at: stack.target))
            #expect(try MountTable.reports(usingBranch: stack.lowers[250]).map(\.mountPoint) == [stack.target])

            let record = try #require(try Self.recordFile(of: stack.target))
            #expect(fileExists(record))
            #expect(try mounter.unmount(stack.target) == .unmounted)
            #expect(!fileExists(record), "unmount removes the record")
            #expect(try mountEntry(at: stack.target) == nil)
            #expect(Self.openDescriptors(under: stack.scratch.path).isEmpty)
        }

        @Test("without lowerdir+, the ladder picks mount-fd for 500 store-shaped layers")
        func fiveHundredLayersUnforced() throws {
            let stack = try StoreShapedStack(count: 500)
            // On this kernel as it is: mount-fd where overlay has no lowerdir+ (Linux < 6.8).
            let native = try mounter.plan(.overlay(stack.spec), at: stack.target)
            #expect(
                native.strategy == (KernelFeatures.current.appendLowerDirectory ? .newMountAPI : .legacyDescriptors))
            let plan = try Mounter(features: Self.withoutLowerdirPlus).mount(.overlay(stack.spec), at: stack.target)
            defer { _ = try? mounter.unmount(stack.target) }
            #expect(plan.strategy == .legacyDescriptors)
            stack.expectEveryLayerReadable()
            stack.expectReportShowsRealPaths(try MountTable.report(at: stack.target))
            #expect(try mounter.unmount(stack.target) == .unmounted)
        }

        @Test("a mount-relative mount's report shows real paths through its record")
        func relativeReportResolves() throws {
            let stack = try StoreShapedStack(count: 40)
            let plan = try mounter.mount(.overlay(stack.spec), at: stack.target, strategy: .legacyRelative)
            defer { _ = try? mounter.unmount(stack.target) }
            let entry = try #require(try mountEntry(at: stack.target))
            #expect(entry.overlayLayout?.hasRelativePaths == true)
            guard case .mount(_, _, _, _, _, let directory?) = plan.steps.last else {
                Issue.record("relative plan without a working directory")
                return
            }
            #expect(entry.overlayLayout?.lowerDirectories.map { directory.pushing($0) } == stack.lowers)
            stack.expectReportShowsRealPaths(try UnionMountReport(entry: entry))
            let record = try #require(try Self.recordFile(of: stack.target))
            #expect(try mounter.unmount(stack.target) == .unmounted)
            #expect(!fileExists(record))
        }

        @Test("hostile, truncated and mismatched records are ignored; a stale one is removed")
        func hostileRecords() throws {
            let stack = try StoreShapedStack(count: 3)
            try mounter.mount(.overlay(stack.spec), at: stack.target, strategy: .legacyDescriptors)
            defer { _ = try? mounter.unmount(stack.target) }
            let entry = try #require(try mountEntry(at: stack.target))
            let file = try #require(try Self.recordFile(of: stack.target))
            let valid = try #require(readSmallFile(file))
            let decoded = try #require(MountRecord(decoding: valid))
            #expect(decoded.branches == stack.lowers + [stack.upper, stack.work])

            func reportedPaths() throws -> [FilePath] {
                try #require(try UnionMountReport(entry: entry)).branches.map(\.path)
            }
            func write(_ bytes: [UInt8]) throws {
                try? FileSystem.unlink(file)
                let fd = try FileSystem.open(file, .writeOnly, options: [.create, .truncate], permissions: 0o644)
                defer { FileSystem.close(fd) }
                try FileSystem.writeAll(fd, bytes)
            }
            let shown: [FilePath] = ["3", "0", "1", "2"]
            #expect(try reportedPaths() == [stack.upper] + stack.lowers)

            var wrongCount = decoded
            wrongCount.branches.removeLast()
            wrongCount.shownBranches.removeLast()
            var relativePath = decoded
            relativePath.branches[0] = "relative/path"
            let hostile: [[UInt8]] = [
                Array("garbage".utf8), [], valid.dropLast(7).map { $0 }, valid + [0], valid + Array("x".utf8),
                Array(valid.map { $0 == UInt8(ascii: "1") ? UInt8(ascii: "9") : $0 }), wrongCount.encoded,
                relativePath.encoded, Array(repeating: 0, count: 4096),
            ]
            for bytes in hostile {
                try write(bytes)
                #expect(try reportedPaths() == shown, "record \(Array(bytes.prefix(40)).readable)")
            }
            // A world-writable record is not trusted.
            try write(valid)
            _ = file.withPlatformString { chmod($0, 0o666) }
            #expect(try reportedPaths() == shown)
            // A record for another device (or mount point) is stale: that mount id now belongs to this mount.
            var otherDevice = decoded
            otherDevice.deviceMinor &+= 1
            try write(otherDevice.encoded)
            #expect(try reportedPaths() == shown)
            #expect(!fileExists(file), "the stale record was removed")
            var otherTarget = decoded
            otherTarget.target = stack.scratch.path
            try write(otherTarget.encoded)
            #expect(try reportedPaths() == shown)
            #expect(!fileExists(file))
            // The valid record again: real paths.
            try write(valid)
            #expect(try reportedPaths() == [stack.upper] + stack.lowers)
            #expect(try mounter.unmount(stack.target) == .unmounted)
        }

        @Test("the layer store on a kernel without lowerdir+: a 500-layer container by mount-fd, real paths reported")
        func storeContainer() throws {
            let scratch = try Scratch("store-fd")
            let store = try LayerStore.create(
                at: scratch.path.appending("store"), features: Self.withoutLowerdirPlus)
            var parent: String?
            var ids: [String] = []
            for index in 1...499 {
                let hex = String(index, radix: 16)
                let id = String(repeating: "0", count: 64 - hex.count) + hex
                let builder = try store.beginLayer(id, parent: parent)
                try writeFile(builder.directory.appending("only-\(index)"), "\(index)")
                try builder.commit()
                parent = id
                ids.append(id)
            }
            try store.createContainer("c", image: parent) { try writeFile($0.appending("init"), "init") }
            let spec = try store.unionSpec(container: "c")
            #expect(try store.mounter.plan(spec, at: "/m").strategy == .legacyDescriptors)
            let merged = try store.mount(container: "c")
            defer { _ = try? store.unmount(container: "c", lazy: true) }
            #expect(readFile(merged.appending("only-1")) == "1")
            #expect(readFile(merged.appending("only-499")) == "499")
            #expect(readFile(merged.appending("init")) == "init")
            let report = try #require(try MountTable.report(at: merged))
            guard case .overlay(let overlay) = spec else {
                Issue.record("not an overlay spec")
                return
            }
            #expect(report.branches.map(\.path) == [try #require(overlay.upperDirectory)] + overlay.lowerDirectories)
            #expect(report.branches.count == 501)
            #expect(try store.layer(ids[0]).directory == overlay.lowerDirectories.last)
            // "Is this layer in use?" finds the container through the report's real paths.
            #expect(
                try MountTable.reports(usingBranch: try store.layer(ids[10]).directory).map(\.mountPoint) == [merged])
            #expect(try MergedView.entries(of: report).contains { $0.path == "only-250" })
            #expect(try store.unmount(container: "c"))
        }
    }
}
