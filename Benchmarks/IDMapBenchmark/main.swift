import ArgumentParser
import SystemPackage
import UnionMount
import UnionMountBenchSupport
import UnionMountStore

// unionmount-idmap-bench: giving a new id mapping to a 128-layer image by idmapped layers, against chown-copying
// the same layers (containerd's fallback where idmapped mounts are missing), in interleaved rounds of one run.
//
//     swift build -c release --product unionmount-idmap-bench
//     sudo unshare -m --propagation private .build/release/unionmount-idmap-bench [--layers 128] [--files 80]
//
// The image: N layers of F files each (1–16 KiB, in a few directories, owned by 0, 33 and 1000), on the disk of
// --directory. Each round takes a mapping not used before (0:base:65536, base new per round) and times:
//
// - idmapped: `Mounter.mount` of the layers with that `IDMapping` (the helper-made user namespace, one
//   open_tree + mount_setattr per layer, the overlay) and its unmount;
// - chown-copy: every layer copied (`LayerTree.copy`, which keeps modes, times and xattrs) and every copied entry
//   lchown'd to its shifted ids (a readdir(3) walk), then the overlay over the copies mounted and unmounted. The
//   copies are removed untimed.
//
// The report gives the median of each and the median of the rounds' ratios (chown-copy over idmapped).
#if canImport(Glibc)
    import Glibc
#endif

struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unionmount-idmap-bench",
        abstract: "A new mapping for an N-layer image: idmapped layers against chown-copying the layers.")

    @Option(help: "Layers in the image.")
    var layers = 128
    @Option(help: "Files per layer.")
    var files = 80
    @Option(help: "Measured rounds (one more runs first, unmeasured).")
    var rounds = 5
    @Option(help: "The scratch directory's parent (on the disk to measure).")
    var directory = "/tmp"
    @Flag(help: "Use the attached-trees rung (5.19+) even where the kernel takes detached trees.")
    var attached = false

    mutating func validate() throws {
        guard (1...500).contains(layers), files >= 1, rounds >= 1 else {
            throw ValidationError("--layers 1…500, --files ≥ 1, --rounds ≥ 1")
        }
    }
}

let options = Options.parseOrExit()
if let failure = preflightFailure(program: "unionmount-idmap-bench") {
    print(failure)
    exit(1)
}
guard KernelFeatures.current.idmappedLayers else {
    print("unionmount-idmap-bench: this kernel has no overlay over idmapped mounts (Linux 5.19+)")
    exit(1)
}
var template = Array("\(options.directory)/unionmount-idmap-bench-XXXXXX".utf8CString)
guard mkdtemp(&template) != nil else { fatalError("mkdtemp failed") }
let scratch = FilePath(platformString: template)
defer { _ = system("rm -rf '\(scratch.string)'") }

/// Makes `path` and its parents.
func makeDirectories(_ path: FilePath) {
    var partial = FilePath("/")
    for component in path.components {
        partial.append(component)
        mkdir(partial.string, 0o755)
    }
}

progress("building \(options.layers) layers of \(options.files) files")
var lowers: [FilePath] = []
var random: UInt64 = 0x1D_3A9
@MainActor func next() -> UInt64 {
    random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return random >> 33
}
for layer in 0..<options.layers {
    let root = scratch.appending("image/\(layer)")
    for index in 0..<options.files {
        let directory = root.appending("d\(index % 4)/s\(index % 3)")
        makeDirectories(directory)
        let file = directory.appending("f\(layer)-\(index)")
        let fd = open(file.string, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        let size = Int(1024 + next() % 15_360)
        let bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: size)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        let owner = [0, 33, 1000][index % 3]
        chown(file.string, uid_t(owner), gid_t(owner))
    }
    lowers.append(root)
}
let upper = scratch.appending("upper")
let work = scratch.appending("work")
let merged = scratch.appending("merged")
for directory in [upper, work, merged] { makeDirectories(directory) }
sync()

/// Shifts the owner and group of `path` and of everything below it by `shift` (lstat(2), lchown(2), and
/// opendir(3)/readdir(3) for directories; symbolic links are changed, never followed).
func shiftOwners(_ path: String, by shift: UInt32) {
    var status = stat()
    guard lstat(path, &status) == 0 else { fatalError("lstat \(path): \(errno)") }
    guard lchown(path, status.st_uid + shift, status.st_gid + shift) == 0 else {
        fatalError("lchown \(path): \(errno)")
    }
    guard status.st_mode & S_IFMT == S_IFDIR, let directory = opendir(path) else { return }
    defer { closedir(directory) }
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if name == "." || name == ".." { continue }
        shiftOwners(path + "/" + name, by: shift)
    }
}

let mounter: Mounter = {
    var features = KernelFeatures.current
    if options.attached { features.detachedLayerTrees = false }
    return Mounter(features: features, attachmentDirectory: scratch.appending("attachments"))
}()
@MainActor func spec(_ layers: [FilePath], mapping: IDMapping?) -> UnionSpec {
    .overlay(OverlaySpec(lowerDirectories: layers, upperDirectory: upper, workDirectory: work, idMapping: mapping))
}

@MainActor func idmappedCycle(base: UInt32) throws -> Double {
    let range = IDRange(inside: 0, outside: base, count: 65536)
    let start = monotonicNanoseconds()
    try mounter.mount(spec(lowers, mapping: .ranges(uids: [range], gids: [range])), at: merged)
    try mounter.unmount(merged)
    return Double(monotonicNanoseconds() - start)
}

@MainActor func chownCopyCycle(base: UInt32, round: Int) throws -> Double {
    let copies = lowers.indices.map { scratch.appending("copies-\(round)/\($0)") }
    makeDirectories(scratch.appending("copies-\(round)"))
    let start = monotonicNanoseconds()
    for (layer, copy) in zip(lowers, copies) {
        try LayerTree.copy(from: layer, to: copy)
        shiftOwners(copy.string, by: base)
    }
    try mounter.mount(spec(copies, mapping: nil), at: merged)
    try mounter.unmount(merged)
    let elapsed = Double(monotonicNanoseconds() - start)
    _ = system("rm -rf '\(scratch.appending("copies-\(round)").string)'")
    return elapsed
}

print("# unionmount-idmap-bench — Linux \(kernelRelease()), \(options.layers) layers × \(options.files) files")
print("")
var idmapped: [Double] = []
var copied: [Double] = []
var ratios: [Double] = []
for round in 0...options.rounds {
    progress("round \(round) of \(options.rounds)")
    let base = UInt32(100_000 + 65536 * round)
    let (i, c): (Double, Double)
    if round % 2 == 0 {
        i = try idmappedCycle(base: base)
        c = try chownCopyCycle(base: base, round: round)
    } else {
        c = try chownCopyCycle(base: base, round: round)
        i = try idmappedCycle(base: base)
    }
    sync()
    if round > 0 {
        idmapped.append(i)
        copied.append(c)
        ratios.append(c / i)
    }
}
let rung =
    (try? mounter.plan(
        spec(
            lowers,
            mapping: .ranges(
                uids: [IDRange(inside: 0, outside: 1, count: 1)],
                gids: [IDRange(inside: 0, outside: 1, count: 1)])), at: merged))?.idMappedLayers?.rawValue ?? "?"
print("| contender | median | |")
print("|---|---:|---:|")
print("| idmapped layers (\(rung)) | \(String(format1(median(idmapped) / 1e6))) ms | 1× |")
print(
    "| chown-copy + mount | \(String(format1(median(copied) / 1e6))) ms | \(format1(median(ratios)))× (median of rounds' ratios) |"
)

func format1(_ value: Double) -> String { String((value * 10).rounded() / 10) }
