import UnionMountBenchSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Results are summed here so the optimizer cannot drop a call whose result is unused.
nonisolated(unsafe) var sink = 0

/// One way of doing a group's job.
struct Contender {
    /// A short name for progress lines, `--profile` and JSON keys.
    var name: String
    /// What it does, for the report.
    var label: String
    /// Does the job once; returns something derived from the result (a count), which is summed into ``sink``.
    var run: () throws(BenchmarkError) -> Int
}

/// How a group's rounds are run.
struct Schedule {
    /// Interleaved rounds.
    var rounds: Int
    /// Target time each contender gets per round; sets its calls per round.
    var roundBudgetNanoseconds: Double
    /// Untimed calls of each contender before calibration.
    var warmupCalls = 3
}

/// A group's raw result: per contender, the mean nanoseconds per call of every round.
struct Measurement {
    /// Calls per round, per contender.
    var callsPerRound: [String: Int]
    /// Per contender, one mean per round, in round order.
    var roundMeans: [String: [Double]]
}

/// Runs `contenders` in interleaved rounds: every round runs each contender for about the round budget (its own
/// number of calls, calibrated once on the fastest of a few calls), starting with a different contender each
/// round, so that slow drifts of the machine (the fuzzer next door) hit all of them alike.
func measure(_ contenders: [Contender], schedule: Schedule) throws(BenchmarkError) -> Measurement {
    var calls: [String: Int] = [:]
    for contender in contenders {
        var fastest = Double.infinity
        for _ in 0..<max(1, schedule.warmupCalls) {
            let started = monotonicNanoseconds()
            sink &+= try contender.run()
            fastest = min(fastest, Double(monotonicNanoseconds() - started))
        }
        calls[contender.name] = min(max(Int(schedule.roundBudgetNanoseconds / max(fastest, 1)), 1), 1_000_000)
    }
    var means: [String: [Double]] = [:]
    for round in 0..<schedule.rounds {
        for offset in 0..<contenders.count {
            let contender = contenders[(round + offset) % contenders.count]
            let count = calls[contender.name] ?? 1
            let started = monotonicNanoseconds()
            for _ in 0..<count { sink &+= try contender.run() }
            let elapsed = monotonicNanoseconds() - started
            means[contender.name, default: []].append(Double(elapsed) / Double(count))
        }
    }
    return Measurement(callsPerRound: calls, roundMeans: means)
}

/// Median and interquartile range of a sample.
struct Spread {
    var median: Double
    var p25: Double
    var p75: Double

    init(_ values: [Double]) {
        median = quantile(values, 0.5)
        p25 = quantile(values, 0.25)
        p75 = quantile(values, 0.75)
    }
}

/// `value` with `decimals` digits after the point (no Foundation formatting needed).
func fixed(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "n/a" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int((abs(value) * scale).rounded())
    let unit = Int(scale)
    let fraction = String(scaled % unit)
    let sign = value < 0 && scaled != 0 ? "-" : ""
    guard decimals > 0 else { return sign + String(scaled) }
    return sign + String(scaled / unit) + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
}
