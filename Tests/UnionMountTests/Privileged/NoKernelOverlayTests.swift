import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

extension PrivilegedTests {
    /// A kernel without overlay (the kernel matrix's `6.12-nooverlay` boots one, and says so with
    /// `UNIONMOUNT_GUEST_NO_OVERLAY=1`, so a module that loaded anyway fails here instead of skipping): the probe
    /// says so, and the planner and the layer store fall back to fuse-overlayfs.
    @Suite(
        .enabled(
            if: !KernelOverlay.available || KernelOverlay.removedByTheMatrix,
            "this kernel has overlay (the kernel matrix's KERNEL-nooverlay boots one without it)"))
    struct NoKernelOverlay {
        let features = KernelFeatures.probe()

        @Test("the probe says no overlay; the planner and the store's backend probe pick fuse-overlayfs")
        func fallsBackToFuseOverlayfs() throws {
            #expect(!features.overlay)
            #expect(!features.newMountAPI && !features.appendLowerDirectory && !features.dataOnlyLayers)
            #expect(LayerStoreBackend.overlay.unavailability(on: features) != nil)
            try #require(features.fuse, "FUSE: /dev/fuse must be there (the guest's devtmpfs makes it)")
            try #require(features.fuseOverlayfsProgram != nil, "the fuse-overlayfs program (the host's, over 9p)")
            #expect(LayerStoreBackend.probe(features) == .fuseOverlayfs)
            let stack = try LayerStack(count: 3, nameBytes: Array("layer".utf8))
            let mounter = Mounter(features: features)
            let plan = try mounter.mount(.overlay(stack.spec()), at: stack.target)
            defer { _ = try? mounter.unmount(stack.target) }
            #expect(plan.strategy == .fuseOverlayfs)
            stack.expectMergedView()
            let scratch = try Scratch("no-overlay-store")
            let store = try LayerStore.create(at: scratch.path.appending("store"))
            #expect(store.backend == .fuseOverlayfs)
        }
    }
}
