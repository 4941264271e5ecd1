#if ENABLE_MOCKING
    #if canImport(Glibc)
        import Glibc
    #endif
    import SystemPackage
    import Testing

    @testable import UnionMount

    /// Plans run against ``SyscallRecorder`` instead of the kernel: the exact call sequence, stopping at the first
    /// failing fsconfig(2), draining the fs-context log, and the aufs sequence this kernel cannot run.
    @Suite struct RecordedSyscallTests {
        /// Features of a Linux 6.18-like kernel, fixed so the plans do not depend on the test machine.
        static let modernKernel = KernelFeatures(
            pageSize: 4096, overlay: true, aufs: true, fuse: true, fuseOverlayfsProgram: nil, newMountAPI: true,
            overlayParameterParsing: true, appendLowerDirectory: true, layerFileDescriptors: true, dataOnlyLayers: true,
            userXattr: .accepted, redirectDirectory: .accepted, index: .accepted, inodeNumbers: .accepted,
            metacopy: .accepted, volatile: .accepted, statmount: true, listmount: true, initialUserNamespace: true,
            userNamespaces: true,
            maximumLayers: 500, overlayModuleParameters: [:])

        @Test("new mount API: stop at the first failing fsconfig, with the kernel's message")
        func stopsAtFirstFailingFsconfig() throws {
            let recorder = SyscallRecorder { call in
                if call.name == "fsconfig" && call.arguments.last == "/l3" {
                    return (-1, EINVAL, ["e overlay: too many lower directories, limit is 500\n"])
                }
                return (0, 0, [])
            }
            let spec = OverlaySpec(lowerDirectories: ["/l1", "/l2", "/l3", "/l4"])
            let mounter = Mounter(features: Self.modernKernel)
            let error = try recorder.run {
                try #require(throws: UnionMountError.self) { try mounter.mount(.overlay(spec), at: "/target") }
            }
            #expect(error.systemCall == "fsconfig")
            #expect(error.errno == .invalidArgument)
            #expect(error.kernelMessages.first == "e overlay: too many lower directories, limit is 500")
            #expect(error.plan?.strategy == .newMountAPI)
            let names = recorder.calls.map(\.name)
            // source, l1, l2, l3: no create
            #expect(names == ["fsopen", "fsconfig", "fsconfig", "fsconfig", "fsconfig"])
            #expect(error.message.contains("lowerdir+=/l3"))
        }

        @Test("new mount API: the full sequence")
        func fullSequence() throws {
            let recorder = SyscallRecorder { _ in (0, 0, []) }
            var options = OverlayOptions()
            options.index = false
            options.userXattr = true
            let spec = OverlaySpec(
                lowerDirectories: ["/l1", "/l,2"], dataDirectories: ["/d1"], upperDirectory: "/u:p",
                workDirectory: "/w", options: options)
            try recorder.run {
                try Mounter(features: Self.modernKernel).mount(.overlay(spec), at: "/t", flags: .noSetUID)
            }
            #expect(
                recorder.calls.map(\.description) == [
                    "fsopen(overlay)",
                    "fsconfig(1, source, overlay)",
                    "fsconfig(1, lowerdir+, /l1)",
                    "fsconfig(1, lowerdir+, /l,2)",
                    "fsconfig(1, datadir+, /d1)",
                    "fsconfig(1, upperdir, /u\\:p)",
                    "fsconfig(1, workdir, /w)",
                    "fsconfig(1, index, off)",
                    "fsconfig(0, userxattr, 0)",
                    "fsconfig(6, , 0)",
                    "fsmount(2)",
                    "move_mount(/t)",
                ])
        }

        @Test("mount-fd: unshare, then open and dup3 per directory, chdir, mount; a failed open stops there")
        func descriptorSequence() throws {
            let recorder = SyscallRecorder { _ in (0, 0, []) }
            let spec = OverlaySpec(lowerDirectories: ["/l0", "/l1"], upperDirectory: "/u", workDirectory: "/w")
            try recorder.run {
                try Mounter(features: Self.modernKernel).mount(.overlay(spec), at: "/t", strategy: .legacyDescriptors)
            }
            #expect(
                recorder.calls.map(\.description) == [
                    "unshare(CLONE_FS|CLONE_FILES)",
                    "open(/l0)", "dup3(1000001, 0)",
                    "open(/l1)", "dup3(1000002, 1)",
                    "open(/u)", "dup3(1000003, 2)",
                    "open(/w)", "dup3(1000004, 3)",
                    "chdir(/proc/thread-self/fd)",
                    "mount(overlay, /t, overlay, 0, lowerdir=0:1,upperdir=2,workdir=3)",
                ])

            let failing = SyscallRecorder { call in
                call.name == "open" && call.arguments == ["/u"] ? (-1, ENOENT, []) : (0, 0, [])
            }
            let error = try failing.run {
                try #require(throws: UnionMountError.self) {
                    try Mounter(features: Self.modernKernel).mount(
                        .overlay(spec), at: "/t", strategy: .legacyDescriptors)
                }
            }
            #expect(error.systemCall == "open")
            #expect(error.errno == .noSuchFileOrDirectory)
            #expect(error.message.contains("/u (as descriptor 2)"))
            #expect(failing.calls.map(\.name) == ["unshare", "open", "dup3", "open", "dup3", "open"])
        }

        @Test("aufs: 300 branches as one mount and append remounts within the page")
        func aufsSequence() throws {
            let branches = (0..<300).map { index in
                AufsBranch(
                    FilePath("/var/lib/docker/aufs/diff/" + String(repeating: "f", count: 64) + "-\(index)"),
                    index == 0 ? .readWrite : .readOnly, attributes: index == 0 ? [] : [.whiteout])
            }
            var options = AufsOptions()
            options.directIO = true
            options.externalInodeNumbers = .path("/dev/shm/aufs.xino")
            let spec = AufsSpec(branches: branches, options: options)
            let recorder = SyscallRecorder { _ in (0, 0, []) }
            try recorder.run { try Mounter(features: Self.modernKernel).mount(.aufs(spec), at: "/mnt/c") }
            let calls = recorder.calls
            #expect(calls.count > 1)
            #expect(calls.allSatisfy { $0.name == "mount" && $0.arguments[2] == "aufs" })
            #expect(calls[0].arguments[4].hasPrefix("br:"))
            #expect(calls[0].arguments[3] == "0")
            #expect(calls.dropFirst().allSatisfy { $0.arguments[3] == String(MountFlags.remount.rawValue) })
            #expect(calls.allSatisfy { $0.arguments[4].utf8.count <= 4095 })
            // Every branch once, in order.
            var seen: [String] = []
            for call in calls {
                for option in call.arguments[4].split(separator: ",") {
                    if option.hasPrefix("br:") {
                        seen += option.dropFirst(3).split(separator: ":").map { String($0.split(separator: "=")[0]) }
                    } else if option.hasPrefix("append:") {
                        seen.append(String(option.dropFirst(7).split(separator: "=")[0]))
                    }
                }
            }
            #expect(seen == branches.map(\.path.string))
        }

        @Test("aufs: a failed append takes the half-built union down")
        func aufsRollback() throws {
            let branches = (0..<300).map { AufsBranch(FilePath("/b/" + String(repeating: "d", count: 90) + "\($0)")) }
            let recorder = SyscallRecorder { call in
                call.name == "mount" && call.arguments[3] != "0" ? (-1, EINVAL, []) : (0, 0, [])
            }
            let spec = AufsSpec(branches: [AufsBranch("/rw", .readWrite)] + branches)
            let error = try recorder.run {
                try #require(throws: UnionMountError.self) {
                    try Mounter(features: Self.modernKernel).mount(.aufs(spec), at: "/mnt/c")
                }
            }
            #expect(error.systemCall == "mount")
            #expect(error.errno == .invalidArgument)
            #expect(recorder.calls.map(\.name) == ["mount", "mount", "umount2"])
            #expect(recorder.calls.last?.arguments == ["/mnt/c", String(MNT_DETACH)])
        }

        @Test("aufs: ENODEV says aufs is not available")
        func aufsMissing() throws {
            let recorder = SyscallRecorder { _ in (-1, ENODEV, []) }
            let spec = AufsSpec(branches: [AufsBranch("/rw", .readWrite), AufsBranch("/ro")])
            let error = try recorder.run {
                try #require(throws: UnionMountError.self) {
                    try Mounter(features: Self.modernKernel).mount(.aufs(spec), at: "/mnt/c")
                }
            }
            #expect(error.code == .unsupported)
            #expect(error.message.contains("aufs is not available on this kernel"))
        }
    }
#endif
