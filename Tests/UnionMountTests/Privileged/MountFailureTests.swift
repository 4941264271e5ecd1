import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// Every refusal comes back typed, with the kernel's words or a diagnosis, and leaves nothing mounted.
    @Suite(.enabled(if: KernelOverlay.available, KernelOverlay.skipReason)) struct MountFailures {
        let mounter = Mounter()

        private func refusal(
            _ spec: OverlaySpec, at target: FilePath, strategy: MountStrategy? = nil
        ) throws -> UnionMountError {
            let error = try #require(throws: UnionMountError.self) {
                try mounter.mount(.overlay(spec), at: target, strategy: strategy)
            }
            #expect(try mountEntry(at: target) == nil)
            #expect(error.plan != nil)
            #expect(error.spec != nil)
            return error
        }

        @Test("missing layer", arguments: NewMountAPI.forcibleStrategies.filter { $0 != .legacyRelative })
        func missingLayer(strategy: MountStrategy) throws {
            let scratch = try Scratch("missing")
            let present = try scratch.directory("present")
            let missing = scratch.path.appending("missing")
            let error = try refusal(
                OverlaySpec(lowerDirectories: [present, missing]), at: try scratch.directory("m"), strategy: strategy)
            #expect(error.errno == .noSuchFileOrDirectory)
            #expect(error.diagnoses.contains(.missing(missing, role: "lowerdir")))
            #expect(error.systemCall == (strategy == .newMountAPI ? "fsconfig" : "mount"))
        }

        @Test(
            "layer that is not a directory: kernel message from the fs context",
            .enabled(if: NewMountAPI.available, NewMountAPI.skipReason))
        func notADirectory() throws {
            let scratch = try Scratch("notdir")
            let present = try scratch.directory("present")
            let file = scratch.path.appending("file")
            try writeFile(file, "")
            let error = try refusal(
                OverlaySpec(lowerDirectories: [present, file]), at: try scratch.directory("m"),
                strategy: .newMountAPI)
            #expect(error.errno == .invalidArgument)
            #expect(error.kernelMessages.contains { $0.contains("not a directory") })
            #expect(error.diagnoses.contains(.notADirectory(file, role: "lowerdir")))
        }

        @Test("upper and work on different mounts")
        func differentMounts() throws {
            let scratch = try Scratch("xdev")
            let lower = try scratch.directory("lower")
            let upper = try scratch.directory("upper")
            let other = try scratch.directory("tmpfs")
            #expect(mount("tmpfs", other.string, "tmpfs", 0, nil) == 0)
            defer { umount2(other.string, 0) }
            let work = other.appending("work")
            try makeDirectories(work)
            let error = try refusal(
                OverlaySpec(lowerDirectories: [lower], upperDirectory: upper, workDirectory: work),
                at: try scratch.directory("m"))
            #expect(error.errno == .invalidArgument)
            #expect(error.diagnoses.contains(.upperAndWorkOnDifferentMounts(upper: upper, work: work)))
        }

        @Test("upper on a read-only filesystem", .enabled(if: NewMountAPI.available, NewMountAPI.skipReason))
        func readOnlyUpper() throws {
            let scratch = try Scratch("rofs")
            let lower = try scratch.directory("lower")
            let fs = try scratch.directory("ro")
            #expect(mount("tmpfs", fs.string, "tmpfs", 0, nil) == 0)
            defer { umount2(fs.string, 0) }
            try makeDirectories(fs.appending("upper"))
            try makeDirectories(fs.appending("work"))
            #expect(mount("none", fs.string, nil, UInt(MS_REMOUNT | MS_RDONLY), nil) == 0)
            let error = try refusal(
                OverlaySpec(
                    lowerDirectories: [lower], upperDirectory: fs.appending("upper"),
                    workDirectory: fs.appending("work")),
                at: try scratch.directory("m"), strategy: .newMountAPI)
            #expect(error.kernelMessages.contains { $0.contains("read-only") })
            #expect(error.diagnoses.contains(.upperOnReadOnlyFilesystem(fs.appending("upper"))))
        }

        @Test("overlapping layers: a lower inside the upper")
        func overlapping() throws {
            let scratch = try Scratch("overlap")
            let upper = try scratch.directory("upper")
            let inner = try scratch.directory("upper/inner")
            let work = try scratch.directory("work")
            let error = try refusal(
                OverlaySpec(lowerDirectories: [inner], upperDirectory: upper, workDirectory: work),
                at: try scratch.directory("m"))
            #expect(error.errno == .tooManySymbolicLinkLevels)
            #expect(error.diagnoses.contains(.overlappingLayers(inner, upper)))
        }

        @Test("a dirty volatile work directory")
        func dirtyVolatile() throws {
            let scratch = try Scratch("volatile")
            let lower = try scratch.directory("lower")
            let upper = try scratch.directory("upper")
            let work = try scratch.directory("work")
            let target = try scratch.directory("m")
            var options = OverlayOptions()
            options.volatile = true
            let spec = OverlaySpec(
                lowerDirectories: [lower], upperDirectory: upper, workDirectory: work, options: options)
            try mounter.mount(.overlay(spec), at: target)
            #expect(try mounter.unmount(target) == .unmounted)
            let error = try refusal(spec, at: target)
            #expect(error.errno == .invalidArgument)
            #expect(error.diagnoses.contains(.dirtyVolatileWorkDirectory(work)))
        }

        @Test("an unknown option: the kernel's words", .enabled(if: NewMountAPI.available, NewMountAPI.skipReason))
        func unknownOption() throws {
            let scratch = try Scratch("unknown")
            var options = OverlayOptions()
            options.additional = [.init("bogus_option")]
            let spec = OverlaySpec(
                lowerDirectories: [try scratch.directory("a"), try scratch.directory("b")], options: options)
            let error = try refusal(spec, at: try scratch.directory("m"), strategy: .newMountAPI)
            #expect(error.kernelMessages.contains { $0.contains("Unknown parameter 'bogus_option'") })
            #expect(error.description.contains("bogus_option"))
        }

        @Test("aufs is not available on this kernel")
        func aufsUnavailable() throws {
            guard !KernelFeatures.current.aufs else { return }
            let scratch = try Scratch("aufs")
            let spec = AufsSpec(branches: [
                AufsBranch(try scratch.directory("rw"), .readWrite),
                AufsBranch(try scratch.directory("ro"), .readOnly, attributes: [.whiteout]),
            ])
            let target = try scratch.directory("m")
            let error = try #require(throws: UnionMountError.self) { try mounter.mount(.aufs(spec), at: target) }
            #expect(error.code == .unsupported)
            #expect(error.errno == .operationNotSupportedByDevice)
            #expect(error.message.contains("aufs is not available on this kernel"))
            #expect(try mountEntry(at: target) == nil)
        }
    }
}
