import CUnionMountBenchBaseline
import SystemPackage
import UnionMount
import UnionMountBenchSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One way of running a complete overlay mount+unmount cycle.
struct Contender {
    /// A short name for progress lines and JSON keys.
    var name: String
    /// Mounts the stack at its target and unmounts it again; throws when either step fails.
    var cycle: () throws(BenchmarkError) -> Void
}

/// A stack's paths as C strings, allocated once so that the C side does no work per cycle beyond its
/// system calls.
final class CStack {
    /// The lower layers, top first.
    let lowers: UnsafeMutablePointer<UnsafePointer<CChar>>
    /// How many lower layers ``lowers`` holds.
    let lowerCount: Int
    /// The upper directory.
    let upper: UnsafeMutablePointer<CChar>
    /// The work directory.
    let work: UnsafeMutablePointer<CChar>
    /// The mount point.
    let target: UnsafeMutablePointer<CChar>

    /// Copies the stack's paths.
    init(_ stack: Fixture.Stack) {
        func copy(_ path: FilePath) -> UnsafeMutablePointer<CChar> { path.withPlatformString { strdup($0)! } }
        lowerCount = stack.lowers.count
        lowers = .allocate(capacity: max(1, lowerCount))
        for (index, path) in stack.lowers.enumerated() { (lowers + index).initialize(to: UnsafePointer(copy(path))) }
        upper = copy(stack.upper)
        work = copy(stack.work)
        target = copy(stack.target)
    }

    deinit {
        for index in 0..<lowerCount { free(UnsafeMutablePointer(mutating: lowers[index])) }
        lowers.deinitialize(count: lowerCount)
        lowers.deallocate()
        free(upper)
        free(work)
        free(target)
    }

    /// Whether every path can be handed to the kernel without escaping (and fits one fsconfig value).
    var isPlain: Bool {
        let others = [UnsafePointer(upper), UnsafePointer(work), UnsafePointer(target)]
        return cumbench_paths_are_plain(lowers, lowerCount) == 1
            && others.withUnsafeBufferPointer { cumbench_paths_are_plain($0.baseAddress!, $0.count) } == 1
    }
}

/// The C cycle for `strategy` (``MountStrategy/newMountAPI`` or ``MountStrategy/legacy``); `name` lets
/// `--breakdown` run it twice as its own noise control.
func cContender(_ stack: CStack, strategy: MountStrategy, name: String = "c") -> Contender {
    Contender(name: name) { () throws(BenchmarkError) in
        var failedCall: UnsafePointer<CChar>? = nil
        let result =
            strategy == .legacy
            ? cumbench_cycle_legacy_mount(
                stack.lowers, stack.lowerCount, stack.upper, stack.work, stack.target,
                &failedCall)
            : cumbench_cycle_new_mount_api(
                stack.lowers, stack.lowerCount, stack.upper, stack.work, stack.target,
                &failedCall)
        guard result == 0 else {
            throw .systemCall("C \(strategy.rawValue) cycle: \(failedCall.map { String(cString: $0) } ?? "?")")
        }
    }
}

/// The library cycle: `Mounter().mount(.overlay(spec), at:strategy:)` then `Mounter().unmount(target)`.
func libraryContender(_ spec: UnionSpec, target: FilePath, strategy: MountStrategy) -> Contender {
    Contender(name: "library") { () throws(BenchmarkError) in
        do {
            try Mounter().mount(spec, at: target, strategy: strategy)
            let outcome = try Mounter().unmount(target)
            guard outcome == .unmounted else {
                throw BenchmarkError(description: "library unmount of \(target) said \(outcome.rawValue)")
            }
        } catch let error as UnionMountError {
            throw BenchmarkError(description: "library \(strategy.rawValue) cycle: \(error)")
        } catch let error as BenchmarkError {
            throw error
        } catch {
            throw BenchmarkError(description: "library \(strategy.rawValue) cycle: \(error)")
        }
    }
}

/// The library cycle without planning: `Mounter().execute(plan)` of a plan made once, then
/// `Mounter().unmount(target)`. Used by `--breakdown` to split the library's overhead into planning and
/// execution.
func executeOnlyContender(_ plan: MountPlan, target: FilePath) -> Contender {
    Contender(name: "library-execute") { () throws(BenchmarkError) in
        do {
            try Mounter().execute(plan)
            try Mounter().unmount(target)
        } catch {
            throw BenchmarkError(description: "library execute of a \(plan.strategy.rawValue) plan: \(error)")
        }
    }
}

/// Planning alone: `Mounter(features:).plan(…)` and dropping the plan, no system calls. Used by `--profile plan`
/// to profile the planner (callgrind, perf) without the kernel's work around it. The features are this kernel's
/// with the new mount API and `lowerdir+` assumed, so that the planner takes the same path under valgrind
/// (which does not know fsopen(2), so the probe finds no new mount API there).
func planOnlyContender(_ spec: UnionSpec, target: FilePath, strategy: MountStrategy) -> Contender {
    var features = KernelFeatures.current
    features.newMountAPI = true
    features.appendLowerDirectory = true
    return Contender(name: "plan") { () throws(BenchmarkError) in
        do {
            let plan = try Mounter(features: features).plan(spec, at: target, strategy: strategy)
            guard plan.strategy == strategy else {
                throw BenchmarkError(description: "planned \(plan.strategy.rawValue), not \(strategy.rawValue)")
            }
        } catch let error as BenchmarkError {
            throw error
        } catch {
            throw BenchmarkError(description: "planning \(strategy.rawValue): \(error)")
        }
    }
}

/// How long and how often to measure.
struct Schedule {
    /// Interleaved rounds per configuration; each round runs every contender once.
    var rounds: Int
    /// What one contender's round should take, which sets the cycles per round.
    var roundBudgetNanoseconds: Double
    /// Fewest and most cycles in one round.
    var cycleRange: ClosedRange<Int>
    /// Unmeasured cycles of each contender before calibration.
    var warmupCycles: Int
}

/// One configuration's measurements: the mean time per cycle of each round, per contender.
struct Measurement {
    /// Cycles each contender ran per round.
    var cyclesPerRound: Int
    /// Contender name → per-round mean nanoseconds per cycle, in round order.
    var roundMeans: [String: [Double]]
}

/// Runs `contenders` in interleaved rounds: round `r` starts with contender `r mod n`, so slow drift (page
/// cache, other load on the machine) falls on every contender alike.
///
/// Each contender first runs ``Schedule/warmupCycles`` unmeasured cycles (the first overlay mount on an upper
/// directory writes its `trusted.overlay.*` xattrs); then the first contender's fastest of five cycles sets how
/// many cycles fit ``Schedule/roundBudgetNanoseconds``.
func measure(_ contenders: [Contender], schedule: Schedule) throws(BenchmarkError) -> Measurement {
    for contender in contenders {
        for _ in 0..<schedule.warmupCycles { try contender.cycle() }
    }
    var perCycle = Double.infinity
    for _ in 0..<5 {
        let start = monotonicNanoseconds()
        try contenders[0].cycle()
        perCycle = min(perCycle, Double(monotonicNanoseconds() - start))
    }
    let cycles = min(
        max(Int(schedule.roundBudgetNanoseconds / max(perCycle, 1)), schedule.cycleRange.lowerBound),
        schedule.cycleRange.upperBound)
    var means = [String: [Double]]()
    for round in 0..<schedule.rounds {
        for offset in 0..<contenders.count {
            let contender = contenders[(round + offset) % contenders.count]
            let started = monotonicNanoseconds()
            for _ in 0..<cycles { try contender.cycle() }
            let elapsed = monotonicNanoseconds() - started
            means[contender.name, default: []].append(Double(elapsed) / Double(cycles))
        }
    }
    return Measurement(cyclesPerRound: cycles, roundMeans: means)
}

/// Mean nanoseconds of one `Mounter().plan(…)` call (no system calls), over at least `minimumCalls` calls
/// and about `budgetNanoseconds`.
func planningCost(
    _ spec: UnionSpec, target: FilePath, strategy: MountStrategy, minimumCalls: Int = 50,
    budgetNanoseconds: UInt64 = 50_000_000
) throws(BenchmarkError) -> Double {
    var calls = 0
    let start = monotonicNanoseconds()
    var elapsed: UInt64 = 0
    do {
        while calls < minimumCalls || elapsed < budgetNanoseconds {
            let plan = try Mounter().plan(spec, at: target, strategy: strategy)
            precondition(plan.strategy == strategy)
            calls += 1
            elapsed = monotonicNanoseconds() - start
        }
    } catch {
        throw BenchmarkError(description: "planning \(strategy.rawValue): \(error)")
    }
    return Double(elapsed) / Double(calls)
}
