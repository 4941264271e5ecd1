import ArgumentParser
import SystemPackage
import UnionMount
import UnionMountBenchSupport
import UnionMountStore

// unionmount-import-bench: applying the layers of a five-layer gzip image, against GNU tar extracting the same
// layers (the floor) and umoci unpacking the same image, in interleaved rounds of one run.
//
//     swift build -c release --product unionmount-import-bench
//     sudo .build/release/unionmount-import-bench [--files 10000] [--rounds 5]
//
// The image is synthetic, of Debian's shape (see ImageTree): ~10,000 files and ~250 MB over five layers, packed
// with `tar --format=pax -czf` (gzip -6). Contenders, each on the same five blobs, page cache warm for the blobs,
// `sync` (untimed) before each so one's writeback does not land on the next:
//
// - floor: `tar -xzf layerN.tar.gz -C dirN` for each layer (GNU tar with gzip -d as its child process);
// - applier: `LayerApplier` (overlay whiteout form) into five plain directories: the same work as the floor;
// - floor+sync: the floor plus `sync -f` of each directory: what the store does on top (it syncfs(2)s a layer
//   before its commit rename);
// - store: `LayerStore.applyLayer` of the chain (staging, application, syncfs, rename);
// - import: `LayerStore.importImage(from: .ociLayout(…))` of the same image as an OCI layout: the whole import
//   (index, manifest and config read and checked, each blob applied with its digest, size and diff id checked,
//   syncfs and commit per layer, the image recorded), into a fresh store;
// - import docker-archive: the same, from `skopeo copy oci:… docker-archive:…` of that layout (skopeo writes the
//   layers uncompressed, so no gunzip: not the floor's work), when `skopeo` is installed;
// - umoci: `umoci unpack` of the same image as an OCI layout (one rootfs with the layers applied in turn, whiteouts
//   as deletions), when `umoci` is installed.
#if canImport(Glibc)
    import Glibc
#endif

struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unionmount-import-bench",
        abstract: "Layer application from gzip tars against GNU tar -x and umoci unpack of the same image.")

    @Option(help: "Files in the image, spread over five layers (40/25/15/12/8 %).")
    var files = 10_000
    @Option(help: "Measured rounds (one more runs first, unmeasured).")
    var rounds = 5
    @Option(help: "The scratch directory's parent (on the disk to measure).")
    var directory = "/tmp"
    @Flag(help: "Leave umoci out even when it is installed.")
    var noUmoci = false

    mutating func validate() throws {
        guard files >= 100, rounds >= 1 else { throw ValidationError("--files ≥ 100 and --rounds ≥ 1") }
    }
}

let options = Options.parseOrExit()
guard geteuid() == 0 else {
    print("unionmount-import-bench: run as root (owners, whiteout devices and trusted.overlay.* need it)")
    exit(1)
}
var template = Array("\(options.directory)/unionmount-import-bench-XXXXXX".utf8CString)
guard mkdtemp(&template) != nil else { fatalError("mkdtemp failed") }
let scratch = FilePath(platformString: template)
defer { shell("rm -rf '\(scratch.string)'") }

progress("making a \(options.files)-file image")
let shares = [40, 25, 15, 12, 8]
let counts = shares.map { options.files * $0 / 100 }
let tree = try ImageTree(in: scratch.appending("tree"), filesPerLayer: counts)
var blobs: [FilePath] = []
for (index, layer) in tree.layers.enumerated() {
    let blob = scratch.appending("layer\(index + 1).tar.gz")
    guard shell("tar --format=pax -czf '\(blob.string)' -C '\(layer.string)' .") else { fatalError("tar -c failed") }
    blobs.append(blob)
}
shell("rm -rf '\(scratch.appending("tree").string)'")
let blobBytes = blobs.reduce(0) { $0 + Int(output("stat -c %s '\($1.string)'"))! }

let applier = LayerApplier(whiteoutFormat: .overlayTrusted)
let out = scratch.appending("out")
try ImageTree.makeDirectories(out)

/// The digests of each blob, from a first application.
var summaries: [LayerArchiveSummary] = []
for (index, blob) in blobs.enumerated() {
    let target = out.appending("probe\(index)")
    try ImageTree.makeDirectories(target)
    summaries.append(try applier.apply(archive: blob, into: target))
}
shell("rm -rf '\(out.string)'/*")

/// Moves what a contender wrote out of the way, to be deleted after the last round: ext4 makes inode allocation
/// slow right after mass deletions (it skips recently freed inodes), which would tax whichever contender runs next.
var retired = 0
let trash = scratch.appending("trash")
try ImageTree.makeDirectories(trash)
@MainActor func retire() {
    retired += 1
    shell("mkdir '\(trash.string)/\(retired)' && mv '\(out.string)'/* '\(trash.string)/\(retired)/'")
}

let umoci = options.noUmoci ? nil : Optional(output("command -v umoci")).flatMap { $0.isEmpty ? nil : $0 }
let layout = scratch.appending("oci")
try writeLayout(layout, blobs: blobs, summaries: summaries)
let skopeo = Optional(output("command -v skopeo")).flatMap { $0.isEmpty ? nil : $0 }
let dockerArchive = scratch.appending("image.tar")
if let skopeo {
    let copy = "'\(skopeo)' copy -q 'oci:\(layout.string):bench' 'docker-archive:\(dockerArchive.string):bench/image:1'"
    guard shell(copy) else { fatalError("skopeo copy failed") }
}

var stores = 0
@MainActor func freshStore() throws -> LayerStore {
    stores += 1
    return try LayerStore.create(at: scratch.appending("store\(stores)"))
}

func timed(_ body: () throws -> Void) rethrows -> Double {
    shell("sync")
    let start = monotonicNanoseconds()
    try body()
    return Double(monotonicNanoseconds() - start) / 1e9
}

var results: [String: [Double]] = [:]
for round in 0...options.rounds {
    progress("round \(round) of \(options.rounds)\(round == 0 ? " (warm-up)" : "")")
    var times: [String: Double] = [:]
    times["floor"] = try timed {
        for (index, blob) in blobs.enumerated() {
            let target = out.appending("tar\(index)")
            try ImageTree.makeDirectories(target)
            guard shell("tar -xzf '\(blob.string)' -C '\(target.string)'") else { fatalError("tar -x failed") }
        }
    }
    retire()
    times["applier"] = try timed {
        for (index, blob) in blobs.enumerated() {
            let target = out.appending("applier\(index)")
            try ImageTree.makeDirectories(target)
            _ = try applier.apply(archive: blob, into: target)
        }
    }
    retire()
    times["floor+sync"] = try timed {
        for (index, blob) in blobs.enumerated() {
            let target = out.appending("tar\(index)")
            try ImageTree.makeDirectories(target)
            guard shell("tar -xzf '\(blob.string)' -C '\(target.string)' && sync -f '\(target.string)'") else {
                fatalError("tar -x failed")
            }
        }
    }
    retire()
    let store = try freshStore()
    times["store"] = try timed {
        var parent: String?
        for (index, blob) in blobs.enumerated() {
            let id = "l\(index + 1)"
            _ = try store.applyLayer(archive: blob, id: id, parent: parent)
            parent = id
        }
    }
    let importStore = try freshStore()
    times["import"] = try timed {
        _ = try importStore.importImage(from: .ociLayout(layout, reference: "bench"), name: "bench/image:1")
    }
    if skopeo != nil {
        let archiveStore = try freshStore()
        times["import-archive"] = try timed {
            _ = try archiveStore.importImage(from: .dockerArchive(dockerArchive, reference: nil))
        }
    }
    if let umoci {
        times["umoci"] = timed {
            guard
                shell(
                    "'\(umoci)' unpack --image '\(layout.string):bench' '\(out.appending("bundle").string)' >/dev/null")
            else { fatalError("umoci unpack failed") }
        }
        retire()
    }
    if round > 0 { for (name, time) in times { results[name, default: []].append(time) } }
}

// Where the store's time goes, once: the application into the staging layer and the commit (syncfs, rename).
var applying = 0.0
var committing = 0.0
do {
    shell("sync")
    let store = try freshStore()
    var parent: String?
    for (index, blob) in blobs.enumerated() {
        let id = "l\(index + 1)"
        let builder = try store.beginLayer(id, parent: parent)
        var start = monotonicNanoseconds()
        _ = try LayerApplier(whiteoutFormat: store.whiteoutFormat).apply(archive: blob, into: builder.directory)
        applying += Double(monotonicNanoseconds() - start) / 1e9
        start = monotonicNanoseconds()
        try builder.commit()
        committing += Double(monotonicNanoseconds() - start) / 1e9
        parent = id
    }
}

let medians = results.mapValues(median)
let seconds = { (name: String) -> Double in medians[name] ?? .nan }
func fixed(_ value: Double, _ digits: Int = 2) -> String {
    let scale = Double((0..<digits).reduce(1) { value, _ in value * 10 })
    return String((value * scale).rounded() / scale)
}
print("# unionmount-import-bench — Linux \(kernelRelease()), \(tree.files) files, \(tree.bytes >> 20) MiB in 5 layers")
print("# (\(blobBytes >> 20) MiB of gzip blobs), \(options.rounds) rounds, medians, scratch on \(options.directory)")
print("")
print("| contender | seconds | ratio | to |")
print("|---|---:|---:|---|")
print("| GNU tar -xzf (floor) | \(fixed(seconds("floor"))) | 1.00 | floor |")
print("| LayerApplier | \(fixed(seconds("applier"))) | \(fixed(seconds("applier") / seconds("floor"), 3)) | floor |")
print(
    "| GNU tar -xzf + sync -f | \(fixed(seconds("floor+sync"))) | \(fixed(seconds("floor+sync") / seconds("floor"), 3)) | floor |"
)
print(
    "| LayerStore.applyLayer | \(fixed(seconds("store"))) | \(fixed(seconds("store") / seconds("floor+sync"), 3)) | floor+sync |"
)
print(
    "| LayerStore.importImage (OCI layout) | \(fixed(seconds("import"))) | \(fixed(seconds("import") / seconds("floor"), 3)) | floor |"
)
print("| importImage / floor+sync | | \(fixed(seconds("import") / seconds("floor+sync"), 3)) | floor+sync |")
if skopeo != nil {
    print(
        "| LayerStore.importImage (docker-archive, uncompressed layers) | \(fixed(seconds("import-archive"))) | \(fixed(seconds("import-archive") / seconds("floor"), 3)) | floor |"
    )
}
if umoci != nil {
    print("| importImage / umoci | | \(fixed(seconds("import") / seconds("umoci"), 3)) | umoci |")
    print("| umoci unpack | \(fixed(seconds("umoci"))) | \(fixed(seconds("umoci") / seconds("floor"), 3)) | floor |")
    print("| LayerApplier vs umoci | | \(fixed(seconds("applier") / seconds("umoci"), 3)) | umoci |")
}
print("")
print(
    "Store breakdown (one run): applying \(fixed(applying)) s, committing (syncfs, records, rename) \(fixed(committing)) s."
)

/// An OCI image layout of the blobs (`oci-layout`, `index.json` with the tag `bench`, manifest, config).
func writeLayout(_ layout: FilePath, blobs: [FilePath], summaries: [LayerArchiveSummary]) throws {
    let directory = layout.appending("blobs/sha256")
    try ImageTree.makeDirectories(directory)
    for (blob, summary) in zip(blobs, summaries) {
        shell("cp '\(blob.string)' '\(directory.appending(summary.digest.hex).string)'")
    }
    let diffIDs = summaries.map { "\"\($0.diffID)\"" }.joined(separator: ",")
    let config =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\(diffIDs)]}}"
    let configDigest = try storeBlob(config, in: directory)
    let layers = summaries.map {
        "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"\($0.digest)\",\"size\":\($0.size)}"
    }.joined(separator: ",")
    let manifest =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":"
        + "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:\(configDigest)\",\"size\":\(config.utf8.count)},"
        + "\"layers\":[\(layers)]}"
    let manifestDigest = try storeBlob(manifest, in: directory)
    let index =
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":"
        + "\"sha256:\(manifestDigest)\",\"size\":\(manifest.utf8.count),\"annotations\":"
        + "{\"org.opencontainers.image.ref.name\":\"bench\"}}]}"
    try ImageTree.write(layout.appending("index.json"), Array(index.utf8)[...])
    try ImageTree.write(layout.appending("oci-layout"), Array("{\"imageLayoutVersion\":\"1.0.0\"}".utf8)[...])
}

/// Writes `text` as a blob named by its SHA-256 (from `sha256sum`) and returns the hex digest.
func storeBlob(_ text: String, in directory: FilePath) throws -> String {
    let temporary = directory.appending("incoming")
    try ImageTree.write(temporary, Array(text.utf8)[...])
    let hex = String(output("sha256sum '\(temporary.string)'").prefix(64))
    shell("mv '\(temporary.string)' '\(directory.appending(hex).string)'")
    return hex
}
