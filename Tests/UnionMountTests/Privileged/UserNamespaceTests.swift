import Foundation
import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// Mounts made outside the initial user namespace. The test process cannot enter one itself (unshare(2)
    /// moves only the calling thread, and a multithreaded process cannot get a new user namespace), so the
    /// test binary re-runs ``UserNamespaceChild`` under `unshare --user --map-root-user --mount`.
    @Suite(.enabled(if: KernelOverlay.available, KernelOverlay.skipReason)) struct UserNamespaceMounts {
        @Test("in a user namespace: userxattr is added, and a trusted-xattr feature is refused with a diagnosis")
        func userNamespace() throws {
            guard access("/usr/bin/unshare", X_OK) == 0, KernelFeatures.current.userNamespaces else { return }
            let scratch = try Scratch("userns")
            let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            var environment = ProcessInfo.processInfo.environment
            environment["UNIONMOUNT_USERNS_CHILD"] = scratch.path.string
            let result = try runProcess(
                "/usr/bin/unshare",
                [
                    "--user", "--map-root-user", "--mount", "--", binary, "--testing-library", "swift-testing",
                    "--filter", "UserNamespaceChild",
                ],
                environment: environment)
            #expect(result.status == 0, "\(result)")
            // Swift Testing reports on stderr; the child must have run both tests, not skipped them.
            #expect(result.errorOutput.contains("Test run with 2 tests in 1 suite passed"), "\(result)")
        }
    }
}

/// Runs only inside the user namespace made by ``PrivilegedTests/UserNamespaceMounts``.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["UNIONMOUNT_USERNS_CHILD"] != nil))
struct UserNamespaceChild {
    let scratch = FilePath(ProcessInfo.processInfo.environment["UNIONMOUNT_USERNS_CHILD"] ?? "/nonexistent")

    private func layers(_ name: String) throws -> OverlaySpec {
        let base = scratch.appending(name)
        for directory in ["l1", "l2", "upper", "work", "m"] { try makeDirectories(base.appending(directory)) }
        try writeFile(base.appending("l2/x"), "x")
        return OverlaySpec(
            lowerDirectories: [base.appending("l1"), base.appending("l2")], upperDirectory: base.appending("upper"),
            workDirectory: base.appending("work"))
    }

    @Test func userXattrAddedAutomatically() throws {
        #expect(!KernelFeatures.current.initialUserNamespace)
        let spec = try layers("auto")
        let target = scratch.appending("auto/m")
        let plan = try Mounter().mount(.overlay(spec), at: target)
        defer { _ = try? Mounter().unmount(target) }
        #expect(
            plan.steps.contains(.setFlag(key: "userxattr"))
                || plan.steps.contains {
                    if case .mount(_, _, _, _, let data, _) = $0 {
                        String(decoding: data, as: UTF8.self).contains("userxattr")
                    } else {
                        false
                    }
                })
        let entry = try #require(try mountEntry(at: target))
        #expect(entry.superOptions.contains("userxattr"))
        #expect(readFile(target.appending("x")) == "x")
    }

    /// `metacopy=on` without `userxattr` needs trusted xattrs, which a user namespace does not have. Since Linux
    /// 6.12 (6c4a5f96, "ovl: fail if trusted xattrs are needed but caller lacks permission", in stable 6.6+, all
    /// kernels with overlay's own parser that the matrix runs) the mount is refused with EPERM; before that (6.1's
    /// legacy parser) overlay mounts and turns metacopy off itself ("failed to set xattr on upper ... falling back to
    /// index=off,metacopy=off", `ovl_make_workdir`), so the mount does not show it.
    @Test func trustedXattrFeatureRefusedWithDiagnosis() throws {
        var spec = try layers("metacopy")
        spec.options.userXattr = false
        spec.options.metacopy = true
        let target = scratch.appending("metacopy/m")
        guard KernelFeatures.current.overlayParameterParsing else {
            try Mounter().mount(.overlay(spec), at: target)
            defer { _ = try? Mounter().unmount(target) }
            let entry = try #require(try mountEntry(at: target))
            #expect(!entry.superOptions.contains("metacopy=on"), "the legacy kernel turned metacopy off: \(entry)")
            #expect(readFile(target.appending("x")) == "x")
            return
        }
        let error = try #require(throws: UnionMountError.self) {
            try Mounter().mount(.overlay(spec), at: target)
        }
        #expect(error.errno == .notPermitted)
        #expect(error.diagnoses.contains(.trustedXattrsUnavailable(feature: "metacopy=on")))
    }
}
