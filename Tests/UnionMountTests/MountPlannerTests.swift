import Foundation
import SystemPackage
import Testing

@testable import UnionMount

/// The planner's ladder on kernels described by hand, so every rung is reached whatever this machine is.
@Suite struct MountPlannerTests {
    static func kernel(
        newAPI: Bool = true, lowerdirPlus: Bool = true, fds: Bool = true, initialUserNamespace: Bool = true,
        overlay: Bool = true, fuse: Bool = false, fuseOverlayfsProgram: String? = nil
    ) -> KernelFeatures {
        KernelFeatures(
            pageSize: 4096, overlay: overlay, aufs: false, fuse: fuse, fuseOverlayfsProgram: fuseOverlayfsProgram,
            newMountAPI: newAPI,
            overlayParameterParsing: newAPI, appendLowerDirectory: lowerdirPlus, layerFileDescriptors: fds,
            dataOnlyLayers: true, userXattr: .accepted, redirectDirectory: .accepted, index: .accepted,
            inodeNumbers: .accepted, metacopy: .accepted, volatile: .accepted, statmount: false, listmount: false,
            initialUserNamespace: initialUserNamespace, userNamespaces: true, maximumLayers: 500,
            overlayModuleParameters: [:])
    }

    /// `count` layers named `/srv/containers/<padding>/layers/<index>` of about `length` bytes each.
    static func layers(_ count: Int, length: Int = 100) -> [FilePath] {
        let padding = String(repeating: "p", count: max(1, length - 30))
        return (0..<count).map { FilePath("/srv/containers/\(padding)/layers/\($0)") }
    }

    @Test func modernKernelUsesNewMountAPI() throws {
        let spec = OverlaySpec(lowerDirectories: Self.layers(500), upperDirectory: "/srv/u", workDirectory: "/srv/w")
        let plan = try Mounter(features: Self.kernel()).plan(.overlay(spec), at: "/m")
        #expect(plan.strategy == .newMountAPI)
        #expect(plan.steps.filter { if case .setString("lowerdir+", _) = $0 { true } else { false } }.count == 500)
        #expect(plan.steps.first == .fsopen(filesystemType: "overlay"))
        #expect(plan.steps.suffix(3) == [.create, .fsmount(attributes: []), .moveMount(target: "/m")])
    }

    @Test func longPathsGoByDescriptorOrFallBack() throws {
        let long = FilePath("/" + String(repeating: "d", count: 300))
        let spec = OverlaySpec(lowerDirectories: [long, "/b"])
        let withFDs = try Mounter(features: Self.kernel()).plan(.overlay(spec), at: "/m")
        #expect(withFDs.steps.contains(.setFileDescriptor(key: "lowerdir+", path: long)))
        let withoutFDs = try Mounter(features: Self.kernel(fds: false)).plan(.overlay(spec), at: "/m")
        #expect(withoutFDs.strategy == .legacy)
    }

    @Test func oldKernelLadder() throws {
        let old = Self.kernel(newAPI: false, lowerdirPlus: false, fds: false)
        // Fits a page with absolute paths.
        let small = OverlaySpec(lowerDirectories: Self.layers(20))
        #expect(try Mounter(features: old).plan(.overlay(small), at: "/m").strategy == .legacy)
        // 100 × ~100 bytes does not; relative to /srv/containers/<padding>/layers the names are tiny.
        let large = OverlaySpec(lowerDirectories: Self.layers(100))
        let plan = try Mounter(features: old).plan(.overlay(large), at: "/m")
        #expect(plan.strategy == .legacyRelative)
        guard case .mount(_, _, _, _, let data, let directory?) = plan.steps[0] else {
            Issue.record("no relative mount step")
            return
        }
        #expect(directory == FilePath("/srv/containers/" + String(repeating: "p", count: 70) + "/layers"))
        #expect(data.starts(with: Array("lowerdir=0:1:2:".utf8)))
        #expect(data.count <= 4095)
    }

    @Test func tooLongForEveryStrategySaysHowLong() throws {
        let old = Self.kernel(newAPI: false, lowerdirPlus: false, fds: false)
        // Layers spread over different top directories share no directory but `/`; and an option of 4000 bytes
        // leaves no room even for descriptor numbers.
        let spread = (0..<60).map { FilePath("/top\($0)/" + String(repeating: "q", count: 90)) }
        var options = OverlayOptions()
        options.additional = [OverlayOptions.RawOption("comment", String(repeating: "c", count: 4000))]
        let error = try #require(throws: UnionMountError.self) {
            try Mounter(features: old).plan(
                .overlay(OverlaySpec(lowerDirectories: spread, options: options)), at: "/m")
        }
        #expect(error.code == .optionsTooLong)
        #expect(error.message.contains("4095"))
        #expect(error.message.contains("options need"))
        #expect(error.message.contains("mount-relative: the layers share no directory but /"))
        #expect(error.message.contains("mount-fd: options need"))
    }

    @Test func userXattrAddedOutsideTheInitialUserNamespace() throws {
        let spec = OverlaySpec(lowerDirectories: ["/a", "/b"])
        let plan = try Mounter(features: Self.kernel(initialUserNamespace: false)).plan(.overlay(spec), at: "/m")
        #expect(plan.steps.contains(.setFlag(key: "userxattr")))
        var explicit = spec
        explicit.options.userXattr = false
        let kept = try Mounter(features: Self.kernel(initialUserNamespace: false)).plan(.overlay(explicit), at: "/m")
        #expect(!kept.steps.contains(.setFlag(key: "userxattr")))
        let root = try Mounter(features: Self.kernel()).plan(.overlay(spec), at: "/m")
        #expect(!root.steps.contains(.setFlag(key: "userxattr")))
    }

    @Test("data-only layers get metacopy=on (6.5-6.15 refuse them without), unless the spec rules it out")
    func dataOnlyLayersAskForMetacopy() throws {
        let metacopyOn = MountStep.setString(key: "metacopy", value: "on")
        func steps(_ spec: OverlaySpec, initialUserNamespace: Bool = true) throws -> [MountStep] {
            try Mounter(features: Self.kernel(initialUserNamespace: initialUserNamespace)).plan(
                .overlay(spec), at: "/m"
            )
            .steps
        }
        let spec = OverlaySpec(lowerDirectories: ["/a"], dataDirectories: ["/d"])
        #expect(try steps(spec).contains(metacopyOn))
        let plan = try Mounter(features: Self.kernel()).plan(.overlay(spec), at: "/m")
        #expect(
            plan.spec
                == .overlay(
                    OverlaySpec(lowerDirectories: ["/a"], dataDirectories: ["/d"], options: .init(metacopy: true))))
        #expect(try !steps(OverlaySpec(lowerDirectories: ["/a", "/b"])).contains(metacopyOn), "no data-only layers")
        var kept = spec
        kept.options.metacopy = false
        #expect(try steps(kept).contains(.setString(key: "metacopy", value: "off")))
        // A user namespace: userxattr is added, which rules out metacopy (and trusted xattrs are out of reach).
        let rootless = try steps(spec, initialUserNamespace: false)
        #expect(rootless.contains(.setFlag(key: "userxattr")) && !rootless.contains(metacopyOn))
        for redirect in [OverlayOptions.RedirectDirectory.nofollow, .off, .follow] {
            var conflicting = spec
            conflicting.options.redirectDirectory = redirect
            #expect(try !steps(conflicting).contains(metacopyOn), "redirect_dir=\(redirect.rawValue)")
        }
        var redirectOn = spec
        redirectOn.options.redirectDirectory = .on
        #expect(try steps(redirectOn).contains(metacopyOn))
        // mount(2) carries it too.
        let legacy = try Mounter(features: Self.kernel(newAPI: true, lowerdirPlus: false, fds: false))
            .plan(.overlay(spec), at: "/m")
        guard case .mount(_, _, _, _, let data, _) = legacy.steps.first else {
            Issue.record("no mount step: \(legacy.steps)")
            return
        }
        #expect(String(decoding: data, as: UTF8.self).split(separator: ",").contains("metacopy=on"))
    }

    @Test func invalidSpecIsRefusedBeforeAnySystemCall() throws {
        let error = try #require(throws: UnionMountError.self) {
            try Mounter(features: Self.kernel()).plan(.overlay(OverlaySpec(lowerDirectories: [])), at: "/m")
        }
        #expect(error.code == .invalidSpec)
        #expect(error.input != nil)
    }

    @Test func planJSONNamesEveryArgument() throws {
        let spec = OverlaySpec(lowerDirectories: ["/a", "/b"], upperDirectory: "/u", workDirectory: "/w")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for strategy in [MountStrategy.newMountAPI, .legacy] {
            let plan = try Mounter(features: Self.kernel()).plan(.overlay(spec), at: "/m", strategy: strategy)
            let data = try encoder.encode(plan)
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect(object["strategy"] as? String == strategy.rawValue)
            let steps = try #require(object["steps"] as? [[String: Any]])
            #expect(steps.count == plan.steps.count)
            if strategy == .legacy {
                #expect(steps[0]["syscall"] as? String == "mount")
                #expect(steps[0]["data"] as? String == "lowerdir=/a:/b,upperdir=/u,workdir=/w")
                #expect(steps[0]["flags"] as? [String] == [])
                #expect(steps[0]["fstype"] as? String == "overlay")
            } else {
                #expect(steps[2]["command"] as? String == "FSCONFIG_SET_STRING")
                #expect(steps[2]["key"] as? String == "lowerdir+")
                #expect(steps[2]["value"] as? String == "/a")
            }
            #expect(try JSONDecoder().decode(MountPlan.self, from: data) == plan)
        }
    }

    @Test func diagnosesTrustedXattrFeaturesInAUserNamespace() throws {
        var options = OverlayOptions()
        options.metacopy = true
        let spec = OverlaySpec(lowerDirectories: ["/", "/"], dataDirectories: ["/tmp"], options: options)
        let found = OverlayDiagnostics(spec: spec, features: Self.kernel(initialUserNamespace: false)).run()
        #expect(found.contains(.trustedXattrsUnavailable(feature: "metacopy=on")))
        #expect(found.contains(.trustedXattrsUnavailable(feature: "data-only layers")))
        #expect(found.contains(.overlappingLayers("/", "/")))
        let asRoot = OverlayDiagnostics(spec: spec, features: Self.kernel()).run()
        #expect(!asRoot.contains(.trustedXattrsUnavailable(feature: "metacopy=on")))
    }
}

/// fuse-overlayfs plans: the exact argument bytes, what cannot be carried, and where the ladder picks it.
@Suite struct FuseOverlayfsPlanTests {
    static let fuseKernel = MountPlannerTests.kernel(
        overlay: false, fuse: true, fuseOverlayfsProgram: "/usr/bin/fuse-overlayfs")

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// The plan's single spawn step.
    static func arguments(_ plan: MountPlan) throws -> [[UInt8]] {
        guard plan.steps.count == 1, case .spawn(let program, let arguments) = plan.steps[0] else {
            Issue.record("not one spawn step: \(plan.steps)")
            return []
        }
        #expect(program == "/usr/bin/fuse-overlayfs")
        return arguments
    }

    /// The options libfuse would see in the argument after each `-o`.
    static func options(_ arguments: [[UInt8]]) -> [[UInt8]] {
        arguments.indices.dropFirst().filter { arguments[$0 - 1] == bytes("-o") }
            .flatMap { FuseOverlayfsGrammar.splitOptionGroup(arguments[$0]) }
    }

    @Test func argumentBytesEscapeCommaAndBackslashOnly() throws {
        let odd: [UInt8] = Array("/l/\u{7F}".utf8) + [0xFF, 0x0A, 0x09, 0x20, 0x3D]
        let spec = OverlaySpec(
            lowerDirectories: ["/l/a,b", "/l/c\\d", "/l/e=f g\\012", FilePath(bytes: odd)],
            upperDirectory: "/u/x,upperdir=/tmp/evil", workDirectory: "/w/wo:rk,")
        let plan = try Mounter(features: Self.fuseKernel).plan(.overlay(spec), at: "/m,x")
        #expect(plan.strategy == .fuseOverlayfs)
        let arguments = try Self.arguments(plan)
        #expect(
            arguments == [
                Self.bytes("-o"), Self.bytes("lowerdir=/l/a\\,b:/l/c\\\\d:/l/e=f g\\\\012:") + Array(odd),
                Self.bytes("-o"), Self.bytes("upperdir=/u/x\\,upperdir=/tmp/evil"),
                Self.bytes("-o"), Self.bytes("workdir=/w/wo:rk\\,"),
                Self.bytes("/m,x"),
            ])
        // What libfuse hands fuse-overlayfs: exactly one option per argument, the paths byte for byte.
        #expect(
            Self.options(arguments) == [
                Self.bytes("lowerdir=/l/a,b:/l/c\\d:/l/e=f g\\012:") + Array(odd),
                Self.bytes("upperdir=/u/x,upperdir=/tmp/evil"), Self.bytes("workdir=/w/wo:rk,"),
            ])
    }

    @Test func escapingRoundTripsEveryByteString() {
        var generator = SplitMix64(seed: 440)
        let alphabet: [UInt8] = [0x5C, 0x2C, 0x3A, 0x30, 0x31, 0x37, 0x61, 0x0A, 0xFF, 0x3D]
        for _ in 0..<2000 {
            let length = Int.random(in: 0...12, using: &generator)
            let value = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            #expect(FuseOverlayfsGrammar.splitOptionGroup(FuseOverlayfsGrammar.escape(value)) == [value])
        }
        // libfuse's octal escape, which an unescaped backslash would trigger.
        #expect(
            FuseOverlayfsGrammar.splitOptionGroup(Self.bytes("a\\012b,c")) == [Self.bytes("a\nb"), Self.bytes("c")])
    }

    @Test func colonInLowerOrUpperIsRefusedNamingTheField() throws {
        let mounter = Mounter(features: Self.fuseKernel)
        let lower = OverlaySpec(lowerDirectories: ["/a", "/b:c"])
        let error = try #require(throws: UnionMountError.self) {
            try mounter.plan(.overlay(lower), at: "/m", strategy: .fuseOverlayfs)
        }
        #expect(error.code == .invalidSpec)
        #expect(error.input == "lowerDirectories[1]")
        let upper = OverlaySpec(lowerDirectories: ["/a"], upperDirectory: "/u:1", workDirectory: "/w")
        let upperError = try #require(throws: UnionMountError.self) {
            try mounter.plan(.overlay(upper), at: "/m")
        }
        #expect(upperError.code == .invalidSpec)
        #expect(upperError.input == "upperDirectory")
        // The work directory only goes through realpath(3): a colon is fine there.
        let work = OverlaySpec(lowerDirectories: ["/a"], upperDirectory: "/u", workDirectory: "/w:1")
        #expect(try mounter.plan(.overlay(work), at: "/m").strategy == .fuseOverlayfs)
    }

    @Test func pluginSyntaxIsRefused() throws {
        let plugin = FilePath(bytes: Self.bytes("//plugin/data/x"))
        let spec = OverlaySpec(lowerDirectories: [plugin, "/b"])
        let mounter = Mounter(features: Self.fuseKernel)
        if plugin.bytes.starts(with: Self.bytes("//")) {
            let error = thrown { try mounter.plan(.overlay(spec), at: "/m") }
            #expect(error?.code == .invalidSpec)
            #expect(error?.input == "lowerDirectories[0]")
        } else {
            // FilePath collapsed the double slash: the layer is an ordinary path.
            let arguments = try Self.arguments(try mounter.plan(.overlay(spec), at: "/m"))
            #expect(!arguments[1].starts(with: Self.bytes("lowerdir=//")))
        }
    }

    @Test func optionsCarriedAcceptedOrRefused() throws {
        let mounter = Mounter(features: Self.fuseKernel)
        var options = OverlayOptions(
            defaultPermissions: true, redirectDirectory: .off, index: false, inodeNumbers: .off, metacopy: false,
            volatile: true, userXattr: true, verity: .off)
        options.additional = [.init("squash_to_root"), .init("uidmapping", "0:1000:1")]
        let spec = OverlaySpec(lowerDirectories: ["/a", "/b"], options: options)
        let plan = try mounter.plan(.overlay(spec), at: "/m", flags: [.readOnly, .noSetUID, .noDevices, .noExecute])
        #expect(
            Self.options(try Self.arguments(plan)).map { String(decoding: $0, as: UTF8.self) } == [
                "lowerdir=/a:/b", "default_permissions", "redirect_dir=off", "volatile", "ro", "nosuid", "nodev",
                "noexec", "squash_to_root", "uidmapping=0:1000:1",
            ])

        let refused: [(OverlayOptions, String)] = [
            (OverlayOptions(index: true), "options.index"), (OverlayOptions(metacopy: true), "options.metacopy"),
            (OverlayOptions(nfsExport: true), "options.nfsExport"),
            (OverlayOptions(inodeNumbers: .auto), "options.inodeNumbers"),
            (OverlayOptions(uuid: .null), "options.uuid"),
            (OverlayOptions(verity: .on), "options.verity"), (OverlayOptions(fsync: .strict), "options.fsync"),
            (OverlayOptions(redirectDirectory: .on), "options.redirectDirectory"),
            (OverlayOptions(overrideCredentials: true), "options.overrideCredentials"),
        ]
        for (options, field) in refused {
            let spec = OverlaySpec(lowerDirectories: ["/a", "/b"], options: options)
            let error = try #require(throws: UnionMountError.self) { try mounter.plan(.overlay(spec), at: "/m") }
            #expect(error.code == .unsupported, "\(field)")
            #expect(error.input == field)
        }
        let foreground = OverlaySpec(
            lowerDirectories: ["/a", "/b"], options: OverlayOptions(additional: [.init("debug")]))
        let debugError = try #require(throws: UnionMountError.self) {
            try mounter.plan(.overlay(foreground), at: "/m")
        }
        #expect(debugError.code == .invalidSpec)
        #expect(debugError.input == "options.additional[0]")
        let data = OverlaySpec(lowerDirectories: ["/a"], dataDirectories: ["/d"])
        let dataError = try #require(throws: UnionMountError.self) {
            try mounter.plan(.overlay(data), at: "/m", strategy: .fuseOverlayfs)
        }
        #expect(dataError.code == .unsupported)
        let flagError = try #require(throws: UnionMountError.self) {
            try mounter.plan(.overlay(spec), at: "/m", flags: [.relativeAccessTime])
        }
        #expect(flagError.input == "flags")
    }

    @Test func ladderAndForcedStrategy() throws {
        let spec = OverlaySpec(lowerDirectories: ["/a", "/b"])
        // Kernel overlay wins whenever it exists.
        let both = MountPlannerTests.kernel(fuse: true, fuseOverlayfsProgram: "/usr/bin/fuse-overlayfs")
        #expect(try Mounter(features: both).plan(.overlay(spec), at: "/m").strategy == .newMountAPI)
        #expect(
            try Mounter(features: both).plan(.overlay(spec), at: "/m", strategy: .fuseOverlayfs).strategy
                == .fuseOverlayfs)
        #expect(try Mounter(features: Self.fuseKernel).plan(.overlay(spec), at: "/m").strategy == .fuseOverlayfs)
        // Forced without the program, or without FUSE: unsupported, naming what is missing.
        let noProgram = MountPlannerTests.kernel(fuse: true)
        let error = try #require(throws: UnionMountError.self) {
            try Mounter(features: noProgram).plan(.overlay(spec), at: "/m", strategy: .fuseOverlayfs)
        }
        #expect(error.code == .unsupported)
        #expect(error.message.contains("program"))
        let noFuse = MountPlannerTests.kernel(fuseOverlayfsProgram: "/usr/bin/fuse-overlayfs")
        let fuseError = try #require(throws: UnionMountError.self) {
            try Mounter(features: noFuse).plan(.overlay(spec), at: "/m", strategy: .fuseOverlayfs)
        }
        #expect(fuseError.code == .unsupported)
        #expect(fuseError.message.contains("/dev/fuse"))
        // Without overlay and without the program the ladder stays with the kernel strategies.
        let neither = MountPlannerTests.kernel(overlay: false, fuse: true)
        #expect(try Mounter(features: neither).plan(.overlay(spec), at: "/m").strategy == .newMountAPI)
    }

    @Test func argumentLimits() throws {
        // 128 layers of ~100 bytes are 13 KB: far below one argument's 131071 bytes.
        let spec = OverlaySpec(lowerDirectories: MountPlannerTests.layers(128))
        let plan = try MountPlan.fuseOverlayfs(spec, target: "/m")
        #expect(try Self.arguments(plan)[1].count > 128 * 95)
        // 500 layers of ~300 bytes are not.
        let huge = OverlaySpec(lowerDirectories: MountPlannerTests.layers(500, length: 300))
        let error = try #require(throws: UnionMountError.self) { try MountPlan.fuseOverlayfs(huge, target: "/m") }
        #expect(error.code == .optionsTooLong)
        #expect(error.input == "lowerDirectories")
        #expect(error.message.contains("131071"))
        let total = try #require(throws: UnionMountError.self) {
            try MountPlan.fuseOverlayfs(spec, target: "/m", argumentLimit: 4096)
        }
        #expect(total.code == .optionsTooLong)
        #expect(total.message.contains("ARG_MAX"))
    }

    @Test func planJSONRoundTripsNonUTF8Arguments() throws {
        let spec = OverlaySpec(lowerDirectories: [FilePath(bytes: [0x2F, 0x61, 0xFF]), "/b"])
        let plan = try MountPlan.fuseOverlayfs(spec, target: "/m")
        let data = try JSONEncoder().encode(plan)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["strategy"] as? String == "fuse-overlayfs")
        let step = try #require((object["steps"] as? [[String: Any]])?.first)
        #expect(step["syscall"] as? String == "posix_spawn")
        #expect(step["program"] as? String == "/usr/bin/fuse-overlayfs")
        #expect((step["arguments"] as? [String])?[1] == "lowerdir=/a\\xFF:/b")
        #expect((step["argumentsBase64"] as? [String])?.count == 3)
        #expect(try JSONDecoder().decode(MountPlan.self, from: data) == plan)
        let plain = try MountPlan.fuseOverlayfs(OverlaySpec(lowerDirectories: ["/a", "/b"]), target: "/m")
        let plainData = try JSONEncoder().encode(plain)
        #expect(!String(decoding: plainData, as: UTF8.self).contains("argumentsBase64"))
        #expect(try JSONDecoder().decode(MountPlan.self, from: plainData) == plain)
    }

    @Test func ignoredOptionsAreTheProgramsReportOfThePlansOwn() {
        let arguments = [Self.bytes("-o"), Self.bytes("lowerdir=/a:/b"), Self.bytes("-o"), Self.bytes("ro,bogus=1")]
        let lines = ["unknown argument ignored: lazytime", "unknown argument ignored: bogus=1", "other"]
        #expect(MountExecutor.ignoredOptions(lines, of: arguments) == [Self.bytes("bogus=1")])
        #expect(MountExecutor.ignoredOptions(["unknown argument ignored: lazytime"], of: arguments).isEmpty)
    }
}
