import SystemPackage
import Testing

@testable import UnionMount

extension PrivilegedTests {
    /// Layer, upper and work paths with every byte the option grammars or mountinfo treat specially.
    @Suite(.enabled(if: KernelOverlay.available, KernelOverlay.skipReason)) struct HostileNames {
        static let names: [[UInt8]] = [
            Array("sp ace".utf8), Array("ta\tb".utf8), Array("new\nline".utf8), Array("com,ma".utf8),
            Array("co:lon".utf8), Array("back\\slash".utf8), Array("ha#sh".utf8), Array("eq=ual".utf8),
            [0x6E, 0xFF, 0xFE, 0x80, 0x6E], Array("all ,:\\#=\t\n".utf8), Array("co::lons".utf8),
            Array("trailing\\".utf8),
        ]

        let mounter = Mounter()

        @Test("round trip through mountinfo", arguments: NewMountAPI.forcibleStrategies + [.legacyDescriptors])
        func hostile(strategy: MountStrategy) throws {
            let scratch = try Scratch("hostile")
            var lowers: [FilePath] = []
            for (index, name) in Self.names.enumerated() {
                let layer = try scratch.directory(name)
                try writeFile(layer.appending("f\(index)"), "\(index)")
                try writeFile(layer.appending("x"), "from \(index)")
                lowers.append(layer)
            }
            let upper = try scratch.directory(Array("up per,x:y\\z#=".utf8) + [0xC3])
            let work = try scratch.directory(Array("wo\trk\n,:".utf8))
            let target = try scratch.directory(Array("mer ged\\,:".utf8))
            let spec = OverlaySpec(lowerDirectories: lowers, upperDirectory: upper, workDirectory: work)
            let plan = try mounter.mount(.overlay(spec), at: target, strategy: strategy)
            defer { _ = try? mounter.unmount(target) }

            let entry = try #require(try mountEntry(at: target))
            let layout = try #require(entry.overlayLayout)
            var base = FilePath("/")
            if case .mount(_, _, _, _, _, let directory?) = plan.steps.last { base = directory }
            if strategy != .legacyDescriptors {
                #expect(layout.lowerDirectories.map { base.pushing($0) } == lowers)
                #expect(layout.upperDirectory.map { base.pushing($0) } == upper)
                #expect(layout.workDirectory.map { base.pushing($0) } == work)
            }
            // The report shows the real paths, byte for byte (mount-fd and mount-relative through their record).
            let report = try #require(try UnionMountReport(entry: entry))
            #expect(report.branches.map(\.path) == [upper] + lowers)
            #expect(report.workdir == work)
            #expect(readFile(target.appending("x")) == "from 0")
            for index in Self.names.indices {
                #expect(readFile(target.appending("f\(index)")) == "\(index)", "layer \(index)")
            }
            try writeFile(target.appending("new"), "n")
            #expect(readFile(upper.appending("new")) == "n")
        }
    }
}
