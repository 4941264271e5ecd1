#if ENABLE_MOCKING
    import Foundation
    import SystemPackage
    import Testing

    @testable import UnionMount

    /// A plan is its steps: the planner's plan, the same plan written by hand and the same plan decoded from JSON
    /// make exactly the same system calls, one per step, in the steps' order.
    @Suite struct PlanExecutionTests {
        static func spec(layers: Int) -> OverlaySpec {
            var options = OverlayOptions()
            options.index = false
            return OverlaySpec(
                lowerDirectories: (0..<layers).map { FilePath("/layers/l\($0),with:odd\\bytes") },
                upperDirectory: "/c/upper", workDirectory: "/c/work", options: options)
        }

        static func calls(_ plan: MountPlan) throws -> [SyscallRecorder.Call] {
            let recorder = SyscallRecorder { _ in (0, 0, []) }
            try recorder.run { try Mounter(features: RecordedSyscallTests.modernKernel).execute(plan) }
            return recorder.calls
        }

        @Test(
            "planner-made and step-built plans make the same calls",
            arguments: [(1, MountStrategy.newMountAPI), (300, .newMountAPI), (1, .legacy), (20, .legacy)])
        func sameCalls(layers: Int, strategy: MountStrategy) throws {
            let spec = Self.spec(layers: layers)
            let mounter = Mounter(features: RecordedSyscallTests.modernKernel)
            let planned = try mounter.plan(.overlay(spec), at: "/c/merged", strategy: strategy)
            let handBuilt = MountPlan(strategy: planned.strategy, spec: .overlay(spec), steps: planned.steps)
            let decoded = try JSONDecoder().decode(MountPlan.self, from: JSONEncoder().encode(planned))
            #expect(decoded == planned)
            let expected = try Self.calls(planned)
            #expect(expected.map(\.name) == planned.steps.map(\.systemCall))
            #expect(expected.count == (strategy == .legacy ? 1 : layers + 8))
            #expect(try Self.calls(handBuilt).map(\.description) == expected.map(\.description))
            #expect(try Self.calls(decoded).map(\.description) == expected.map(\.description))
        }
    }
#endif
