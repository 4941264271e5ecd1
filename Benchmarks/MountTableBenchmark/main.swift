import ArgumentParser
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

/// The command line (swift-argument-parser).
struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unionmount-table-bench",
        abstract: "Mount table reading on a real table of 10,000 mounts, against read() and libmount.",
        discussion: """
            Builds a mount table of 10,000 mounts (tmpfs mounts on a tmpfs, 1,000 overlays of 3 lower layers \
            each), then measures in interleaved rounds: (a) parsing a saved copy of its mountinfo (read() floor, \
            libmount, MountTable.parse), (b) listing its union mounts (MountTable.reports) against a read() of \
            /proc/self/mountinfo, (c) MountTable.entry(containing:) against the same read(). Must run as root \
            in a private mount namespace: \(benchmarkCommand("unionmount-table-bench"))
            """)

    @Flag(help: "Print JSON instead of Markdown.")
    var json = false
    @Option(help: "Total lines of the table (at least 100).")
    var mounts = 10_000
    @Option(help: "Overlays among them.")
    var overlays = 1_000
    @Option(help: "Lower layers per overlay.")
    var layers = 3
    @Option(help: "Interleaved rounds per group.")
    var rounds = 21
    @Option(name: .customLong("round-ms"), help: "Milliseconds per contender per round.")
    var roundMilliseconds = 50.0
    @Option(
        help: ArgumentHelp("Which groups to measure: parse, list and/or lookup, comma-separated.", valueName: "list"),
        transform: { (text: String) throws -> [String] in
            let groups = text.split(separator: ",").map(String.init)
            guard !groups.isEmpty, groups.allSatisfy({ ["parse", "list", "lookup"].contains($0) }) else {
                throw ValidationError("--groups takes parse, list and/or lookup, comma-separated")
            }
            return groups
        })
    var groups = ["parse", "list", "lookup"]
    @Option(
        help: ArgumentHelp(
            "Also copy the saved mountinfo here (to profile the parser without root).", valueName: "path"))
    var saveTable: String?
    @Option(help: ArgumentHelp("Run only this contender for --profile-seconds, for perf record.", valueName: "name"))
    var profile: String?
    @Option(help: "How long --profile runs, in seconds.")
    var profileSeconds = 10.0

    /// The table to build.
    var table: TableFixture.Configuration {
        var table = TableFixture.Configuration()
        table.totalMounts = mounts
        table.overlays = overlays
        table.layersPerOverlay = layers
        return table
    }

    func validate() throws {
        guard mounts >= 100 else { throw ValidationError("--mounts takes N ≥ 100") }
        guard overlays >= 1, layers >= 1, rounds >= 1 else {
            throw ValidationError("--overlays, --layers and --rounds take N ≥ 1")
        }
        guard roundMilliseconds > 0, profileSeconds > 0 else {
            throw ValidationError("--round-ms and --profile-seconds take a positive number")
        }
    }

    func run() throws {
        let status = benchmarkMain(self)
        if status != 0 { throw ExitCode(status) }
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
func benchmarkMain(_ options: Options) -> Int32 {
    if let failure = preflightFailure(program: "unionmount-table-bench") {
        progress(failure)
        return 2
    }
    let fixture: TableFixture
    do {
        fixture = try TableFixture(options.table)
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

Options.main()
