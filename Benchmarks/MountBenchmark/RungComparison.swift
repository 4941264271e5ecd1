import SystemPackage
import UnionMount
import UnionMountBenchSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// `unionmount-bench --rungs`: the two mount(2) rungs for kernels without `lowerdir+`, paired in one run.
// mount-fd (every directory opened at a descriptor number on the mounting thread, the kernel resolving
// `/proc/thread-self/fd/<n>`) against mount-relative (paths relative to the layers' common directory) on the
// same spec, whose layers have the shortest relative names (`l/<index>`) so that mount-relative fits at every
// count: mount-relative's best case, so the ratio is mount-fd's whole price (N opens and dup3s, the unshare of
// the descriptor table, the magic-link lookups). Plus the mount(2) data each needs at 500 store-shaped layers.

/// One layer count's paired result.
struct RungRow {
    var layers: Int
    var rounds: Int
    var cyclesPerRound: Int
    var relativeRounds: [Double]
    var descriptorRounds: [Double]
    var relativeBytes: Int
    var descriptorBytes: Int

    var relativeMicroseconds: Double { median(relativeRounds) / 1000 }
    var descriptorMicroseconds: Double { median(descriptorRounds) / 1000 }
    var pairedRatios: [Double] { zip(descriptorRounds, relativeRounds).map { $0 / $1 } }
}

/// The mount(2) data of `strategy`'s plan for `spec` (its last step), or nil when it does not plan.
func mountDataLength(_ spec: OverlaySpec, strategy: MountStrategy, features: KernelFeatures = .current) -> Int? {
    guard let plan = try? Mounter(features: features).plan(.overlay(spec), at: "/m", strategy: strategy),
        case .mount(_, _, _, _, let data, _) = plan.steps.last
    else { return nil }
    return data.count
}

/// The bytes a strategy's mount(2) data needs for `spec`, planned or not (a refusal says how many it needed).
func neededBytes(_ spec: OverlaySpec, strategy: MountStrategy) -> String {
    if let length = mountDataLength(spec, strategy: strategy) { return "\(length)" }
    do {
        _ = try Mounter().plan(.overlay(spec), at: "/m", strategy: strategy)
        return "?"
    } catch {
        // "…: options need N bytes…"
        let words = error.message.split(separator: " ")
        if let index = words.firstIndex(of: "need"), index + 1 < words.count {
            return "\(words[index + 1]) (does not fit)"
        }
        return "refused: \(error.message)"
    }
}

/// Builds `root/r/l/<index>` layers (one file each) and, per count, `root/r/{u,w,m}-<count>`, then measures.
func runRungComparison(_ options: Options, root: FilePath) throws(BenchmarkError) -> [RungRow] {
    let base = root.string + "/r"
    func makeDirectory(_ path: String) throws(BenchmarkError) {
        guard mkdir(path, 0o755) == 0 else { throw .systemCall("mkdir \(path)") }
    }
    try makeDirectory(base)
    try makeDirectory(base + "/l")
    let largest = options.sizes.max() ?? 0
    var lowers: [FilePath] = []
    for index in 0..<largest {
        let path = base + "/l/\(index)"
        try makeDirectory(path)
        let fd = open(path + "/file-\(index)", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .systemCall("create \(path)/file-\(index)") }
        close(fd)
        lowers.append(FilePath(path))
    }
    var rows: [RungRow] = []
    for count in options.sizes {
        let upper = base + "/u-\(count)"
        let work = base + "/w-\(count)"
        let target = FilePath(base + "/m-\(count)")
        for path in [upper, work, target.string] { try makeDirectory(path) }
        let overlay = OverlaySpec(
            lowerDirectories: Array(lowers.prefix(count)), upperDirectory: FilePath(upper),
            workDirectory: FilePath(work))
        guard let relativeBytes = mountDataLength(overlay, strategy: .legacyRelative),
            let descriptorBytes = mountDataLength(overlay, strategy: .legacyDescriptors)
        else {
            throw BenchmarkError(description: "\(count) layers do not plan with both mount-relative and mount-fd")
        }
        let spec = UnionSpec.overlay(overlay)
        var contenders: [Contender] = []
        for strategy in [MountStrategy.legacyRelative, .legacyDescriptors] {
            do {
                let plan = try Mounter().mount(spec, at: target, strategy: strategy)
                defer { _ = try? Mounter().unmount(target) }
                guard plan.strategy == strategy, access(target.string + "/file-\(count - 1)", F_OK) == 0 else {
                    throw BenchmarkError(description: "\(strategy.rawValue) mount of \(count) layers is not right")
                }
            } catch let error as BenchmarkError {
                throw error
            } catch {
                throw BenchmarkError(description: "verification mount (\(strategy.rawValue), \(count)): \(error)")
            }
            var contender = libraryContender(spec, target: target, strategy: strategy)
            contender.name = strategy.rawValue
            contenders.append(contender)
        }
        let schedule = Schedule(
            rounds: options.rounds, roundBudgetNanoseconds: options.roundMilliseconds * 1_000_000,
            cycleRange: 2...200, warmupCycles: 3)
        let measurement = try measure(contenders, schedule: schedule)
        let row = RungRow(
            layers: count, rounds: options.rounds, cyclesPerRound: measurement.cyclesPerRound,
            relativeRounds: measurement.roundMeans["mount-relative"] ?? [],
            descriptorRounds: measurement.roundMeans["mount-fd"] ?? [], relativeBytes: relativeBytes,
            descriptorBytes: descriptorBytes)
        progress(
            "\(count) layers: mount-relative \(fixed(row.relativeMicroseconds, 1)) µs, mount-fd "
                + "\(fixed(row.descriptorMicroseconds, 1)) µs, paired ratio \(fixed(median(row.pairedRatios), 3))")
        rows.append(row)
    }
    return rows
}

/// The comparison as Markdown, with the mount(2) data each rung needs at 500 store-shaped layers.
func rungReport(_ rows: [RungRow], kernel: String, tmpfs: Bool) -> String {
    var lines = [
        "mount-fd vs mount-relative, library mount+unmount cycles, Linux \(kernel), layers on "
            + (tmpfs ? "tmpfs" : "/tmp") + "; layers named `…/r/l/<index>` (mount-relative's shortest names); "
            + "ratio = mount-fd / mount-relative, paired = median (p25–p75) of per-round ratios",
        "",
        "| layers | mount-relative µs/cycle | mount-fd µs/cycle | ratio | paired | data bytes relative | data bytes fd |",
        "|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in rows {
        let paired = row.pairedRatios
        lines.append(
            "| \(row.layers) | \(fixed(row.relativeMicroseconds, 1)) | \(fixed(row.descriptorMicroseconds, 1)) | "
                + "\(fixed(row.descriptorMicroseconds / row.relativeMicroseconds, 3)) | "
                + "\(fixed(median(paired), 3)) (\(fixed(quantile(paired, 0.25), 3))–\(fixed(quantile(paired, 0.75), 3))) | "
                + "\(row.relativeBytes) | \(row.descriptorBytes) |")
    }
    // 500 store-shaped layers: `/var/lib/unionmount/layers/<64 hex>/diff`, upper and work in `containers/c/`.
    let store = (0..<500).map { index -> FilePath in
        let hex = String(index, radix: 16)
        return FilePath("/var/lib/unionmount/layers/\(String(repeating: "0", count: 64 - hex.count) + hex)/diff")
    }
    let spec = OverlaySpec(
        lowerDirectories: store, upperDirectory: "/var/lib/unionmount/containers/c/diff",
        workDirectory: "/var/lib/unionmount/containers/c/work")
    lines.append("")
    lines.append("mount(2) data for 500 store-shaped layers (`/var/lib/unionmount/layers/<64 hex>/diff`), limit 4095:")
    lines.append("")
    lines.append("| strategy | bytes |")
    lines.append("|---|---:|")
    for strategy in [MountStrategy.legacy, .legacyRelative, .legacyDescriptors] {
        lines.append("| \(strategy.rawValue) | \(neededBytes(spec, strategy: strategy)) |")
    }
    return lines.joined(separator: "\n")
}
