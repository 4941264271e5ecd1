import ArgumentParser
import SystemPackage
import UnionMount
import UnionMountBenchSupport

// unionmount-bench: overlay mount+unmount cycles through UnionMount against the same system calls issued
// directly from C, interleaved in one run, reported per layer count as a library/C ratio.
//
//     swift build -c release --product unionmount-bench
//     sudo unshare -m --propagation private .build/release/unionmount-bench [--json] [--breakdown] [--tmpfs]
//
// Both sides make the same system calls (fsopen/fsconfig/fsmount/move_mount or mount(2), then umount2), so
// the ratio is the library's own cost: planning, validation and the executor's bookkeeping.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The command line (swift-argument-parser).
struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unionmount-bench",
        abstract: "Overlay mount+unmount cycles through UnionMount against the same system calls from C.",
        discussion: """
            Mounts and unmounts overlays of 1, 16, 128 and 500 lower layers (plus upper and work) through \
            UnionMount's Mounter and through the same system calls issued from C, in interleaved rounds, and \
            prints the median time per cycle of each and their ratio. new-mount-api is measured for every size; \
            mount(2) ("mount" strategy) where the option string fits one page. Must run as root in a private \
            mount namespace: \(benchmarkCommand("unionmount-bench"))
            """)

    @Flag(help: "Print JSON instead of Markdown tables.")
    var json = false
    @Flag(help: "Also time the library executing a pre-made plan, and C against itself (the noise floor).")
    var breakdown = false
    @Flag(
        help: """
            Build the layers on a tmpfs mounted on the temporary directory: unmounting an overlay then no longer \
            syncs the disk its upper layer is on, which removes most of the noise.
            """)
    var tmpfs = false
    @Flag(
        help: """
            Instead: the two mount(2) rungs for kernels without lowerdir+, mount-fd against mount-relative with the \
            shortest relative names, paired per --sizes count, and the mount(2) data each needs at 500 store-shaped \
            layers.
            """)
    var rungs = false
    @Option(
        help: ArgumentHelp("Lower-layer counts, comma-separated.", valueName: "counts"),
        transform: layerCounts)
    var sizes = [1, 16, 128, 500]
    @Option(help: "Interleaved rounds per configuration.")
    var rounds = 41
    @Option(name: .customLong("round-ms"), help: "Milliseconds per contender per round (sets the cycles per round).")
    var roundMilliseconds = 50.0
    @Option(
        name: .customLong("profile"),
        help: ArgumentHelp(
            "Run only this side (c, library, library-execute, or plan: planning alone, no system calls) on each "
                + "configuration for --profile-seconds and print its µs per cycle, for perf record/stat and "
                + "callgrind.", valueName: "side"))
    var profileSide: String?
    @Option(help: "How long --profile runs each configuration, in seconds.")
    var profileSeconds = 5.0

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds takes a positive count") }
        guard roundMilliseconds > 0 else { throw ValidationError("--round-ms takes a positive number") }
        guard profileSeconds > 0 else { throw ValidationError("--profile-seconds takes a positive number") }
        if let profileSide, !["c", "library", "library-execute", "plan"].contains(profileSide) {
            throw ValidationError("--profile takes c, library, library-execute or plan")
        }
    }

    func run() throws {
        let status = benchmarkMain(self)
        if status != 0 { throw ExitCode(status) }
    }
}

/// The bytes `lowerdir=…,upperdir=…,workdir=…` takes for `stack` when no path needs escaping.
func legacyOptionLength(_ stack: Fixture.Stack) -> Int {
    let lowers = stack.lowers.reduce(0) { $0 + $1.string.utf8.count } + stack.lowers.count - 1
    return "lowerdir=".utf8.count + lowers + ",upperdir=".utf8.count + stack.upper.string.utf8.count
        + ",workdir=".utf8.count + stack.work.string.utf8.count
}

/// Mounts `stack` once through the library and checks the merged view shows the top and bottom layers'
/// files, so the timed cycles are known to produce a working overlay.
func verify(_ stack: Fixture.Stack, spec: UnionSpec, strategy: MountStrategy) throws(BenchmarkError) {
    let plan: MountPlan
    do {
        plan = try Mounter().mount(spec, at: stack.target, strategy: strategy)
    } catch {
        throw BenchmarkError(
            description: "verification mount (\(strategy.rawValue), \(stack.layers) layers): \(error)")
    }
    defer { _ = try? Mounter().unmount(stack.target) }
    guard plan.strategy == strategy else {
        throw BenchmarkError(
            description: "asked for \(strategy.rawValue), the library planned \(plan.strategy.rawValue)")
    }
    for index in Set([0, stack.layers - 1]) {
        let name = "file-" + String(repeating: "0", count: max(0, 4 - String(index).count)) + String(index)
        let path = stack.target.appending(name)
        guard path.withPlatformString({ access($0, F_OK) }) == 0 else {
            throw .systemCall("the merged view lacks \(path)")
        }
    }
}

/// Runs one contender alone for `--profile-seconds` and prints how many cycles it managed.
func profile(
    _ contenders: [Contender], side: String, spec: UnionSpec, stack: Fixture.Stack, strategy: MountStrategy,
    options: Options
) throws(BenchmarkError) {
    var contender = contenders.first { $0.name == side }
    if side == "plan" {
        contender = planOnlyContender(spec, target: stack.target, strategy: strategy)
    } else if side == "library-execute" {
        do {
            let plan = try Mounter().plan(spec, at: stack.target, strategy: strategy)
            contender = executeOnlyContender(plan, target: stack.target)
        } catch {
            throw BenchmarkError(description: "planning \(strategy.rawValue): \(error)")
        }
    }
    guard let contender else { return }
    let budget = UInt64(options.profileSeconds * 1e9)
    let started = monotonicNanoseconds()
    var cycles = 0
    while monotonicNanoseconds() - started < budget {
        try contender.cycle()
        cycles += 1
    }
    let microseconds = Double(monotonicNanoseconds() - started) / 1000 / Double(cycles)
    print(
        "\(stack.layers) layers, \(strategy.rawValue), \(side) alone: \(cycles) cycles, "
            + "\(fixed(microseconds, side == "plan" ? 2 : 1)) µs/cycle")
}

/// Runs every configuration and returns their rows.
func runBenchmark(_ options: Options, fixture: Fixture) throws(BenchmarkError) -> [ResultRow] {
    var rows: [ResultRow] = []
    for stack in fixture.stacks {
        let cStack = CStack(stack)
        guard cStack.isPlain else {
            throw BenchmarkError(description: "benchmark paths need escaping or exceed 255 bytes: \(fixture.root)")
        }
        let spec = UnionSpec.overlay(
            OverlaySpec(lowerDirectories: stack.lowers, upperDirectory: stack.upper, workDirectory: stack.work))
        var strategies: [MountStrategy] = [.newMountAPI]
        if legacyOptionLength(stack) <= OverlaySpec.legacyOptionLimit { strategies.append(.legacy) }
        for strategy in strategies {
            // Planning alone makes no system call, so it needs no working mount (and runs under valgrind,
            // which does not know fsopen(2)).
            if options.profileSide != "plan" { try verify(stack, spec: spec, strategy: strategy) }
            var contenders = [
                cContender(cStack, strategy: strategy),
                libraryContender(spec, target: stack.target, strategy: strategy),
            ]
            if let side = options.profileSide {
                try profile(contenders, side: side, spec: spec, stack: stack, strategy: strategy, options: options)
                continue
            }
            if options.breakdown {
                let plan: MountPlan
                do {
                    plan = try Mounter().plan(spec, at: stack.target, strategy: strategy)
                } catch {
                    throw BenchmarkError(description: "planning \(strategy.rawValue): \(error)")
                }
                contenders.append(executeOnlyContender(plan, target: stack.target))
                contenders.append(cContender(cStack, strategy: strategy, name: "c-control"))
            }
            let schedule = Schedule(
                rounds: options.rounds, roundBudgetNanoseconds: options.roundMilliseconds * 1_000_000,
                cycleRange: 2...200, warmupCycles: 3)
            let started = monotonicNanoseconds()
            let measurement = try measure(contenders, schedule: schedule)
            let planCost = try planningCost(spec, target: stack.target, strategy: strategy)
            let row = ResultRow(
                layers: stack.layers, strategy: strategy, rounds: options.rounds,
                cyclesPerRound: measurement.cyclesPerRound, cRounds: measurement.roundMeans["c"] ?? [],
                libraryRounds: measurement.roundMeans["library"] ?? [],
                executeRounds: measurement.roundMeans["library-execute"],
                controlRounds: measurement.roundMeans["c-control"], planNanoseconds: planCost)
            rows.append(row)
            let seconds = Double(monotonicNanoseconds() - started) / 1e9
            progress(
                "\(stack.layers) layers, \(strategy.rawValue): C \(fixed(row.cMicroseconds, 1)) µs, library "
                    + "\(fixed(row.libraryMicroseconds, 1)) µs, ratio \(fixed(row.ratio, 3)) "
                    + "(\(row.rounds) × \(row.cyclesPerRound) cycles, \(fixed(seconds, 1)) s)")
        }
    }
    return rows
}

/// The program: checks, builds the fixture, measures, reports, cleans up. Returns the exit status.
func benchmarkMain(_ options: Options) -> Int32 {
    if let failure = preflightFailure(program: "unionmount-bench") {
        progress(failure)
        return 2
    }
    if let warning = overlayIndexWarning() { progress(warning) }
    let fixture: Fixture
    do {
        fixture = try Fixture(sizes: options.rungs ? [] : options.sizes, tmpfs: options.tmpfs)
    } catch {
        progress("cannot build the layers: \(error)")
        return 1
    }
    progress("layers in \(fixture.root)\(options.tmpfs ? " (tmpfs)" : "")")
    var status: Int32 = 0
    do {
        if options.rungs {
            let rows = try runRungComparison(options, root: fixture.root)
            print(rungReport(rows, kernel: kernelRelease(), tmpfs: options.tmpfs))
            try fixture.remove()
            return 0
        }
        let rows = try runBenchmark(options, fixture: fixture)
        let kernel = kernelRelease()
        if options.profileSide == nil {
            print(
                options.json
                    ? jsonReport(rows, kernel: kernel, tmpfs: options.tmpfs)
                    : markdownReport(rows, kernel: kernel, tmpfs: options.tmpfs))
        }
    } catch {
        progress("benchmark failed: \(error)")
        status = 1
    }
    do {
        try fixture.remove()
    } catch {
        progress("cleanup: \(error)")
        status = 1
    }
    return status
}

Options.main()
