#if ENABLE_MOCKING
    import Foundation
    import SystemPackage
    import Testing

    @testable import UnionMount

    /// A plan made by the planner runs its system calls straight from the validated spec; the same plan written
    /// out as steps (by hand, or decoded from JSON) runs step by step. Both must make exactly the same calls.
    @Suite struct PlanRecipeTests {
        static func spec(layers: Int) -> OverlaySpec {
            var options = OverlayOptions()
            options.index = false
            return OverlaySpec(
                lowerDirectories: (0..<layers).map { FilePath("/layers/l\($0),with:odd\\bytes") },
                upperDirectory: "/c/upper", workDirectory: "/c/work", options: options)
        }

        static func calls(_ plan: MountPlan, _ spec: OverlaySpec) throws -> [String] {
            let recorder = SyscallRecorder { _ in (0, 0, []) }
            try recorder.run {
                try Mounter(features: RecordedSyscallTests.modernKernel).execute(plan, for: .overlay(spec))
            }
            return recorder.calls.map(\.description)
        }

        @Test(
            "planner-made and step-built plans make the same calls",
            arguments: [(1, MountStrategy.newMountAPI), (300, .newMountAPI), (1, .legacy), (20, .legacy)])
        func sameCalls(layers: Int, strategy: MountStrategy) throws {
            let spec = Self.spec(layers: layers)
            let mounter = Mounter(features: RecordedSyscallTests.modernKernel)
            let planned = try mounter.plan(.overlay(spec), at: "/c/merged", strategy: strategy)
            let handBuilt = MountPlan(strategy: planned.strategy, steps: planned.steps)
            let decoded = try JSONDecoder().decode(MountPlan.self, from: JSONEncoder().encode(planned))
            #expect(handBuilt == planned)
            #expect(decoded == planned)
            let expected = try Self.calls(planned, spec)
            #expect(expected.count >= (strategy == .legacy ? 1 : layers + 5))
            #expect(try Self.calls(handBuilt, spec) == expected)
            #expect(try Self.calls(decoded, spec) == expected)
        }
    }
#endif
