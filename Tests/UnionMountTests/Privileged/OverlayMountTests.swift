import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// Real overlay mounts read back from /proc/self/mountinfo.
    @Suite(.enabled(if: KernelOverlay.available, KernelOverlay.skipReason)) struct OverlayMounts {
        let mounter = Mounter()

        @Test("layer counts with ~100-byte absolute paths", arguments: [1, 2, 128, 500])
        func layerCounts(count: Int) throws {
            let stack = try LayerStack(count: count, nameBytes: longName(70))
            #expect(stack.lowers[0].length >= 95)
            let plan = try mounter.mount(.overlay(stack.spec()), at: stack.target)
            defer { _ = try? mounter.unmount(stack.target) }
            let entry = try #require(try mountEntry(at: stack.target))
            // The report's paths: what mountinfo shows, or for mount-relative and mount-fd (kernels without
            // lowerdir+) the real paths from the mount record.
            let report = try #require(try UnionMountReport(entry: entry))
            #expect(report.branches.map(\.path) == [stack.upper] + stack.lowers)
            #expect(report.workdir == stack.work)
            if plan.strategy == .newMountAPI || plan.strategy == .legacy {
                #expect(entry.overlayLayout?.lowerDirectories == stack.lowers)
            }
            stack.expectMergedView()
            try writeFile(stack.target.appending("written"), "w")
            #expect(readFile(stack.upper.appending("written")) == "w")
            if count == 500 {
                #expect(plan.strategy == (NewMountAPI.available ? .newMountAPI : .legacyDescriptors))
            }
            #expect(try mounter.unmount(stack.target) == .unmounted)
            #expect(try mountEntry(at: stack.target) == nil)
        }

        @Test("each strategy forced", arguments: NewMountAPI.forcibleStrategies)
        func forcedStrategy(strategy: MountStrategy) throws {
            // 60 × ~100 bytes does not fit a page with absolute paths; relative to their shared directory it does.
            let count = strategy == .legacy ? 20 : 60
            let shared = longName(70)
            let stack = try LayerStack(
                count: count, nameBytes: shared + Array("/l".utf8), upperName: shared + Array("/upper".utf8),
                workName: shared + Array("/work".utf8))
            let plan = try mounter.mount(.overlay(stack.spec()), at: stack.target, strategy: strategy)
            defer { _ = try? mounter.unmount(stack.target) }
            #expect(plan.strategy == strategy)
            let layout = try #require(try mountEntry(at: stack.target)?.overlayLayout)
            if strategy == .legacyRelative {
                // The kernel echoes the relative paths it was given; they name the same layers.
                guard case .mount(_, _, _, _, _, let directory?) = plan.steps.last else {
                    Issue.record("relative plan without a working directory")
                    return
                }
                #expect(layout.lowerDirectories.map { directory.pushing($0) } == stack.lowers)
            } else {
                #expect(layout.lowerDirectories == stack.lowers)
            }
            stack.expectMergedView()
        }

        @Test("forced mount(2) refuses options over one page and mounts nothing")
        func forcedLegacyTooLong() throws {
            let stack = try LayerStack(count: 60, nameBytes: longName(70))
            let error = #expect(throws: UnionMountError.self) {
                try mounter.mount(.overlay(stack.spec()), at: stack.target, strategy: .legacy)
            }
            #expect(error?.code == .optionsTooLong)
            #expect(error?.message.contains("4095") == true)
            #expect(try mountEntry(at: stack.target) == nil)
        }

        @Test(
            "a layer path over 255 bytes goes by file descriptor",
            .enabled(if: NewMountAPI.available, NewMountAPI.skipReason))
        func longLayerPath() throws {
            guard KernelFeatures.current.layerFileDescriptors else { return }
            let scratch = try Scratch("long")
            let deep = try scratch.directory(longName(120) + Array("/".utf8) + longName(120) + Array("/deep".utf8))
            let other = try scratch.directory("other")
            try writeFile(deep.appending("f"), "deep")
            let target = try scratch.directory("m")
            #expect(deep.length > 255)
            let spec = OverlaySpec(lowerDirectories: [deep, other])
            let plan = try mounter.mount(.overlay(spec), at: target, strategy: .newMountAPI)
            defer { _ = try? mounter.unmount(target) }
            #expect(plan.steps.contains(.setFileDescriptor(key: "lowerdir+", path: deep)))
            #expect(try mountEntry(at: target)?.overlayLayout?.lowerDirectories == [deep, other])
            #expect(readFile(target.appending("f")) == "deep")
        }

        @Test("a comma path cannot inject an option")
        func injection() throws {
            let scratch = try Scratch("inject")
            let evil = try scratch.directory("x,upperdir=\(scratch.path.string)/stolen")
            let other = try scratch.directory("other")
            try scratch.directory("stolen")
            let target = try scratch.directory("m")
            for strategy in NewMountAPI.forcibleStrategies {
                try mounter.mount(
                    .overlay(OverlaySpec(lowerDirectories: [evil, other])), at: target, strategy: strategy)
                let layout = try #require(try mountEntry(at: target)?.overlayLayout)
                #expect(layout.upperDirectory == nil, "\(strategy)")
                #expect(layout.lowerDirectories.count == 2, "\(strategy)")
                #expect(try mountEntry(at: target)?.isReadOnly == true)
                #expect(try mounter.unmount(target) == .unmounted)
            }
        }
    }
}
