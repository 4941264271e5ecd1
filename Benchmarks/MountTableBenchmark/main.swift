import SystemPackage
import UnionMount
import UnionMountBenchSupport

// unionmount-table-bench: reading a real table of 10,000 mounts (about one in ten an overlay), built in a private
// mount namespace, reported in one run:
//
//   (a) parsing a saved copy of its mountinfo: read() of the file (the floor), libmount, MountTable.parse;
//   (b) listing the live union mounts with their branches, against read() of /proc/self/mountinfo;
//   (c) finding the mount that holds one path, against the same read().
//
//     swift build -c release --product unionmount-table-bench
//     sudo unshare -m --propagation private .build/release/unionmount-table-bench [--json]
//
// Every group's contenders run in interleaved rounds, so ratios are paired per round and noise (another job on
// the machine) hits them alike. The tmpfs everything lives on is detached recursively at the end.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Command-line options.
struct Options {
    var json = false
    var configuration = TableFixture.Configuration()
    var rounds = 21
    var roundMilliseconds = 50.0
    var groups = ["parse", "list", "lookup"]
    var profile: String?
    var profileSeconds = 10.0
    var saveTable: String?

    static let usage = """
        usage: unionmount-table-bench [--json] [--mounts N] [--overlays N] [--layers N] [--rounds N]
                                      [--round-ms MS] [--groups parse,list,lookup] [--save-table PATH]
                                      [--profile CONTENDER [--profile-seconds S]]

        Builds a mount table of 10,000 mounts (tmpfs mounts on a tmpfs, 1,000 overlays of 3 lower layers each),
        then measures in interleaved rounds: (a) parsing a saved copy of its mountinfo (read() floor, libmount,
        MountTable.parse), (b) listing its union mounts (MountTable.reports) against a
        read() of /proc/self/mountinfo, (c) MountTable.entry(containing:) against the same read(). Must run as
        root in a private mount namespace:

            \(benchmarkCommand("unionmount-table-bench"))

          --json           print JSON instead of Markdown
          --mounts N       total lines of the table (default 10000)
          --overlays N     overlays among them (default 1000)
          --layers N       lower layers per overlay (default 3)
          --rounds N       interleaved rounds per group (default 21)
          --round-ms MS    milliseconds per contender per round (default 50)
          --groups LIST    which groups to measure (default parse,list,lookup)
          --save-table P   also copy the saved mountinfo to P (for profiling the parser without root)
          --profile NAME   run only contender NAME for --profile-seconds (default 10), for perf record
        """

    static func parse(_ arguments: [String]) -> Result<Options, BenchmarkError> {
        var options = Options()
        var iterator = arguments.makeIterator()
        func count(_ name: String, minimum: Int) -> Int? {
            guard let value = iterator.next().flatMap({ Int($0) }), value >= minimum else { return nil }
            return value
        }
        while let argument = iterator.next() {
            switch argument {
            case "--json": options.json = true
            case "--mounts":
                guard let value = count(argument, minimum: 100) else {
                    return .failure(.init(description: "--mounts takes N ≥ 100"))
                }
                options.configuration.totalMounts = value
            case "--overlays":
                guard let value = count(argument, minimum: 1) else {
                    return .failure(.init(description: "--overlays takes N ≥ 1"))
                }
                options.configuration.overlays = value
            case "--layers":
                guard let value = count(argument, minimum: 1) else {
                    return .failure(.init(description: "--layers takes N ≥ 1"))
                }
                options.configuration.layersPerOverlay = value
            case "--rounds":
                guard let value = count(argument, minimum: 1) else {
                    return .failure(.init(description: "--rounds takes N ≥ 1"))
                }
                options.rounds = value
            case "--round-ms":
                guard let value = iterator.next().flatMap({ Double($0) }), value > 0 else {
                    return .failure(.init(description: "--round-ms takes a positive number"))
                }
                options.roundMilliseconds = value
            case "--groups":
                let groups = iterator.next()?.split(separator: ",").map(String.init) ?? []
                guard !groups.isEmpty, groups.allSatisfy({ ["parse", "list", "lookup"].contains($0) }) else {
                    return .failure(.init(description: "--groups takes parse, list and/or lookup, comma-separated"))
                }
                options.groups = groups
            case "--save-table":
                guard let path = iterator.next() else {
                    return .failure(.init(description: "--save-table takes a path"))
                }
                options.saveTable = path
            case "--profile":
                guard let name = iterator.next() else {
                    return .failure(.init(description: "--profile takes a contender"))
                }
                options.profile = name
            case "--profile-seconds":
                guard let value = iterator.next().flatMap({ Double($0) }), value > 0 else {
                    return .failure(.init(description: "--profile-seconds takes a positive number"))
                }
                options.profileSeconds = value
            case "-h", "--help":
                return .failure(BenchmarkError(description: usage))
            default:
                return .failure(BenchmarkError(description: "unknown argument \(argument)\n\n\(usage)"))
            }
        }
        return .success(options)
    }
}

/// Runs one contender alone for a while and prints its time per call.
func profile(_ contender: Contender, seconds: Double) throws(BenchmarkError) {
    let budget = UInt64(seconds * 1e9)
    let started = monotonicNanoseconds()
    var calls = 0
    while monotonicNanoseconds() - started < budget {
        sink &+= try contender.run()
        calls += 1
    }
    let microseconds = Double(monotonicNanoseconds() - started) / 1000 / Double(calls)
    print("\(contender.name) alone: \(calls) calls, \(fixed(microseconds, 1)) µs/call")
}

/// Measures the selected groups (or profiles one contender) on a built fixture.
func run(_ options: Options, fixture: TableFixture) throws(BenchmarkError) {
    try verifyAnswers(fixture)
    if let path = options.saveTable, let bytes = readWholeFile(fixture.savedMountinfo) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .systemCall("create \(path)") }
        defer { close(fd) }
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress!, $0.count) }) == bytes.count else {
            throw .systemCall("write \(path)")
        }
    }
    let makers: [String: (TableFixture) -> Group] = ["parse": parseGroup, "list": listGroup, "lookup": lookupGroup]
    let groups = options.groups.compactMap { makers[$0]?(fixture) }
    if let name = options.profile {
        guard let contender = groups.flatMap(\.contenders).first(where: { $0.name == name }) else {
            throw BenchmarkError(
                description: "no contender \(name); known: "
                    + groups.flatMap(\.contenders).map(\.name).joined(separator: ", "))
        }
        try profile(contender, seconds: options.profileSeconds)
        return
    }
    var results: [GroupResult] = []
    for group in groups {
        let started = monotonicNanoseconds()
        let schedule = Schedule(rounds: options.rounds, roundBudgetNanoseconds: options.roundMilliseconds * 1e6)
        let result = GroupResult(group: group, measurement: try measure(group.contenders, schedule: schedule))
        results.append(result)
        let summary = group.contenders.map { contender in
            "\(contender.name) \(fixed(median(result.rounds(contender.name)) / 1000, 1)) µs"
        }
        progress(
            "\(group.key): " + summary.joined(separator: ", ")
                + " (\(fixed(Double(monotonicNanoseconds() - started) / 1e9, 1)) s)")
    }
    let info = RunInfo(
        kernel: kernelRelease(), totalMounts: fixture.totalMounts, overlays: fixture.overlayMountPoints.count,
        layersPerOverlay: fixture.layersPerOverlay, savedBytes: fixture.savedBytes, rounds: options.rounds,
        roundMilliseconds: options.roundMilliseconds, mountSeconds: fixture.mountSeconds)
    print(options.json ? jsonReport(results, info: info) : markdownReport(results, info: info))
}

/// The program: checks, builds the table, measures, reports, tears down. Returns the exit status.
func benchmarkMain() -> Int32 {
    let options: Options
    switch Options.parse(Array(CommandLine.arguments.dropFirst())) {
    case .success(let parsed): options = parsed
    case .failure(let error):
        progress(error.description)
        return 2
    }
    if let failure = preflightFailure(program: "unionmount-table-bench") {
        progress(failure)
        return 2
    }
    let fixture: TableFixture
    do {
        fixture = try TableFixture(options.configuration)
    } catch {
        progress("cannot build the mount table: \(error)")
        return 1
    }
    progress(
        "\(fixture.totalMounts) mounts (\(fixture.preexistingMounts) before, \(fixture.tmpfsCount) tmpfs + "
            + "\(fixture.overlayMountPoints.count) overlays + 1 below \(fixture.root)) in "
            + "\(fixed(fixture.mountSeconds, 2)) s; mountinfo \(fixture.savedBytes) bytes")
    var status: Int32 = 0
    do {
        try run(options, fixture: fixture)
    } catch {
        progress("benchmark failed: \(error)")
        status = 1
    }
    do {
        try fixture.tearDown()
        progress("torn down: \(fixture.root) detached recursively, table back to \(fixture.preexistingMounts) lines")
    } catch {
        progress("teardown: \(error)")
        status = 1
    }
    return status
}

exit(benchmarkMain())
