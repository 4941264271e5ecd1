import SystemPackage
import Testing

@testable import UnionMount

/// One planned mount(2) call, taken apart.
private struct PlannedCall {
    var flags: MountFlags
    var data: [UInt8]

    /// The comma-separated elements of the data.
    var elements: [[UInt8]] {
        data.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map(Array.init)
    }
}

private func plannedCalls(_ plan: MountPlan, target: FilePath) -> [PlannedCall] {
    plan.steps.map { step in
        guard case .mount(let source, let stepTarget, let type, let flags, let data, let directory) = step else {
            Issue.record("not a mount(2) step: \(step)")
            return PlannedCall(flags: [], data: [])
        }
        #expect(source == "none")
        #expect(stepTarget == target)
        #expect(type == "aufs")
        #expect(directory == nil)
        return PlannedCall(flags: flags, data: data)
    }
}

/// A path of exactly `length` bytes: `/` then `x`s, cut into 100-byte components, ending in `tag`.
private func path(length: Int, tag: String = "") -> FilePath {
    precondition(length > tag.utf8.count)
    var bytes: [UInt8] = []
    while bytes.count < length - tag.utf8.count {
        bytes.append(bytes.count % 100 == 0 ? UInt8(ascii: "/") : UInt8(ascii: "x"))
    }
    return FilePath(bytes: bytes + Array(tag.utf8))
}

/// Splits the data of a plan back into branch elements: the `br:` list of the first call, then every `append:`.
private func plannedBranches(_ calls: [PlannedCall]) -> [[UInt8]] {
    var result: [[UInt8]] = []
    for (index, call) in calls.enumerated() {
        if index == 0 {
            let list = call.elements[0].dropFirst(3)
            result += list.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false).map(Array.init)
        } else {
            result += call.elements.map { Array($0.dropFirst(7)) }
        }
    }
    return result
}

private func slots(_ call: PlannedCall, first: Bool) -> Int {
    guard first else { return call.elements.count }
    let branches = call.elements[0].dropFirst(3).split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        .count
    return branches + call.elements.count - 1
}

@Suite("aufs planner")
struct AufsPlannerTests {
    static let target: FilePath = "/var/lib/docker/aufs/mnt/c0ffee"
    static let dockerOptions = AufsOptions(
        externalInodeNumbers: .path("/dev/shm/aufs.xino"), directIO: true, directoryPermissionFromTopOnly: true)

    /// `count` branches of about `length` bytes each; branch 0 rw, the others ro+wh.
    static func layeredSpec(count: Int, length: Int, options: AufsOptions = dockerOptions) -> AufsSpec {
        let branches = (0..<count).map { index in
            let tag = "-" + String(repeating: "0", count: 4 - String(index).count) + String(index)
            return index == 0
                ? AufsBranch(path(length: length, tag: tag), .readWrite)
                : AufsBranch(path(length: length, tag: tag), .readOnly, attributes: [.whiteout])
        }
        return AufsSpec(branches: branches, options: options)
    }

    /// Every property the plan must have, whatever the spec.
    func checkPlan(
        _ plan: MountPlan, spec: AufsSpec, flags: MountFlags = [], pageSize: Int = 4096, slotLimit: Int = 84
    ) throws {
        #expect(plan.strategy == .aufs)
        let calls = plannedCalls(plan, target: Self.target)
        try #require(!calls.isEmpty)
        for (index, call) in calls.enumerated() {
            #expect(call.data.count <= pageSize - 1, "call \(index) has \(call.data.count) bytes")
            #expect(slots(call, first: index == 0) <= slotLimit, "call \(index) uses too many option slots")
            #expect(!call.data.contains(0))
        }
        // The first call: br: with branch 0 first, then every option, with the caller's flags.
        let first = calls[0]
        #expect(first.flags == flags)
        #expect(first.data.starts(with: Array("br:".utf8) + spec.branches[0].optionBytes))
        #expect(Array(first.elements.dropFirst()) == spec.options.optionBytes)
        // Remounts: only append: verbs, MS_REMOUNT added.
        for call in calls.dropFirst() {
            #expect(call.flags == flags.union(.remount))
            #expect(call.elements.allSatisfy { $0.starts(with: "append:".utf8) })
        }
        // Nothing lost, nothing duplicated, order kept.
        #expect(plannedBranches(calls) == spec.branches.map(\.optionBytes))
        // The calls, read in sequence, give back the spec.
        let joined = calls.map(\.data).joined(separator: [UInt8(ascii: ",")])
        #expect(try AufsSpec(optionString: Array(joined)) == spec)
    }

    @Test func threeHundredLongBranches() throws {
        let spec = Self.layeredSpec(count: 300, length: 100)
        let plan = try MountPlan.aufs(spec, target: Self.target)
        try checkPlan(plan, spec: spec)
        let calls = plannedCalls(plan, target: Self.target)
        #expect(calls.count > 2)
        #expect(calls.count == 9)
        // Greedy: the first call could not take the next branch without passing 4095 bytes.
        let firstBranchCount = plannedBranches([calls[0]]).count
        // 3 + 103 + 37 option bytes = 143, then 107 bytes per ":<path>=ro+wh": 36 more fit.
        #expect(firstBranchCount == 37)
        #expect(calls[0].data.count + 1 + spec.branches[firstBranchCount].optionBytes.count > 4095)
        // Each full remount could not take one more append.
        for (index, call) in calls.enumerated().dropFirst().dropLast() {
            let nextBranch = plannedBranches(Array(calls[...index])).count
            #expect(call.data.count + 1 + 7 + spec.branches[nextBranch].optionBytes.count > 4095)
        }
    }

    @Test func threeHundredShortBranchesHitTheSlotLimit() throws {
        let spec = Self.layeredSpec(count: 300, length: 12)
        let plan = try MountPlan.aufs(spec, target: Self.target, flags: [.noSetUID, .noDevices])
        try checkPlan(plan, spec: spec, flags: [.noSetUID, .noDevices])
        let calls = plannedCalls(plan, target: Self.target)
        // 84 slots: 3 options + 81 branches, then 84 + 84 + 51 appends.
        #expect(calls.enumerated().map { slots($1, first: $0 == 0) } == [84, 84, 84, 51])
        #expect(plannedBranches([calls[0]]).count == 81)
    }

    @Test func slotBoundary() throws {
        let exactly = Self.layeredSpec(count: 84, length: 10, options: AufsOptions())
        #expect(try MountPlan.aufs(exactly, target: Self.target).steps.count == 1)
        let oneMore = Self.layeredSpec(count: 85, length: 10, options: AufsOptions())
        let plan = try MountPlan.aufs(oneMore, target: Self.target)
        try checkPlan(plan, spec: oneMore)
        #expect(plannedCalls(plan, target: Self.target).map { $0.elements.count } == [1, 1])
        // 85 branches in one br: list crash a real aufs kernel: no limit above 84 is taken.
        #expect(
            thrown { try MountPlan.aufs(oneMore, target: Self.target, optionSlotsPerCall: 85) }?.code
                == .invalidArgument)
        #expect(
            thrown { try MountPlan.aufs(oneMore, target: Self.target, optionSlotsPerCall: 0) }?.code == .invalidArgument
        )
    }

    @Test func singleBranchAtExactly4095Bytes() throws {
        // "br:" + path + "=rw" = 3 + 4089 + 3.
        let spec = AufsSpec(branches: [AufsBranch(path(length: 4089), .readWrite)])
        let plan = try MountPlan.aufs(spec, target: Self.target)
        try checkPlan(plan, spec: spec)
        #expect(plannedCalls(plan, target: Self.target).map(\.data.count) == [4095])
    }

    @Test func singleBranchAt4096BytesIsRefused() {
        let spec = AufsSpec(branches: [AufsBranch(path(length: 4090), .readWrite)])
        let error = thrown { _ = try MountPlan.aufs(spec, target: Self.target) }
        #expect(error?.code == .optionsTooLong)
        #expect(error?.input == "branches[0]")
        #expect(error?.message.contains("4096") == true)
        #expect(error?.message.contains("4095") == true)
    }

    @Test func branchZeroWithOptionsTooLong() {
        // 3 + 4000 + 3 + ",dio,xino=/dev/shm/aufs.xino,dirperm1" (37) = 4043 fits; a 100-byte xino does not.
        let fits = AufsSpec(branches: [AufsBranch(path(length: 4000), .readWrite)], options: Self.dockerOptions)
        #expect(thrown { _ = try MountPlan.aufs(fits, target: Self.target) } == nil)
        var options = Self.dockerOptions
        options.externalInodeNumbers = .path(path(length: 100))
        let tooLong = AufsSpec(branches: fits.branches, options: options)
        let error = thrown { _ = try MountPlan.aufs(tooLong, target: Self.target) }
        #expect(error?.code == .optionsTooLong)
        #expect(error?.message.contains("4125") == true)
        #expect(error?.message.contains("4095") == true)
    }

    @Test func twoBranchesAtTheByteBoundary() throws {
        // "br:" + p0 + "=rw" + ":" + p1 + "=ro" = 3 + 2000 + 3 + 1 + p1 + 3.
        let exactly = AufsSpec(branches: [
            AufsBranch(path(length: 2000), .readWrite), AufsBranch(path(length: 2085, tag: "b"), .readOnly),
        ])
        let one = try MountPlan.aufs(exactly, target: Self.target)
        try checkPlan(one, spec: exactly)
        #expect(plannedCalls(one, target: Self.target).map(\.data.count) == [4095])

        let over = AufsSpec(branches: [
            AufsBranch(path(length: 2000), .readWrite), AufsBranch(path(length: 2086, tag: "b"), .readOnly),
        ])
        let two = try MountPlan.aufs(over, target: Self.target)
        try checkPlan(two, spec: over)
        let twoCalls = plannedCalls(two, target: Self.target)
        #expect(twoCalls.map(\.data.count) == [2006, 7 + 2086 + 3])
        #expect(twoCalls[1].data == Array("append:".utf8) + over.branches[1].optionBytes)
    }

    @Test func appendAtTheByteBoundary() throws {
        // "append:" + path + "=ro" = 7 + 4085 + 3 = 4095.
        let exactly = AufsSpec(branches: [AufsBranch("/top", .readWrite), AufsBranch(path(length: 4085))])
        let plan = try MountPlan.aufs(exactly, target: Self.target)
        try checkPlan(plan, spec: exactly)
        #expect(plannedCalls(plan, target: Self.target).map(\.data.count) == [10, 4095])

        let over = AufsSpec(branches: [AufsBranch("/top", .readWrite), AufsBranch(path(length: 4086))])
        let error = thrown { _ = try MountPlan.aufs(over, target: Self.target) }
        #expect(error?.code == .optionsTooLong)
        #expect(error?.input == "branches[1]")
        #expect(error?.message.contains("4096") == true)
        #expect(error?.message.contains("4095") == true)
    }

    @Test func tooManyOptionsForOneCall() {
        let additional = (1...84).map { OverlayOptions.RawOption("x\($0)") }
        let spec = AufsSpec(branches: [AufsBranch("/top", .readWrite)], options: AufsOptions(additional: additional))
        let error = thrown { _ = try MountPlan.aufs(spec, target: Self.target) }
        #expect(error?.code == .optionsTooLong)
        #expect(error?.input == "options")
        #expect(error?.message.contains("85") == true)
        let fits = AufsSpec(branches: spec.branches, options: AufsOptions(additional: Array(additional.dropLast())))
        #expect(thrown { _ = try MountPlan.aufs(fits, target: Self.target) } == nil)
    }

    @Test func smallerPagesAndSlotLimits() throws {
        let spec = Self.layeredSpec(count: 40, length: 60)
        let plan = try MountPlan.aufs(
            spec, target: Self.target, flags: [.readOnly], pageSize: 512, optionSlotsPerCall: 5)
        try checkPlan(plan, spec: spec, flags: [.readOnly], pageSize: 512, slotLimit: 5)
        #expect(plannedCalls(plan, target: Self.target).count > 8)
    }

    @Test func invalidSpecIsRefusedBeforePlanning() {
        let spec = AufsSpec(branches: [AufsBranch("/a", .readWrite), AufsBranch("/a")])
        let error = thrown { _ = try MountPlan.aufs(spec, target: Self.target) }
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "branches[1].path")
    }

    @Test func dockerLayoutIsOneCall() throws {
        let spec = Self.layeredSpec(count: 7, length: 90)
        let plan = try MountPlan.aufs(spec, target: Self.target)
        try checkPlan(plan, spec: spec)
        #expect(plan.steps.count == 1)
        guard case .mount(_, _, _, _, let data, _) = plan.steps[0] else { return }
        #expect(data == (try spec.optionString()))
    }
}
