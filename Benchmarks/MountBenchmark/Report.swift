import UnionMount
import UnionMountBenchSupport

/// The library's overhead the benchmark aims to stay within: library time ≤ 1.05 × C time.
let overheadTarget = 1.05

/// One configuration's results: a stack size mounted with one strategy.
struct ResultRow {
    /// Lower layers in the stack.
    var layers: Int
    /// The strategy both sides used.
    var strategy: MountStrategy
    /// Interleaved rounds measured.
    var rounds: Int
    /// Cycles per contender per round.
    var cyclesPerRound: Int
    /// The C side's per-round mean nanoseconds per cycle.
    var cRounds: [Double]
    /// The library's per-round mean nanoseconds per cycle.
    var libraryRounds: [Double]
    /// With `--breakdown`: the library executing a pre-made plan, per-round mean nanoseconds per cycle.
    var executeRounds: [Double]?
    /// With `--breakdown`: the C cycle run a second time, per-round mean nanoseconds per cycle.
    var controlRounds: [Double]?
    /// Mean nanoseconds of one `Mounter().plan(…)` call.
    var planNanoseconds: Double

    /// Median C time per cycle, µs.
    var cMicroseconds: Double { median(cRounds) / 1000 }
    /// Median library time per cycle, µs.
    var libraryMicroseconds: Double { median(libraryRounds) / 1000 }
    /// Median execute-only time per cycle, µs.
    var executeMicroseconds: Double? { executeRounds.map { median($0) / 1000 } }
    /// Library median over C median.
    var ratio: Double { libraryMicroseconds / cMicroseconds }
    /// Each round's library mean over the same round's C mean.
    var pairedRatios: [Double] { zip(libraryRounds, cRounds).map { $0 / $1 } }
    /// Each round's execute-only mean over the same round's C mean.
    var pairedExecuteRatios: [Double]? { executeRounds.map { zip($0, cRounds).map { $0 / $1 } } }
    /// Each round's second C mean over the same round's first: how far two identical contenders drift apart.
    var pairedControlRatios: [Double]? { controlRounds.map { zip($0, cRounds).map { $0 / $1 } } }
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

/// The results as Markdown: the comparison table, then where the library's time goes.
func markdownReport(_ rows: [ResultRow], kernel: String, tmpfs: Bool) -> String {
    var lines: [String] = []
    lines.append(
        "Overlay mount+unmount cycles, library vs. the same system calls from C (Linux \(kernel), layers on "
            + (tmpfs ? "tmpfs)." : "the disk under /tmp)."))
    lines.append("Times are medians over interleaved rounds of the mean time per cycle; ratio = library / C;")
    lines.append("paired = median (p25–p75) of the per-round ratios. Target: ratio ≤ \(fixed(overheadTarget, 2)).")
    lines.append("")
    lines.append(
        "| layers | strategy | C µs/cycle | library µs/cycle | ratio | paired ratio (p25–p75) | rounds × cycles |")
    lines.append("|---:|---|---:|---:|---:|---|---:|")
    for row in rows {
        let paired = row.pairedRatios
        let flag = row.ratio > overheadTarget ? " ⚠" : ""
        lines.append(
            "| \(row.layers) | \(row.strategy.rawValue) | \(fixed(row.cMicroseconds, 1)) | "
                + "\(fixed(row.libraryMicroseconds, 1)) | \(fixed(row.ratio, 3))\(flag) | "
                + "\(fixed(median(paired), 3)) (\(fixed(quantile(paired, 0.25), 3))–"
                + "\(fixed(quantile(paired, 0.75), 3))) | \(row.rounds) × \(row.cyclesPerRound) |")
    }
    lines.append("")
    lines.append("Planning alone (`Mounter().plan`, no system calls), per call:")
    lines.append("")
    let breakdown = rows.contains { $0.executeRounds != nil }
    if breakdown {
        lines.append(
            "| layers | strategy | plan µs | plan / C cycle | execute-only µs/cycle | execute-only / C "
                + "| C control / C |")
        lines.append("|---:|---|---:|---:|---:|---:|---:|")
    } else {
        lines.append("| layers | strategy | plan µs | plan / C cycle |")
        lines.append("|---:|---|---:|---:|")
    }
    for row in rows {
        var line =
            "| \(row.layers) | \(row.strategy.rawValue) | \(fixed(row.planNanoseconds / 1000, 2)) | "
            + "\(fixed(100 * row.planNanoseconds / 1000 / row.cMicroseconds, 2)) % |"
        if let execute = row.executeMicroseconds, let paired = row.pairedExecuteRatios,
            let control = row.pairedControlRatios
        {
            line += " \(fixed(execute, 1)) | \(fixed(median(paired), 3)) | \(fixed(median(control), 3)) |"
        }
        lines.append(line)
    }
    return lines.joined(separator: "\n")
}

/// The results as JSON (times in µs).
func jsonReport(_ rows: [ResultRow], kernel: String, tmpfs: Bool) -> String {
    func number(_ value: Double) -> String { value.isFinite ? fixed(value, 3) : "null" }
    func list(_ values: [Double]) -> String { "[" + values.map { number($0 / 1000) }.joined(separator: ", ") + "]" }
    var entries: [String] = []
    for row in rows {
        let paired = row.pairedRatios
        var fields = [
            "\"layers\": \(row.layers)",
            "\"strategy\": \"\(row.strategy.rawValue)\"",
            "\"rounds\": \(row.rounds)",
            "\"cyclesPerRound\": \(row.cyclesPerRound)",
            "\"cMicrosecondsPerCycle\": \(number(row.cMicroseconds))",
            "\"libraryMicrosecondsPerCycle\": \(number(row.libraryMicroseconds))",
            "\"ratio\": \(number(row.ratio))",
            "\"pairedRatioMedian\": \(number(median(paired)))",
            "\"pairedRatioP25\": \(number(quantile(paired, 0.25)))",
            "\"pairedRatioP75\": \(number(quantile(paired, 0.75)))",
            "\"withinTarget\": \(row.ratio <= overheadTarget)",
            "\"planMicroseconds\": \(number(row.planNanoseconds / 1000))",
            "\"cRoundsMicroseconds\": \(list(row.cRounds))",
            "\"libraryRoundsMicroseconds\": \(list(row.libraryRounds))",
        ]
        if let execute = row.executeRounds, let executePaired = row.pairedExecuteRatios {
            fields.append("\"executeOnlyMicrosecondsPerCycle\": \(number(median(execute) / 1000))")
            fields.append("\"executeOnlyPairedRatioMedian\": \(number(median(executePaired)))")
            fields.append("\"executeOnlyRoundsMicroseconds\": \(list(execute))")
        }
        if let control = row.controlRounds, let controlPaired = row.pairedControlRatios {
            fields.append("\"cControlPairedRatioMedian\": \(number(median(controlPaired)))")
            fields.append("\"cControlRoundsMicroseconds\": \(list(control))")
        }
        entries.append("    {\n      " + fields.joined(separator: ",\n      ") + "\n    }")
    }
    return "{\n  \"kernel\": \"\(kernel)\",\n  \"layersOnTmpfs\": \(tmpfs),\n  \"overheadTarget\": \(overheadTarget),\n"
        + "  \"results\": [\n"
        + entries.joined(separator: ",\n") + "\n  ]\n}"
}
