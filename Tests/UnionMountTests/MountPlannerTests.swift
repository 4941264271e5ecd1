import Foundation
import SystemPackage
import Testing

@testable import UnionMount

/// The planner's ladder on kernels described by hand, so every rung is reached whatever this machine is.
@Suite struct MountPlannerTests {
    static func kernel(
        newAPI: Bool = true, lowerdirPlus: Bool = true, fds: Bool = true, initialUserNamespace: Bool = true
    ) -> KernelFeatures {
        KernelFeatures(
            pageSize: 4096, overlay: true, aufs: false, fuse: false, fuseOverlayfsProgram: nil, newMountAPI: newAPI,
            overlayParameterParsing: newAPI, appendLowerDirectory: lowerdirPlus, layerFileDescriptors: fds,
            dataOnlyLayers: true, userXattr: true, statmount: false, listmount: false,
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
        // Layers spread over different top directories share no directory but `/`.
        let spread = (0..<60).map { FilePath("/top\($0)/" + String(repeating: "q", count: 90)) }
        let error = try #require(throws: UnionMountError.self) {
            try Mounter(features: old).plan(.overlay(OverlaySpec(lowerDirectories: spread)), at: "/m")
        }
        #expect(error.code == .optionsTooLong)
        #expect(error.message.contains("4095"))
        #expect(error.message.contains("options need"))
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
