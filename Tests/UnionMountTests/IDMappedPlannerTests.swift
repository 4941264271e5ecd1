import Foundation
import SystemPackage
import Testing

@testable import UnionMount

/// Plans of idmapped layers (no mounts): the rungs, every step, the JSON, and the refusals.
@Suite struct IDMappedPlannerTests {
    static let mapping = IDMapping.ranges(
        uids: [IDRange(inside: 0, outside: 100000, count: 65536)],
        gids: [IDRange(inside: 0, outside: 100000, count: 65536)])

    static func features(detached: Bool, layers: Bool = true) -> KernelFeatures {
        var features = KernelFeatures.current
        features.overlay = true
        features.newMountAPI = true
        features.overlayParameterParsing = true
        features.appendLowerDirectory = true
        features.dataOnlyLayers = true
        features.layerFileDescriptors = detached
        features.idmappedMounts = true
        features.idmappedLayers = layers
        features.detachedLayerTrees = detached
        return features
    }

    static let spec = OverlaySpec(
        lowerDirectories: ["/l/a", "/l/b"], upperDirectory: "/c/upper", workDirectory: "/c/work", idMapping: mapping)

    @Test("6.15+: each layer a detached tree handed over by fd, after the user namespace step")
    func detachedTrees() throws {
        let plan = try Mounter(features: Self.features(detached: true)).plan(.overlay(Self.spec), at: "/c/merged")
        #expect(plan.idMappedLayers == .detachedTrees)
        #expect(plan.strategy == .newMountAPI)
        let uids = [IDRange(inside: 0, outside: 100000, count: 65536)]
        #expect(
            Array(plan.steps.prefix(9)) == [
                .createUserNamespace(uids: uids, gids: uids), .fsopen(filesystemType: "overlay"),
                .setString(key: "source", value: FsconfigValue("overlay")),
                .openTree(path: "/l/a"), .setIDMap, .setTree(key: "lowerdir+"),
                .openTree(path: "/l/b"), .setIDMap, .setTree(key: "lowerdir+"),
            ])
        #expect(plan.steps.contains(.setString(key: "upperdir", value: FsconfigValue("/c/upper"))))
        #expect(plan.steps.last == .moveMount(target: "/c/merged"))
        #expect(!plan.steps.contains { if case .setString(let key, _) = $0 { key == "lowerdir+" } else { false } })
    }

    @Test("5.19 to 6.14: trees attached in a private directory, mounted by path, detached right after")
    func attachedTrees() throws {
        var mounter = Mounter(features: Self.features(detached: false))
        mounter.attachmentDirectory = "/run/test-attach"
        let plan = try mounter.plan(.overlay(Self.spec), at: "/c/merged")
        #expect(plan.idMappedLayers == .attachedTrees)
        #expect(plan.strategy == .newMountAPI)
        guard case .makeDirectory(let directory) = plan.steps[1], plan.steps[2] == .mountAttachments(target: directory)
        else {
            Issue.record("no attachment directory: \(plan.steps)")
            return
        }
        #expect(directory.removingLastComponent() == "/run/test-attach")
        let (a, b) = (directory.appending("0"), directory.appending("1"))
        #expect(
            Array(plan.steps.prefix(11)) == [
                .createUserNamespace(
                    uids: [IDRange(inside: 0, outside: 100000, count: 65536)],
                    gids: [IDRange(inside: 0, outside: 100000, count: 65536)]),
                .makeDirectory(path: directory), .mountAttachments(target: directory),
                .makeDirectory(path: a), .openTree(path: "/l/a"), .setIDMap, .attachTree(target: a),
                .makeDirectory(path: b), .openTree(path: "/l/b"), .setIDMap, .attachTree(target: b),
            ])
        #expect(plan.steps.contains(.setString(key: "lowerdir+", value: FsconfigValue(path: a))))
        #expect(
            Array(plan.steps.suffix(2)) == [.detach(target: directory), .removeDirectory(path: directory)])
        // The plan's spec is the caller's (real layers, the mapping), for diagnoses and reports.
        #expect(plan.spec == .overlay(Self.spec))
        // Without lowerdir+ (6.1), the attached paths go through the mount(2) ladder.
        var old = Self.features(detached: false)
        old.appendLowerDirectory = false
        let legacy = try Mounter(features: old).plan(.overlay(Self.spec), at: "/c/merged")
        #expect(legacy.strategy == .legacy)
        #expect(legacy.idMappedLayers == .attachedTrees)
    }

    @Test("a plan of idmapped layers round-trips through JSON, every step kind with its arguments")
    func json() throws {
        for detached in [true, false] {
            var spec = Self.spec
            spec.dataDirectories = ["/l/data"]
            spec.idMapping = detached ? Self.mapping : .userNamespace("/proc/1/ns/user")
            let plan = try Mounter(features: Self.features(detached: detached)).plan(.overlay(spec), at: "/c/m")
            let data = try JSONEncoder().encode(plan)
            #expect(try JSONDecoder().decode(MountPlan.self, from: data) == plan)
            let text = String(decoding: data, as: UTF8.self)
            #expect(text.contains(#""idMappedLayers":"\#(detached ? "detached-trees" : "attached-trees")""#))
            #expect(text.contains(#""syscall":"open_tree""#) && text.contains(#""MOUNT_ATTR_IDMAP""#))
            #expect(text.contains(detached ? #""uidMap":["0:100000:65536"]"# : #""namespace":"user""#))
        }
    }

    @Test("refused: kernels without overlay over idmapped mounts, fuse-overlayfs, bad maps")
    func refusals() throws {
        let old = Mounter(features: Self.features(detached: false, layers: false))
        #expect(thrown { try old.plan(.overlay(Self.spec), at: "/m") }?.code == .unsupported)
        let fuse = Mounter(features: Self.features(detached: true))
        #expect(thrown { try fuse.plan(.overlay(Self.spec), at: "/m", strategy: .fuseOverlayfs) }?.code == .unsupported)
        let bad: [[IDRange]] = [
            [],
            [IDRange(inside: 0, outside: 1, count: 0)],
            [IDRange(inside: 0, outside: 100, count: 10), IDRange(inside: 5, outside: 500, count: 10)],
            [IDRange(inside: 0, outside: 100, count: 10), IDRange(inside: 50, outside: 105, count: 10)],
            [IDRange(inside: 0, outside: UInt32.max - 1, count: 2)],
            Array(repeating: IDRange(inside: 0, outside: 0, count: 1), count: 341),
        ]
        for uids in bad {
            var spec = Self.spec
            spec.idMapping = .ranges(uids: uids, gids: [IDRange(inside: 0, outside: 1000, count: 1)])
            let error = thrown { try fuse.plan(.overlay(spec), at: "/m") }
            #expect(error?.code == .invalidSpec, "\(uids.prefix(2))")
            #expect(error?.input == "uid map")
        }
        for text in ["0:100000", "a:1:2", "0:1:2:3", "-1:0:1", "0:0:4294967296"] {
            #expect(thrown { try IDRange(parsing: text) }?.input == text)
        }
        #expect(try IDRange(parsing: "0:100000:65536") == IDRange(inside: 0, outside: 100000, count: 65536))
    }

    @Test("mount records of idmapped layers: version 2 round-trips; damaged mapping fields are no record")
    func records() throws {
        for mapping in [Self.mapping, IDMapping.userNamespace("/proc/7/ns/user")] {
            let record = MountRecord(
                deviceMajor: 0, deviceMinor: 52, target: "/m", shownBranches: [Array("/".utf8), Array("/u".utf8)],
                branches: ["/l/a", "/u"], idMapping: mapping)
            #expect(record.encoded[record.encoded.firstIndex(of: 0)! + 1] == UInt8(ascii: "2"))
            #expect(MountRecord(decoding: record.encoded) == record)
        }
        let plain = MountRecord(
            deviceMajor: 0, deviceMinor: 52, target: "/m", shownBranches: [Array("0".utf8)], branches: ["/l/a"])
        #expect(MountRecord(decoding: plain.encoded) == plain)
        let base = MountRecord(
            deviceMajor: 0, deviceMinor: 52, target: "/m", shownBranches: [Array("/".utf8)], branches: ["/l/a"],
            idMapping: Self.mapping
        ).encoded
        let head = Array(base.prefix(while: { _ in true }))
        // The mapping fields replaced by damaged ones (each set is three NUL-terminated fields).
        let cut = head.count - Array("ranges\u{0}0:100000:65536\u{0}0:100000:65536\u{0}".utf8).count
        for damaged in [
            "ranges\u{0}0:100000\u{0}0:1:1\u{0}", "ranges\u{0}0:1:1 0:1:1\u{0}0:1:1\u{0}", "other\u{0}x\u{0}\u{0}",
            "userns\u{0}relative\u{0}\u{0}", "userns\u{0}/p\u{0}extra\u{0}", "ranges\u{0}0:1:1\u{0}",
        ] {
            #expect(MountRecord(decoding: Array(head[..<cut]) + Array(damaged.utf8)) == nil, "\(damaged)")
        }
        #expect(MountRecord(decoding: Array(head[..<cut]) + Array("ranges\u{0}0:5:1\u{0}0:6:1\u{0}".utf8)) != nil)
    }

    @Test("a hand-written plan with a step its strategy cannot run is a typed error, never a crash")
    func misplacedSteps() throws {
        let spec = UnionSpec.overlay(Self.spec)
        let plans = [
            MountPlan(strategy: .legacy, spec: spec, steps: [.fsopen(filesystemType: "overlay")]),
            MountPlan(strategy: .newMountAPI, spec: spec, steps: [.openDescriptor(path: "/", number: 0)]),
            MountPlan(strategy: .fuseOverlayfs, spec: spec, steps: []),
            MountPlan(strategy: .legacy, spec: spec, steps: [.create, .setIDMap]),
            MountPlan(strategy: .newMountAPI, spec: spec, steps: [.setTree(key: "lowerdir+")]),
        ]
        for plan in plans {
            let error = thrown { try Mounter().execute(plan) }
            #expect(error?.code == .invalidArgument, "\(plan.steps): \(String(describing: error))")
        }
    }
}
