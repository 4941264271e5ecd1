import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// Whether fuse-overlayfs mounts can be made here: FUSE in the kernel, `/dev/fuse` and the program.
enum FuseOverlayfsEnvironment {
    static let available = KernelFeatures.current.fuse && KernelFeatures.current.fuseOverlayfsProgram != nil

    /// Live processes (not zombies) whose command line mentions `path`.
    static func processes(mentioning path: FilePath) -> [Int] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var found: [Int] = []
        let needle = path.bytes
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = Int(name), pid != Int(getpid()),
                let commandLine = readSmallFile(FilePath("/proc/\(pid)/cmdline")), !commandLine.isEmpty
            else { continue }
            if commandLine.split(separator: 0).contains(where: { $0.elementsEqual(needle) }) { found.append(pid) }
        }
        return found
    }

    /// Waits up to two seconds for the daemon serving `target` to exit after its unmount.
    static func daemonGone(_ target: FilePath) -> Bool {
        for _ in 0..<100 {
            if processes(mentioning: target).isEmpty { return true }
            sleep(for: .milliseconds(20))
        }
        return false
    }
}

extension PrivilegedTests {
    /// Real fuse-overlayfs mounts (the program, spawned), read back through the merged view and mountinfo.
    @Suite(.enabled(if: FuseOverlayfsEnvironment.available, "needs FUSE and the fuse-overlayfs program"))
    struct FuseOverlayfsMounts {
        let mounter = Mounter()

        @Test("layer counts with ~100-byte paths", arguments: [2, 128])
        func layerCounts(count: Int) throws {
            let stack = try LayerStack(count: count, nameBytes: longName(70))
            #expect(stack.lowers[0].length >= 95)
            let plan = try mounter.mount(.overlay(stack.spec()), at: stack.target, strategy: .fuseOverlayfs)
            defer { _ = try? mounter.unmount(stack.target) }
            #expect(plan.strategy == .fuseOverlayfs)
            // The parent has exited: the mount is already there.
            let entry = try #require(try mountEntry(at: stack.target))
            #expect(entry.filesystemType == "fuse.fuse-overlayfs")
            #expect(entry.source == "fuse-overlayfs")
            stack.expectMergedView()
            try writeFile(stack.target.appending("written"), "w")
            #expect(readFile(stack.upper.appending("written")) == "w")
            // Deleting a lower file through the merged view leaves a whiteout in the upper layer only.
            let last = count - 1
            #expect(stack.target.appending("only-\(last)").withPlatformString { unlink($0) } == 0)
            #expect(!fileExists(stack.target.appending("only-\(last)")))
            #expect(fileExists(stack.lowers[last].appending("only-\(last)")))
            var info = stat()
            let whiteout = stack.upper.appending("only-\(last)").withPlatformString { lstat($0, &info) } == 0
            let named = fileExists(stack.upper.appending(".wh.only-\(last)"))
            #expect(whiteout ? info.st_mode & S_IFMT == S_IFCHR && info.st_rdev == 0 : named)

            #expect(try mounter.unmount(stack.target) == .unmounted)
            #expect(try mountEntry(at: stack.target) == nil)
            #expect(
                try MountTable.entries(source: .mountinfo).allSatisfy {
                    !$0.mountPoint.starts(with: stack.scratch.path)
                })
            #expect(FuseOverlayfsEnvironment.daemonGone(stack.target))
        }

        @Test("flags become ro/nosuid/noexec on the mount")
        func flags() throws {
            let stack = try LayerStack(count: 2, nameBytes: Array("l".utf8))
            try mounter.mount(
                .overlay(stack.spec(writable: false)), at: stack.target, flags: [.readOnly, .noSetUID, .noExecute],
                strategy: .fuseOverlayfs)
            defer { _ = try? mounter.unmount(stack.target) }
            let entry = try #require(try mountEntry(at: stack.target))
            #expect(entry.isReadOnly)
            #expect(entry.mountOptions.contains("nosuid"))
            #expect(entry.mountOptions.contains("noexec"))
            stack.expectMergedView()
        }

        @Test("hostile layer names mount with the right layers, or are refused by field")
        func hostileNames() throws {
            for (index, name) in PrivilegedTests.HostileNames.names.enumerated() {
                let scratch = try Scratch("fuse-hostile")
                let hostile = try scratch.directory(name)
                let plain = try scratch.directory("plain")
                try writeFile(hostile.appending("mine"), "hostile \(index)")
                try writeFile(hostile.appending("x"), "top")
                try writeFile(plain.appending("x"), "bottom")
                try writeFile(plain.appending("base"), "base")
                // The same bytes as upper (refused with ':'), as work (always fine) and in the mount point.
                let upper = try scratch.directory(Array("up-".utf8) + name)
                let work = try scratch.directory(Array("wo-".utf8) + name)
                let target = try scratch.directory(Array("mnt-".utf8) + name)
                let spec = OverlaySpec(lowerDirectories: [hostile, plain], upperDirectory: upper, workDirectory: work)
                if name.contains(UInt8(ascii: ":")) {
                    let error = thrown { try mounter.mount(.overlay(spec), at: target, strategy: .fuseOverlayfs) }
                    #expect(error?.code == .invalidSpec, "\(name.readable)")
                    #expect(error?.input == "lowerDirectories[0]", "\(name.readable)")
                    #expect(!MountTable.isMountPoint(target))
                    var upperOnly = spec
                    upperOnly.lowerDirectories = [plain]
                    let upperError = thrown {
                        try mounter.mount(.overlay(upperOnly), at: target, strategy: .fuseOverlayfs)
                    }
                    #expect(upperError?.input == "upperDirectory", "\(name.readable)")
                    continue
                }
                try mounter.mount(.overlay(spec), at: target, strategy: .fuseOverlayfs)
                defer { _ = try? mounter.unmount(target) }
                #expect(readFile(target.appending("mine")) == "hostile \(index)", "\(name.readable)")
                #expect(readFile(target.appending("x")) == "top", "\(name.readable)")
                #expect(readFile(target.appending("base")) == "base", "\(name.readable)")
                try writeFile(target.appending("new"), "n")
                #expect(readFile(upper.appending("new")) == "n", "\(name.readable)")
                #expect(fileExists(work.appending("work")), "\(name.readable)")
                #expect(try mounter.unmount(target) == .unmounted)
            }
        }

        @Test("a directory named like an option injects nothing")
        func noInjection() throws {
            let scratch = try Scratch("fuse-inject")
            let evil = try scratch.directory("evil")
            let evilLower = try scratch.directory("evil-lower")
            try writeFile(evilLower.appending("secret"), "evil")
            let lower = try scratch.directory(
                "x,upperdir=\(evil.string),lowerdir=\(evilLower.string)\\,y\\012z\\")
            try writeFile(lower.appending("f"), "lower")
            let other = try scratch.directory("other")
            let upper = try scratch.directory("u,workdir=\(evil.string)")
            let work = try scratch.directory("w")
            let target = try scratch.directory("m")
            let spec = OverlaySpec(lowerDirectories: [lower, other], upperDirectory: upper, workDirectory: work)
            try mounter.mount(.overlay(spec), at: target, strategy: .fuseOverlayfs)
            defer { _ = try? mounter.unmount(target) }
            #expect(readFile(target.appending("f")) == "lower")
            #expect(!fileExists(target.appending("secret")))
            try writeFile(target.appending("written"), "w")
            #expect(readFile(upper.appending("written")) == "w")
            #expect(!fileExists(evil.appending("written")))
            #expect(!fileExists(evil.appending("work")))
            #expect(fileExists(work.appending("work")))
        }

        @Test("a failing run throws with fuse-overlayfs's stderr and mounts nothing")
        func failingRun() throws {
            let scratch = try Scratch("fuse-fail")
            let missing = scratch.path.appending("no-such-layer")
            let present = try scratch.directory("present")
            let target = try scratch.directory("m")
            let spec = OverlaySpec(lowerDirectories: [missing, present])
            let error = try #require(thrown { try mounter.mount(.overlay(spec), at: target, strategy: .fuseOverlayfs) })
            #expect(error.code == .systemCallFailed)
            #expect(error.systemCall == "fuse-overlayfs")
            #expect(error.message.contains("exited with status 1"))
            #expect(error.kernelMessages.contains { $0.contains(missing.string) })
            #expect(error.plan?.strategy == .fuseOverlayfs)
            #expect(error.spec == .overlay(spec))
            #expect(!MountTable.isMountPoint(target))
        }

        @Test("an option the program ignores is refused after the fact, and unmounted")
        func ignoredOption() throws {
            let stack = try LayerStack(count: 2, nameBytes: Array("l".utf8))
            var spec = stack.spec()
            spec.options.additional = [.init("unionmount_no_such_option", "1")]
            let error = try #require(
                thrown { try mounter.mount(.overlay(spec), at: stack.target, strategy: .fuseOverlayfs) })
            #expect(error.code == .unsupported)
            #expect(error.message.contains("unionmount_no_such_option=1"))
            #expect(!MountTable.isMountPoint(stack.target))
        }

        @Test("umount2 refused with EPERM on a FUSE mount falls back to fusermount3 -u")
        func fusermountFallback() throws {
            let stack = try LayerStack(count: 2, nameBytes: Array("l".utf8))
            try mounter.mount(.overlay(stack.spec()), at: stack.target, strategy: .fuseOverlayfs)
            defer { _ = try? mounter.unmount(stack.target) }
            // umount2 answers EPERM as it would without root; fusermount3 (really spawned, as root) unmounts.
            let recorder = SyscallRecorder { call in call.name == "umount2" ? (-1, EPERM, []) : (0, 0, []) }
            let outcome = try recorder.run { try mounter.unmount(stack.target) }
            #expect(outcome == .unmounted)
            #expect(recorder.calls.map(\.name) == ["umount2"])
            #expect(!MountTable.isMountPoint(stack.target))
            #expect(FuseOverlayfsEnvironment.daemonGone(stack.target))
            // EPERM on anything but a FUSE mount stays an error: nothing is spawned for an overlay mount (the
            // planner's strategy: the new mount API only where this kernel has it; a kernel without overlay has
            // none to try).
            guard KernelOverlay.available else { return }
            try mounter.mount(.overlay(stack.spec()), at: stack.target)
            let error = thrown { try recorder.run { try mounter.unmount(stack.target) } }
            #expect(error?.systemCall == "umount2")
            #expect(error?.errno == .notPermitted)
            #expect(MountTable.isMountPoint(stack.target))
        }

        @Test("without root: unionmount umount goes through fusermount3 (and mounts, where /dev/fuse allows)")
        func unprivilegedCommandLine() throws {
            guard let prefix = UnprivilegedDemo.dropPrivileges else { return }
            let executable = try Examples.path("unionmount")
            guard (try? runProcess(prefix[0], Array(prefix.dropFirst()) + [executable, "--help"]))?.status == 0 else {
                return
            }
            let scratch = try Scratch("fuse-rootless")
            _ = scratch.path.withPlatformString { chmod($0, 0o755) }
            let lower = try scratch.directory("lower")
            try writeFile(lower.appending("f"), "lower")
            let lower2 = try scratch.directory("lower2")
            let owned = ["upper", "work", "m"].map { scratch.path.appending($0) }
            for path in owned {
                try makeDirectories(path)
                _ = path.withPlatformString { chown($0, 65534, 65534) }
            }
            let target = owned[2]
            defer { _ = try? mounter.unmount(target) }
            let asNobody = { (arguments: [String]) in
                try runProcess(prefix[0], Array(prefix.dropFirst()) + [executable] + arguments)
            }
            var device = stat()
            let fuseForAll = stat("/dev/fuse", &device) == 0 && device.st_mode & 0o006 == 0o006
            guard fuseForAll else {
                // This machine keeps /dev/fuse to root: mount as root, and see the unprivileged unmount go to
                // fusermount3, which refuses a mount that is not the user's, with its own words.
                let spec = OverlaySpec(lowerDirectories: [lower, lower2])
                try mounter.mount(.overlay(spec), at: target, strategy: .fuseOverlayfs)
                let refused = try asNobody(["umount", "--retries", "0", target.string])
                #expect(refused.status != 0, "\(refused)")
                #expect(refused.errorOutput.contains("fusermount"), "\(refused)")
                #expect(MountTable.isMountPoint(target))
                #expect(try mounter.unmount(target) == .unmounted)
                return
            }
            let mount = try asNobody([
                "mount", "--strategy", "fuse-overlayfs", "--lower", lower.string, "--lower", lower2.string, "--upper",
                owned[0].string, "--work", owned[1].string, target.string,
            ])
            try #require(mount.status == 0, "\(mount)")
            #expect(try mountEntry(at: target)?.filesystemType == "fuse.fuse-overlayfs")
            #expect(readFile(target.appending("f")) == "lower")
            let unmount = try asNobody(["umount", target.string])
            #expect(unmount.status == 0, "\(unmount)")
            #expect(!MountTable.isMountPoint(target))
        }
    }
}
