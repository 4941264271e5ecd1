import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

extension PrivilegedTests {
    /// A real mount with an SELinux label holding categories, through each mount strategy. Runs only where the
    /// kernel has SELinux enabled (`/sys/fs/selinux/enforce` exists); elsewhere the exact plans are checked by
    /// `QuotedOptionTests`.
    @Suite(
        .enabled(
            if: fileExists(FilePath("/sys/fs/selinux/enforce")),
            "this kernel has no SELinux (/sys/fs/selinux/enforce is missing): context= labels cannot be mounted"),
        .enabled(if: KernelOverlay.available, KernelOverlay.skipReason))
    struct SELinuxLabelMounts {
        @Test("context= with categories", arguments: [MountStrategy.newMountAPI, .legacy, .legacyRelative])
        func labelWithCategories(strategy: MountStrategy) throws {
            let mounter = Mounter()
            let stack = try LayerStack(count: 2, nameBytes: Array("l".utf8))
            var spec = stack.spec()
            spec.options.additional.append(OverlayOptions.RawOption("context", QuotedOptionTests.quoted))
            let plan = try mounter.mount(.overlay(spec), at: stack.target, strategy: strategy)
            defer { _ = try? mounter.unmount(stack.target) }
            #expect(plan.strategy == strategy)
            let entry = try #require(try mountEntry(at: stack.target))
            #expect(entry.superOptions.contains("context=" + QuotedOptionTests.quoted))
            stack.expectMergedView()
            #expect(try mounter.unmount(stack.target) == .unmounted)
        }
    }
}
