import Foundation
import SystemPackage
import Testing

@testable import UnionMount

/// The mount-fd rung (``MountStrategy/legacyDescriptors``) on kernels described by hand: overlay without
/// `lowerdir+` (Linux before 6.8, such as Debian 12's 6.1), where mount(2) is the only way in.
@Suite struct DescriptorPlannerTests {
    /// A 6.1-like kernel: the new mount API exists, overlay's `lowerdir+` does not.
    static let oldKernel = MountPlannerTests.kernel(newAPI: true, lowerdirPlus: false, fds: false)

    /// `count` layers shaped like a layer store's: `/var/lib/unionmount/layers/<64 hex digits>/diff`.
    static func storeLayers(_ count: Int) -> [FilePath] {
        (0..<count).map { index in
            let hex = String(index, radix: 16)
            let id = String(repeating: "0", count: 64 - hex.count) + hex
            return FilePath("/var/lib/unionmount/layers/\(id)/diff")
        }
    }

    static let upper: FilePath = "/var/lib/unionmount/containers/c/diff"
    static let work: FilePath = "/var/lib/unionmount/containers/c/work"

    @Test func fiveHundredStoreLayersPlanMountFDWithTheExactData() throws {
        let layers = Self.storeLayers(500)
        var options = OverlayOptions()
        options.index = false
        options.metacopy = false
        options.redirectDirectory = .nofollow
        let spec = OverlaySpec(
            lowerDirectories: layers, upperDirectory: Self.upper, workDirectory: Self.work, options: options)
        let plan = try Mounter(features: Self.oldKernel).plan(.overlay(spec), at: "/m")
        #expect(plan.strategy == .legacyDescriptors)
        #expect(plan.steps.count == 503)
        let expectedOpens =
            layers.enumerated().map { MountStep.openDescriptor(path: $1, number: Int32($0)) }
            + [.openDescriptor(path: Self.upper, number: 500), .openDescriptor(path: Self.work, number: 501)]
        #expect(Array(plan.steps.prefix(502)) == expectedOpens)
        let data =
            "lowerdir=" + (0..<500).map(String.init).joined(separator: ":")
            + ",upperdir=500,workdir=501,redirect_dir=nofollow,index=off,metacopy=off"
        #expect(
            plan.steps.last
                == .mount(
                    source: "overlay", target: "/m", filesystemType: "overlay", flags: [], data: Array(data.utf8),
                    workingDirectory: "/proc/thread-self/fd"))
        // About 1.9 KB for 500 layers (whatever the paths), less than half a page.
        #expect(data.utf8.count < 2000)
    }

    @Test func theLadderTriesMountFDOnlyWhenRelativeDoesNotFit() throws {
        // 40 short layers fit a page as they are.
        let short = (0..<40).map { FilePath("/l/\($0)") }
        #expect(
            try Mounter(features: Self.oldKernel).plan(.overlay(OverlaySpec(lowerDirectories: short)), at: "/m")
                .strategy == .legacy)
        // 100 layers under one directory fit relative to it.
        let shared = MountPlannerTests.layers(100)
        #expect(
            try Mounter(features: Self.oldKernel).plan(.overlay(OverlaySpec(lowerDirectories: shared)), at: "/m")
                .strategy == .legacyRelative)
        // 60 layers of 95 bytes under different top directories: only numbers fit.
        let spread = (0..<60).map { FilePath("/top\($0)/" + String(repeating: "q", count: 90)) }
        let plan = try Mounter(features: Self.oldKernel).plan(.overlay(OverlaySpec(lowerDirectories: spread)), at: "/m")
        #expect(plan.strategy == .legacyDescriptors)
    }

    @Test func dataOnlyLayersFollowTheDoubleColon() throws {
        let spec = OverlaySpec(
            lowerDirectories: ["/l0", "/l1"], dataDirectories: ["/d0", "/d1"], upperDirectory: "/u",
            workDirectory: "/w")
        let plan = try Mounter(features: Self.oldKernel).plan(.overlay(spec), at: "/m", strategy: .legacyDescriptors)
        #expect(
            plan.steps.prefix(6).map { step -> String in
                guard case .openDescriptor(let path, let number) = step else { return "?" }
                return "\(number)=\(path)"
            } == ["0=/l0", "1=/l1", "2=/d0", "3=/d1", "4=/u", "5=/w"])
        guard case .mount(_, _, _, _, let data, "/proc/thread-self/fd") = plan.steps.last else {
            Issue.record("no mount step from /proc/thread-self/fd")
            return
        }
        // metacopy=on: the planner adds it to data-only layers (6.5–6.15 refuse them without it).
        #expect(data == Array("lowerdir=0:1::2::3,upperdir=4,workdir=5,metacopy=on".utf8))
    }

    @Test func forcedOnAKernelWithLowerdirPlusAndPathsMadeAbsolute() throws {
        let spec = OverlaySpec(lowerDirectories: ["relative/layer", "/b"])
        let plan = try Mounter(features: MountPlannerTests.kernel()).plan(
            .overlay(spec), at: "/m", strategy: .legacyDescriptors)
        #expect(plan.strategy == .legacyDescriptors)
        let cwd = try #require(FileManager.default.currentDirectoryPath as String?)
        #expect(plan.steps.first == .openDescriptor(path: FilePath(cwd).appending("relative/layer"), number: 0))
        #expect(plan.steps.count == 3)
        guard case .overlay(let planned) = plan.spec else { return }
        #expect(planned.lowerDirectories.allSatisfy { $0.isAbsolute })
    }

    @Test func openStepJSONRoundTrips() throws {
        let odd = FilePath(bytes: Array("/layers/".utf8) + [0xFF, 0x2C] + Array("x".utf8))
        let plan = MountPlan(
            strategy: .legacyDescriptors, spec: .overlay(OverlaySpec(lowerDirectories: ["/a", odd])),
            steps: [
                .openDescriptor(path: "/a", number: 0), .openDescriptor(path: odd, number: 1),
                .mount(
                    source: "overlay", target: "/m", filesystemType: "overlay", flags: [],
                    data: Array("lowerdir=0:1".utf8), workingDirectory: "/proc/thread-self/fd"),
            ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(plan)
        #expect(String(decoding: data, as: UTF8.self).contains(#"{"fd":0,"path":"/a","syscall":"open"}"#))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["strategy"] as? String == "mount-fd")
        #expect(try JSONDecoder().decode(MountPlan.self, from: data) == plan)
    }

    @Test func aLowDescriptorLimitIsATypedErrorNamingIt() throws {
        let spec = OverlaySpec(
            lowerDirectories: Self.storeLayers(500), upperDirectory: Self.upper, workDirectory: Self.work)
        let planner = OverlayPlanner(features: Self.oldKernel, descriptorLimit: 256)
        let forced = try #require(throws: UnionMountError.self) {
            try planner.plan(spec, target: "/m", flags: [], strategy: .legacyDescriptors)
        }
        #expect(forced.code == .unsupported)
        #expect(forced.input == "RLIMIT_NOFILE")
        #expect(forced.message.contains("0 to 501"))
        #expect(forced.message.contains("256"))
        let ladder = try #require(throws: UnionMountError.self) {
            try planner.plan(spec, target: "/m", flags: [], strategy: nil)
        }
        #expect(ladder.code == .optionsTooLong)
        #expect(ladder.message.contains("mount-fd: needs descriptor numbers 0 to 501"))
        // 502 numbers need a limit of at least 502.
        let enough = OverlayPlanner(features: Self.oldKernel, descriptorLimit: 502)
        #expect(try enough.plan(spec, target: "/m", flags: [], strategy: nil).strategy == .legacyDescriptors)
    }

    @Test func newMountAPIOnlyOptionsAreRefusedByName() throws {
        var options = OverlayOptions()
        options.overrideCredentials = false
        let spec = OverlaySpec(lowerDirectories: ["/a", "/b"], options: options)
        let error = try #require(throws: UnionMountError.self) {
            try Mounter(features: Self.oldKernel).plan(.overlay(spec), at: "/m", strategy: .legacyDescriptors)
        }
        #expect(error.code == .unsupported)
        #expect(error.message == "mount-fd: nooverride_creds needs the new mount API")
        #expect(error.input == "options.overrideCredentials")
    }

    @Test func anOpenStepThatNoMountFollowsIsRefusedBeforeAnyCall() throws {
        let plan = MountPlan(
            strategy: .legacyDescriptors, spec: .overlay(OverlaySpec(lowerDirectories: ["/a", "/b"])),
            steps: [.openDescriptor(path: "/a", number: 0)])
        let error = try #require(throws: UnionMountError.self) { try Mounter().execute(plan) }
        #expect(error.code == .invalidArgument)
        #expect(error.input == "/a")
        #expect(error.systemCall == nil)
    }
}
