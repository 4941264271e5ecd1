import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

extension PrivilegedTests {
    /// The merged view computed from a fuse-overlayfs mount's branches equals what the mount shows.
    @Suite struct FuseMergedViewTests {
        @Test("fuse-overlayfs marks (.wh..wh..opq, user.fuseoverlayfs.opaque) are understood, not listed")
        func mergedViewOfFuseMount() throws {
            let features = KernelFeatures.current
            guard features.fuse, features.fuseOverlayfsProgram != nil else {
                Issue.record("fuse-overlayfs is not installed or /dev/fuse is not usable; not checked")
                return
            }
            let scratch = try Scratch("fuse-view")
            let lower = try scratch.directory("lower")
            try makeDirectories(lower.appending("d"))
            try writeFile(lower.appending("d/a"), "a")
            try writeFile(lower.appending("kept"), "k")
            let spec = OverlaySpec(
                lowerDirectories: [lower, try scratch.directory("lower2")],
                upperDirectory: try scratch.directory("upper"),
                workDirectory: try scratch.directory("work"), source: "fuse-overlayfs")
            let merged = try scratch.directory("merged")
            try Mounter().withMount(.overlay(spec), at: merged, strategy: .fuseOverlayfs) { _ in
                let script = try runProcess(
                    "/bin/sh", ["-c", "cd \"$1\" && rm -r d && mkdir d && echo b > d/b", "sh", merged.string])
                #expect(script.status == 0, "\(script.errorOutput)")
                // fuse-overlayfs's mount table entry shows no branches: they are given.
                let report = try #require(try MountTable.reports().first { $0.mountPoint == merged })
                #expect(report.fsType == "fuse.fuse-overlayfs")
                let branches = [spec.upperDirectory!] + spec.lowerDirectories
                let computed = try MergedView.entries(branches: branches, format: .overlayTrusted, fuseOverlayfs: true)
                    .map(\.path.string)
                let naive = try MergedView.entries(branches: branches, format: .overlayTrusted).map(\.path.string)
                #expect(naive.contains("d/.wh..wh..opq"), "without the flag fuse-overlayfs's marker shows")
                let shown = try TreeManifest.read(merged).entries.map(\.path.string).filter { $0 != "." }
                #expect(computed == ["d", "d/b", "kept"])
                #expect(computed == shown)
            }
        }
    }
}
