/// One group's measurement, with the ratios the report shows.
struct GroupResult {
    var group: Group
    var measurement: Measurement

    func rounds(_ name: String) -> [Double] { measurement.roundMeans[name] ?? [] }

    /// Per round: `name`'s time over `reference`'s time in the same round.
    func paired(_ name: String, over reference: String) -> [Double] {
        zip(rounds(name), rounds(reference)).map { $0 / $1 }
    }

    /// A target's measured value (paired median) and whether it is met.
    func evaluate(_ target: Target) -> (value: Spread, met: Bool, text: String) {
        switch target.kind {
        case .atMostTimes(let limit):
            let value = Spread(paired(target.contender, over: target.reference))
            return (
                value, value.median <= limit,
                "`\(target.contender)` ≤ \(fixed(limit, 2))× `\(target.reference)`: \(fixed(value.median, 3))× "
                    + "(p25–p75 \(fixed(value.p25, 3))–\(fixed(value.p75, 3)))"
            )
        case .atLeastFaster(let limit):
            let value = Spread(paired(target.reference, over: target.contender))
            return (
                value, value.median >= limit,
                "`\(target.contender)` ≥ \(fixed(limit, 0))× faster than `\(target.reference)`: "
                    + "\(fixed(value.median, 1))× (p25–p75 \(fixed(value.p25, 1))–\(fixed(value.p75, 1)))"
            )
        }
    }
}

/// Facts about the run, printed above the tables.
struct RunInfo {
    var kernel: String
    var totalMounts: Int
    var overlays: Int
    var layersPerOverlay: Int
    var savedBytes: Int
    var rounds: Int
    var roundMilliseconds: Double
    var mountSeconds: Double
}

/// The results as Markdown: one table per group, then its targets.
func markdownReport(_ results: [GroupResult], info: RunInfo) -> String {
    var lines: [String] = []
    lines.append(
        "Mount table of \(info.totalMounts) mounts (\(info.overlays) overlays of \(info.layersPerOverlay) lower "
            + "layers + upper, the rest tmpfs), mountinfo \(fixed(Double(info.savedBytes) / 1_048_576, 2)) MiB, "
            + "Linux \(info.kernel); mounted in \(fixed(info.mountSeconds, 2)) s.")
    lines.append(
        "Times: median (p25–p75) over \(info.rounds) interleaved rounds of the mean µs per call (each contender "
            + "≈ \(fixed(info.roundMilliseconds, 0)) ms per round). Ratios are paired per round: median (p25–p75).")
    for result in results {
        let group = result.group
        lines.append("")
        lines.append("### \(group.title)")
        lines.append("")
        var header = "| contender | what | µs per call | × floor (`\(group.floor)`) |"
        var rule = "|---|---|---:|---:|"
        if let reference = group.reference {
            header += " `\(reference)` / this |"
            rule += "---:|"
        }
        header += " calls/round |"
        rule += "---:|"
        lines.append(header)
        lines.append(rule)
        for contender in group.contenders {
            let time = Spread(result.rounds(contender.name))
            let toFloor = Spread(result.paired(contender.name, over: group.floor))
            var line =
                "| `\(contender.name)` | \(contender.label) | \(fixed(time.median / 1000, 1)) "
                + "(\(fixed(time.p25 / 1000, 1))–\(fixed(time.p75 / 1000, 1))) | \(fixed(toFloor.median, 3)) "
                + "(\(fixed(toFloor.p25, 3))–\(fixed(toFloor.p75, 3))) |"
            if let reference = group.reference {
                let speedup = Spread(result.paired(reference, over: contender.name))
                line += " \(fixed(speedup.median, 1)) (\(fixed(speedup.p25, 1))–\(fixed(speedup.p75, 1))) |"
            }
            line += " \(result.measurement.callsPerRound[contender.name] ?? 0) |"
            lines.append(line)
        }
        lines.append("")
        for target in group.targets {
            let (_, met, text) = result.evaluate(target)
            lines.append("- Target \(text) — \(met ? "met" : "**not met**")")
        }
    }
    return lines.joined(separator: "\n")
}

/// The results as JSON (times in µs).
func jsonReport(_ results: [GroupResult], info: RunInfo) -> String {
    func number(_ value: Double) -> String { value.isFinite ? fixed(value, 3) : "null" }
    func spread(_ value: Spread, scale: Double = 1) -> String {
        "{\"median\": \(number(value.median / scale)), \"p25\": \(number(value.p25 / scale)), "
            + "\"p75\": \(number(value.p75 / scale))}"
    }
    func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
    var groups: [String] = []
    for result in results {
        let group = result.group
        var contenders: [String] = []
        for contender in group.contenders {
            var fields = [
                "\"name\": \(string(contender.name))",
                "\"label\": \(string(contender.label))",
                "\"callsPerRound\": \(result.measurement.callsPerRound[contender.name] ?? 0)",
                "\"microseconds\": \(spread(Spread(result.rounds(contender.name)), scale: 1000))",
                "\"ratioToFloor\": \(spread(Spread(result.paired(contender.name, over: group.floor))))",
            ]
            if let reference = group.reference {
                fields.append(
                    "\"referenceOverThis\": \(spread(Spread(result.paired(reference, over: contender.name))))")
            }
            fields.append(
                "\"roundsMicroseconds\": ["
                    + result.rounds(contender.name).map { number($0 / 1000) }.joined(separator: ", ") + "]")
            contenders.append("        {" + fields.joined(separator: ", ") + "}")
        }
        var targets: [String] = []
        for target in group.targets {
            let (value, met, _) = result.evaluate(target)
            let (kind, limit): (String, Double) =
                switch target.kind {
                case .atMostTimes(let limit): ("atMostTimes", limit)
                case .atLeastFaster(let limit): ("atLeastFaster", limit)
                }
            targets.append(
                "        {\"contender\": \(string(target.contender)), \"reference\": \(string(target.reference)), "
                    + "\"kind\": \"\(kind)\", \"limit\": \(number(limit)), \"value\": \(spread(value)), "
                    + "\"met\": \(met)}")
        }
        groups.append(
            "    {\n      \"key\": \(string(group.key)),\n      \"title\": \(string(group.title)),\n"
                + "      \"floor\": \(string(group.floor)),\n"
                + "      \"contenders\": [\n" + contenders.joined(separator: ",\n") + "\n      ],\n"
                + "      \"targets\": [\n" + targets.joined(separator: ",\n") + "\n      ]\n    }")
    }
    return "{\n  \"kernel\": \(string(info.kernel)),\n  \"totalMounts\": \(info.totalMounts),\n"
        + "  \"overlays\": \(info.overlays),\n  \"layersPerOverlay\": \(info.layersPerOverlay),\n"
        + "  \"mountinfoBytes\": \(info.savedBytes),\n  \"rounds\": \(info.rounds),\n"
        + "  \"roundMilliseconds\": \(number(info.roundMilliseconds)),\n"
        + "  \"mountSeconds\": \(number(info.mountSeconds)),\n"
        + "  \"groups\": [\n" + groups.joined(separator: ",\n") + "\n  ]\n}"
}
