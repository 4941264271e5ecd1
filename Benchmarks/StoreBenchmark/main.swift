import ArgumentParser
import CUnionMountBenchBaseline
import SystemPackage
import UnionMount
import UnionMountBenchSupport
import UnionMountStore

// unionmount-store-bench: the layer store's cost of mounting a container, as a ratio to the bare mount of the
// same layers, measured in one run.
//
//     swift build -c release --product unionmount-store-bench
//     sudo unshare -m --propagation private .build/release/unionmount-store-bench [--sizes 1,16,128,500]
//
// For each chain length N the store holds N image layers and a container on them. One "store" cycle is
// `LayerStore.mount(container:)` + `unmount(container:)` on an open store: the flock(2) lock, reading the
// container's records, the statx(2) of the mount point, the `mounts` record's in-place writes, and the mount. One
// "bare" cycle mounts the same spec (same layers, upper, work and options) with `Mounter` at the same place and
// unmounts it. The two alternate in interleaved rounds (which goes first alternates too); the report gives the
// median cycle of each, their ratio, and the median of the rounds' own ratios (each round's store cycles over the
// bare cycles next to them, which cancels load that changes between rounds). `--tmpfs` puts the store on a tmpfs (no disk flushes; isolates the store's own work).
//
// The floor, in the same rounds: the same new-mount-API cycle from C (`Benchmarks/CBaseline`) bare, and with the
// store's 17 system calls around it (`cumbench_cycle_store_shaped`: the lock, the records, the pwrites, on scratch
// copies of the files): what the guarantees cost with no Swift at all.
#if canImport(Glibc)
    import Glibc
#endif

/// The command line (swift-argument-parser).
struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unionmount-store-bench",
        abstract: "A container mount through the layer store against the bare mount of the same layers.")

    @Option(
        help: ArgumentHelp("Chain lengths, comma-separated.", valueName: "counts"),
        transform: layerCounts)
    var sizes = [1, 16, 128, 500]
    @Option(help: "Interleaved rounds per chain length.")
    var rounds = 21
    @Option(help: "Cycles of each side per round.")
    var cycles = 10
    @Flag(help: "Put the store on a tmpfs (no disk flushes; isolates the store's own work).")
    var tmpfs = false

    mutating func validate() throws {
        guard rounds >= 1, cycles >= 1 else { throw ValidationError("--rounds and --cycles take N ≥ 1") }
    }
}

let options = Options.parseOrExit()
let sizes = options.sizes
let rounds = options.rounds
let cyclesPerRound = options.cycles
let useTmpfs = options.tmpfs
if let failure = preflightFailure(program: "unionmount-store-bench") {
    print(failure)
    exit(1)
}

var template = Array("/tmp/unionmount-store-bench-XXXXXX".utf8CString)
guard mkdtemp(&template) != nil else { fatalError("mkdtemp failed") }
let scratch = FilePath(platformString: template)
if useTmpfs {
    guard mount("tmpfs", scratch.string, "tmpfs", 0, "size=1g") == 0 else { fatalError("cannot mount a tmpfs") }
}
defer {
    _ = try? Mounter().unmountRecursively(scratch)
    _ = system("rm -rf '\(scratch.string)'")
}

let mounter = Mounter()
print("# unionmount-store-bench — Linux \(kernelRelease()), \(useTmpfs ? "tmpfs" : "disk under /tmp")")
print("")
print(
    "| layers | bare mount+unmount | store mount+unmount | store / bare (medians) | median paired ratio "
        + "| C floor: store-shaped / bare (paired) |")
print("|---:|---:|---:|---:|---:|---:|")
for size in sizes {
    progress("building a \(size)-layer chain")
    let root = scratch.appending("store-\(size)")
    let store = try LayerStore.create(at: root)
    var parent: String?
    for index in 1...size {
        let builder = try store.beginLayer("l\(index)", parent: parent)
        let file = builder.directory.appending("file-\(index)").string
        let fd = open(file, O_CREAT | O_WRONLY, 0o644)
        close(fd)
        try builder.commit()
        parent = "l\(index)"
    }
    let container = try store.createContainer("c", image: parent)
    let spec = try store.unionSpec(container: "c")
    var bare: [Double] = []
    var stored: [Double] = []
    var ratios: [Double] = []
    var floorRatios: [Double] = []
    // The C floor's arguments: the same layers, upper, work and mount point; the lock and the mounts record are
    // scratch files of their own (the store's are not touched), the container record is the store's.
    guard case .overlay(let overlay) = spec, let upper = overlay.upperDirectory, let work = overlay.workDirectory else {
        fatalError("the store bench's store is not an overlay store")
    }
    let cStrings = (overlay.lowerDirectories + [upper, work, container.mergedDirectory]).map { strdup($0.string)! }
    defer { cStrings.forEach { free($0) } }
    let cLowers = cStrings.dropLast(3).map { UnsafePointer($0) }
    let (cUpper, cWork, cTarget) = (
        cStrings[cStrings.count - 3], cStrings[cStrings.count - 2], cStrings[cStrings.count - 1]
    )
    let mountsCopy = scratch.appending("c-mounts-\(size)").string
    let lockCopy = scratch.appending("c-lock-\(size)").string
    _ = system("printf 'count=0000000000\\npending=none   \\n' > '\(mountsCopy)'; : > '\(lockCopy)'")
    let lockFD = open(lockCopy, O_RDWR | O_CLOEXEC)
    defer { close(lockFD) }
    let record = root.appending("containers/c/container.conf").string
    func cCycles(storeShaped: Bool) -> Double {
        var failed: UnsafePointer<CChar>? = nil
        let start = monotonicNanoseconds()
        for _ in 0..<cyclesPerRound {
            let result = cLowers.withUnsafeBufferPointer { lowers in
                storeShaped
                    ? cumbench_cycle_store_shaped(
                        lockFD, record, mountsCopy, lowers.baseAddress!, lowers.count, cUpper, cWork, cTarget, &failed)
                    : cumbench_cycle_new_mount_api(lowers.baseAddress!, lowers.count, cUpper, cWork, cTarget, &failed)
            }
            guard result == 0 else {
                fatalError("C cycle failed at \(failed.map { String(cString: $0) } ?? "?"): \(errno)")
            }
        }
        return Double(monotonicNanoseconds() - start) / Double(cyclesPerRound)
    }
    func bareCycles() throws -> Double {
        let start = monotonicNanoseconds()
        for _ in 0..<cyclesPerRound {
            try mounter.mount(spec, at: container.mergedDirectory)
            try mounter.unmount(container.mergedDirectory)
        }
        return Double(monotonicNanoseconds() - start) / Double(cyclesPerRound)
    }
    func storeCycles() throws -> Double {
        let start = monotonicNanoseconds()
        for _ in 0..<cyclesPerRound {
            try store.mount(container: "c")
            try store.unmount(container: "c")
        }
        return Double(monotonicNanoseconds() - start) / Double(cyclesPerRound)
    }
    for round in 0..<(rounds + 1) {
        // The order alternates between rounds, so neither side always runs right after the other's unmount.
        let (bareTime, storeTime): (Double, Double)
        if round % 2 == 0 {
            bareTime = try bareCycles()
            storeTime = try storeCycles()
        } else {
            storeTime = try storeCycles()
            bareTime = try bareCycles()
        }
        let (cBare, cStore) =
            round % 2 == 0
            ? (cCycles(storeShaped: false), cCycles(storeShaped: true))
            : {
                let s = cCycles(storeShaped: true); return (cCycles(storeShaped: false), s)
            }()
        if round > 0 {  // the first round warms caches
            bare.append(bareTime)
            stored.append(storeTime)
            ratios.append(storeTime / bareTime)
            floorRatios.append(cStore / cBare)
        }
    }
    let (b, s) = (median(bare), median(stored))
    print(
        "| \(size) | \(format3(b / 1000)) µs | \(format3(s / 1000)) µs | \(format3(s / b)) | \(format3(median(ratios))) "
            + "| \(format3(median(floorRatios))) |"
    )
}

func format3(_ value: Double) -> String {
    let scaled = (value * 100).rounded() / 100
    return String(scaled)
}
