import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// Whether `unionmount demo` can be run as an unprivileged user here, and if not, why.
enum UnprivilegedDemo {
    static let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// The command prefix that drops to uid/gid 65534 (nobody) with no supplementary groups.
    static var dropPrivileges: [String]? {
        setpriv.map { [$0, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"] }
    }

    /// nil when possible; otherwise the reason it is not: no setpriv(1), user namespaces refused to an
    /// unprivileged user, or the built executable out of that user's reach.
    static let unavailableReason: String? = {
        guard TestEnvironment.isRoot else { return "needs root to drop to uid 65534" }
        guard let prefix = dropPrivileges else { return "setpriv(1) is not installed" }
        guard
            let probe = try? runProcess(
                prefix[0],
                Array(prefix.dropFirst()) + [
                    "/usr/bin/unshare", "--user", "--map-root-user", "--mount", "true",
                ]), probe.status == 0
        else {
            return "unprivileged user namespaces are not available (sysctl or LSM)"
        }
        let executable = Examples.directory.appending("unionmount").string
        guard let reach = try? runProcess(prefix[0], Array(prefix.dropFirst()) + [executable, "--help"]),
            reach.status == 0
        else {
            return "uid 65534 cannot run \(Examples.directory)/unionmount (a directory on the way is not searchable)"
        }
        return nil
    }()
}

extension PrivilegedTests {
    /// The example executables on real mounts, in the test's private mount namespace.
    @Suite(.enabled(if: KernelOverlay.available, KernelOverlay.skipReason)) struct CommandLineRuns {
        let mounter = Mounter()

        /// Two lower layers (top first), an upper and a work directory, and a mount point, in one scratch tree.
        struct Layers {
            var scratch: Scratch
            var lowers: [FilePath]
            var upper: FilePath
            var work: FilePath
            var target: FilePath

            var spec: OverlaySpec { OverlaySpec(lowerDirectories: lowers, upperDirectory: upper, workDirectory: work) }
        }

        /// Layers where `l1` and `l2` both hold `x`, `l2` holds `gone` and `dir/old`, and `shared/` is in both.
        private func layers(_ name: String) throws -> Layers {
            let scratch = try Scratch(name)
            let lowers = [try scratch.directory("l1"), try scratch.directory("l2")]
            try writeFile(lowers[0].appending("x"), "x from l1")
            try writeFile(lowers[1].appending("x"), "x from l2")
            try writeFile(lowers[1].appending("gone"), "deleted through the mount")
            try makeDirectories(lowers[1].appending("dir"))
            try writeFile(lowers[1].appending("dir/old"), "hidden by the opaque dir")
            try makeDirectories(lowers[0].appending("shared"))
            try makeDirectories(lowers[1].appending("shared"))
            try writeFile(lowers[0].appending("shared/one"), "1")
            try writeFile(lowers[1].appending("shared/two"), "2")
            return Layers(
                scratch: scratch, lowers: lowers, upper: try scratch.directory("u"), work: try scratch.directory("w"),
                target: try scratch.directory("m"))
        }

        @Test("mount, then list/inspect/tree --json, then umount --json")
        func mountInspectUnmount() throws {
            let stack = try layers("climount")
            let mount = try unionmount(
                "mount", "--lower", stack.lowers[0].string, "--lower", stack.lowers[1].string, "--upper",
                stack.upper.string, "--work", stack.work.string, "-o", "index=on", "-o", "redirect_dir=on", "--json",
                stack.target.string)
            #expect(mount.status == 0, "\(mount)")
            let plan = try mount.decode(MountPlan.self)
            #expect(plan.strategy == (try mounter.plan(.overlay(stack.spec), at: stack.target).strategy))
            #expect(MountTable.isMountPoint(stack.target))
            defer { _ = try? mounter.unmount(stack.target) }

            #expect(unlink(stack.target.appending("gone").string) == 0)
            removeTree(stack.target.appending("dir"))
            #expect(mkdir(stack.target.appending("dir").string, 0o755) == 0)
            try writeFile(stack.target.appending("dir/new"), "new")

            // list: the mount among the union mounts, and not among the aufs ones.
            let list = try unionmount("list", "--json")
            #expect(list.status == 0, "\(list)")
            let mounts = try #require(try list.json() as? [[String: Any]])
            for object in mounts { try JSONContract.expectMountObject(object) }
            let listed = try #require(mounts.first { $0["mountPoint"] as? String == stack.target.string })
            #expect(listed["fsType"] as? String == "overlay")
            let aufsOnly = try unionmount("list", "--type", "aufs", "--json")
            #expect(try aufsOnly.decode([UnionMountReport].self).allSatisfy { $0.fsType == "aufs" })
            #expect(try unionmount("list").output.contains(stack.target.string))

            // inspect: one object, the library's report, branches upper first.
            let inspect = try unionmount("inspect", stack.target.string, "--json")
            #expect(inspect.status == 0, "\(inspect)")
            try JSONContract.expectMountObject(try inspect.json())
            let report = try inspect.decode(UnionMountReport.self)
            #expect(report == (try MountTable.report(at: stack.target)))
            #expect(report.branches.map(\.path) == [stack.upper] + stack.lowers)
            #expect(report.branches.map(\.role) == [.upper, .lower, .lower])
            #expect(report.branches.map(\.permission) == [.readWrite, .readOnly, .readOnly])
            #expect(report.workdir == stack.work)
            #expect(report.options.contains("index=on") && report.options.contains("redirect_dir=on"))
            let object = try #require(try inspect.json() as? [String: Any])
            #expect(object["mountPoint"] as? String == stack.target.string)
            #expect(object["workdir"] as? String == stack.work.string)
            #expect(try unionmount("inspect", stack.target.string).output.contains("upper  rw"))

            // tree: the merged view, whiteout and opaque directory honoured, each entry with its branch.
            let tree = try unionmount("tree", stack.target.string, "--json")
            #expect(tree.status == 0, "\(tree)")
            try JSONContract.expectTreeArray(try tree.json())
            let entries = try tree.decode([MergedEntry].self)
            let expected = try MergedView.entries(branches: [stack.upper] + stack.lowers, format: .overlayTrusted)
            #expect(entries == expected)
            let summary = entries.map { "\($0.path):\($0.branch)" }
            #expect(summary == ["dir:0", "dir/new:0", "shared:1", "shared/one:1", "shared/two:2", "x:1"])
            let objects = try #require(try tree.json() as? [[String: Any]])
            #expect(objects.first?["branchPath"] as? String == stack.upper.string)
            #expect(objects.first?["type"] as? String == "directory")
            let text = try unionmount("tree", stack.target.string)
            #expect(text.output.contains("dir/new"))
            #expect(!text.output.contains("gone"))

            // umount: the outcome as JSON; afterwards nothing is mounted there and inspect fails.
            let unmount = try unionmount("umount", stack.target.string, "--retries", "3", "--json")
            #expect(unmount.status == 0, "\(unmount)")
            let outcome = try #require(try unmount.json() as? [String: Any])
            #expect(outcome["outcome"] as? String == "unmounted")
            #expect(outcome["target"] as? String == stack.target.string)
            #expect(outcome["unmounted"] as? [String] == [stack.target.string])
            #expect(!MountTable.isMountPoint(stack.target))
            let after = try unionmount("inspect", stack.target.string, "--json")
            #expect(after.status == 1)
            #expect(after.errorOutput.contains("no union filesystem is mounted"))
            let again = try unionmount("umount", stack.target.string, "--json")
            #expect((try again.json() as? [String: Any])?["outcome"] as? String == "not-mounted")
        }

        @Test("umount --lazy detaches; umount --recursive unmounts everything below, deepest first")
        func unmountModes() throws {
            let stack = try layers("cliumount")
            let spec = OverlaySpec(lowerDirectories: stack.lowers)
            try mounter.mount(.overlay(spec), at: stack.target)
            let lazy = try unionmount("umount", "--lazy", stack.target.string, "--json")
            #expect((try lazy.json() as? [String: Any])?["outcome"] as? String == "detached", "\(lazy)")
            #expect(!MountTable.isMountPoint(stack.target))

            let inner = try stack.scratch.directory("m2")
            try mounter.mount(.overlay(spec), at: stack.target)
            try mounter.mount(.overlay(spec), at: inner)
            let recursive = try unionmount("umount", "--recursive", stack.scratch.path.string, "--json")
            #expect(recursive.status == 0, "\(recursive)")
            let unmounted = try #require((try recursive.json() as? [String: Any])?["unmounted"] as? [String])
            #expect(Set(unmounted) == [stack.target.string, inner.string])
            #expect(!MountTable.isMountPoint(stack.target) && !MountTable.isMountPoint(inner))
            let text = try unionmount("umount", stack.target.string)
            #expect(text.output == "not-mounted: \(stack.target)\n")
        }

        @Test("holders names an open file; umount of the busy mount exits 1 naming it")
        func holders() throws {
            let stack = try layers("cliholders")
            try mounter.mount(.overlay(OverlaySpec(lowerDirectories: stack.lowers)), at: stack.target)
            defer { _ = try? mounter.unmount(stack.target, options: UnmountOptions(lazy: true)) }
            let none = try unionmount("holders", stack.target.string)
            #expect(none.output.hasPrefix("nothing holds \(stack.target)\n"), "\(none)")
            let file = try FileDescriptor.open(stack.target.appending("x"), .readOnly)
            defer { try? file.close() }
            let report = try unionmount("holders", stack.target.string, "--json")
            let holders = try #require((try report.json() as? [String: Any])?["holders"] as? [[String: Any]])
            #expect(
                holders.contains { $0["kind"] as? String == "open-file" && $0["pid"] as? Int == Int(getpid()) },
                "\(report)")
            let busy = try unionmount("umount", "--retries", "0", stack.target.string)
            #expect(busy.status == 1)
            #expect(busy.errorOutput.contains("held: process \(getpid())"), "\(busy)")
        }

        @Test("mount --dry-run mounts nothing; a refused mount exits 1 with the kernel's reason and leaves nothing")
        func dryRunAndFailure() throws {
            let stack = try layers("clifail")
            let dryRun = try unionmount(
                "mount", "--lower", stack.lowers[0].string, "--upper", stack.upper.string, "--work",
                stack.work.string, "--dry-run", "--json", stack.target.string)
            #expect(dryRun.status == 0, "\(dryRun)")
            #expect(try dryRun.decode(MountPlan.self).steps.isEmpty == false)
            #expect(!MountTable.isMountPoint(stack.target))

            let missing = stack.scratch.path.appending("no-such-layer")
            let failed = try unionmount(
                "mount", "--lower", missing.string, "--upper", stack.upper.string, "--work", stack.work.string,
                "--json", stack.target.string)
            #expect(failed.status == 1, "\(failed)")
            #expect(failed.stdout.isEmpty)
            #expect(failed.errorOutput.hasPrefix("unionmount: "))
            #expect(failed.errorOutput.contains("ENOENT"))
            #expect(failed.errorOutput.contains("cause: lowerdir \(missing) does not exist"))
            #expect(!MountTable.isMountPoint(stack.target))

            if !KernelFeatures.current.aufs {
                let aufs = try unionmount(
                    "mount", "--branch", stack.upper.string, "--branch", "\(stack.lowers[0])=ro", stack.target.string)
                #expect(aufs.status == 1, "\(aufs)")
                #expect(aufs.errorOutput.contains("aufs"))
                #expect(!MountTable.isMountPoint(stack.target))
            }
        }

        @Test("demo as root: mounts, shows the merged view, writes through, cleans up")
        func demoAsRoot() throws {
            let result = try runProcess(try Examples.path("unionmount"), ["demo"], environment: ["TMPDIR": "/tmp"])
            try expectDemo(result)
            if KernelFeatures.current.idmappedLayers {
                #expect(result.output.contains("  D/x owner 100000:100000   A/x owner 0:0"), "\(result)")
                #expect(result.output.contains("unmount D: unmounted"), "\(result)")
            }
        }

        @Test(
            "demo as an unprivileged user: re-runs itself in a user namespace (rootless overlay)",
            .enabled(
                if: UnprivilegedDemo.unavailableReason == nil,
                "needs setpriv(1), unprivileged user namespaces, and a build directory uid 65534 can reach"))
        func demoUnprivileged() throws {
            let prefix = try #require(UnprivilegedDemo.dropPrivileges)
            let result = try runProcess(
                prefix[0], Array(prefix.dropFirst()) + [try Examples.path("unionmount"), "demo"],
                environment: ["TMPDIR": "/tmp", "PATH": "/usr/bin:/bin"], directory: "/")
            try expectDemo(result)
            #expect(result.output.hasPrefix("not root: running the demo in a user namespace"))
            // The plan's flag step is the new mount API's (overlay's lowerdir+, 6.8+); older kernels pass
            // userxattr in mount(2)'s data.
            if NewMountAPI.available { #expect(result.output.contains("fsconfig FSCONFIG_SET_FLAG userxattr")) }
            #expect(result.output.contains("userxattr"))
        }

        private func expectDemo(_ result: ProcessResult, sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(result.status == 0, "\(result)", sourceLocation: sourceLocation)
            let output = result.output
            for line in [
                "mounted A over B at C with ", "  a  <- A   a from A", "  b  <- B   b from B", "  x  <- A   x from A",
                "wrote C/new: in A? true  in B? false", "A/b: character device 0/0", "  new  <- A   written through C",
                "unmount C: unmounted",
            ] {
                let comment: Comment = "missing \(line.debugDescription)\n\(result)"
                #expect(output.contains(line), comment, sourceLocation: sourceLocation)
            }
            // After the whiteout, b is no longer in the merged view.
            let after = try #require(output.components(separatedBy: "C now:").last, sourceLocation: sourceLocation)
            #expect(!after.contains("  b "), sourceLocation: sourceLocation)
            // Everything is cleaned up: nothing mounted, the demo directory removed.
            let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("A = ") })
            let a = String(line.dropFirst(4).prefix { $0 != " " })
            let base = (a as NSString).deletingLastPathComponent
            #expect(base.hasPrefix("/tmp/unionmount-demo-"), sourceLocation: sourceLocation)
            #expect(!FileManager.default.fileExists(atPath: base), sourceLocation: sourceLocation)
            #expect(try MountTable.entries(source: .mountinfo).allSatisfy { !$0.mountPoint.string.hasPrefix(base) })
        }

        @Test("assemble-rootfs: a rootfs from layers, then --teardown removes only the empty mount point")
        func assembleRootfs() throws {
            let stack = try layers("cliassemble")
            let container = stack.scratch.path.appending("container")
            let executable = try Examples.path("assemble-rootfs")
            let result = try runProcess(executable, [container.string] + stack.lowers.map(\.string))
            #expect(result.status == 0, "\(result)")
            let rootfs = container.appending("rootfs")
            let strategy = try mounter.plan(.overlay(stack.spec), at: rootfs).strategy.rawValue
            #expect(result.output == "strategy: \(strategy)\nrootfs: \(rootfs)\n")
            #expect(MountTable.isMountPoint(rootfs))
            #expect(readFile(rootfs.appending("x")) == "x from l1")
            let report = try #require(try MountTable.report(at: rootfs))
            #expect(report.source == "assemble-rootfs")
            #expect(report.branches.map(\.path) == [container.appending("upper")] + stack.lowers)

            let teardown = try runProcess(executable, ["--teardown", container.string])
            #expect(teardown.status == 0, "\(teardown)")
            #expect(teardown.output == "unmounted: unmounted\nremoved: \(rootfs)\n")
            #expect(!fileExists(rootfs))
            #expect(fileExists(container.appending("upper")) && fileExists(container.appending("work")))
            #expect(try runProcess(executable, ["--teardown"]).status == 64)
        }

        @Test("union-mounts: every union mount's branch state, text and --json")
        func unionMounts() throws {
            let stack = try layers("cliunion")
            try mounter.mount(.overlay(stack.spec), at: stack.target)
            defer { _ = try? mounter.unmount(stack.target) }
            let executable = try Examples.path("union-mounts")
            let json = try runProcess(executable, ["--json"])
            #expect(json.status == 0, "\(json)")
            let reports = try json.decode([UnionMountReport].self)
            let mine = try #require(reports.first { $0.mountPoint == stack.target })
            #expect(mine.branches.map(\.path) == [stack.upper] + stack.lowers)
            let text = try runProcess(executable, [])
            #expect(text.output.contains("overlay \(stack.target) (source overlay, rw)"))
            #expect(text.output.contains("  0 upper rw \(stack.upper)"))
            #expect(try mounter.unmount(stack.target) == .unmounted)
        }
    }
}
