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

/// Command-line options.
struct Options {
    /// Print JSON instead of Markdown.
    var json = false
    /// Also measure the library executing a pre-made plan (planning vs. execution) and C against itself
    /// (the noise floor).
    var breakdown = false
    /// Build the layers on a tmpfs of the benchmark's own instead of the disk under `/tmp`.
    var tmpfs = false
    /// Lower-layer counts to measure.
    var sizes = [1, 16, 128, 500]
    /// Interleaved rounds per configuration.
    var rounds = 41
    /// Target milliseconds per contender per round.
    var roundMilliseconds = 50.0
    /// `--profile SIDE`: run only this contender ("c", "library" or "library-execute") for `--profile-seconds`
    /// on each configuration, without reporting, so `perf` sees one side alone.
    var profileSide: String?
    /// How long `--profile` runs each configuration.
    var profileSeconds = 5.0

    static let usage = """
        usage: unionmount-bench [--json] [--breakdown] [--tmpfs] [--sizes 1,16,128,500] [--rounds N]
                                [--round-ms MS] [--profile c|library|library-execute [--profile-seconds S]]

        Mounts and unmounts overlays of 1, 16, 128 and 500 lower layers (plus upper and work) through
        UnionMount's Mounter and through the same system calls issued from C, in interleaved rounds, and
        prints the median time per cycle of each and their ratio. new-mount-api is measured for every size;
        mount(2) ("mount" strategy) where the option string fits one page. Must run as root in a private
        mount namespace:

            \(benchmarkCommand("unionmount-bench"))

          --json        print JSON instead of Markdown tables
          --breakdown   also time the library executing a pre-made plan, and C against itself (noise floor)
          --tmpfs       build the layers on a tmpfs mounted on the temporary directory: unmounting an overlay
                        then no longer syncs the disk its upper layer is on, which removes most of the noise
          --sizes       lower-layer counts, comma-separated (default 1,16,128,500)
          --rounds      interleaved rounds per configuration (default 41)
          --round-ms    milliseconds per contender per round, which sets the cycles per round (default 50)
          --profile SIDE
                        run only SIDE (c, library or library-execute) on each configuration for
                        --profile-seconds (default 5) and print its µs per cycle, for perf record/stat
        """

    /// Parses `arguments` (without the program name); `nil` with a message on bad input.
    static func parse(_ arguments: [String]) -> Result<Options, BenchmarkError> {
        var options = Options()
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--json": options.json = true
            case "--breakdown": options.breakdown = true
            case "--tmpfs": options.tmpfs = true
            case "--profile":
                guard let side = iterator.next(), ["c", "library", "library-execute"].contains(side) else {
                    return .failure(BenchmarkError(description: "--profile takes c, library or library-execute"))
                }
                options.profileSide = side
            case "--profile-seconds":
                guard let seconds = iterator.next().flatMap({ Double($0) }), seconds > 0 else {
                    return .failure(BenchmarkError(description: "--profile-seconds takes a positive number"))
                }
                options.profileSeconds = seconds
            case "--sizes":
                let sizes = iterator.next()?.split(separator: ",").compactMap { Int($0) } ?? []
                guard !sizes.isEmpty, sizes.allSatisfy({ (1...OverlaySpec.maximumLayerCount).contains($0) }) else {
                    return .failure(BenchmarkError(description: "--sizes takes counts 1…500, comma-separated"))
                }
                options.sizes = sizes
            case "--rounds":
                guard let rounds = iterator.next().flatMap({ Int($0) }), rounds >= 1 else {
                    return .failure(BenchmarkError(description: "--rounds takes a positive count"))
                }
                options.rounds = rounds
            case "--round-ms":
                guard let milliseconds = iterator.next().flatMap({ Double($0) }), milliseconds > 0 else {
                    return .failure(BenchmarkError(description: "--round-ms takes a positive number"))
                }
                options.roundMilliseconds = milliseconds
            case "-h", "--help":
                return .failure(BenchmarkError(description: usage))
            default:
                return .failure(BenchmarkError(description: "unknown argument \(argument)\n\n\(usage)"))
            }
        }
        return .success(options)
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
    if side == "library-execute" {
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
            + "\(fixed(microseconds, 1)) µs/cycle")
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
            try verify(stack, spec: spec, strategy: strategy)
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
func benchmarkMain() -> Int32 {
    let options: Options
    switch Options.parse(Array(CommandLine.arguments.dropFirst())) {
    case .success(let parsed): options = parsed
    case .failure(let error):
        progress(error.description)
        return 2
    }
    if let failure = preflightFailure(program: "unionmount-bench") {
        progress(failure)
        return 2
    }
    if let warning = overlayIndexWarning() { progress(warning) }
    let fixture: Fixture
    do {
        fixture = try Fixture(sizes: options.sizes, tmpfs: options.tmpfs)
    } catch {
        progress("cannot build the layers: \(error)")
        return 1
    }
    progress("layers in \(fixture.root)\(options.tmpfs ? " (tmpfs)" : "")")
    var status: Int32 = 0
    do {
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

exit(benchmarkMain())
