import UnionMountBenchSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The mount table the benchmark reads: a tmpfs on a fresh directory under `/tmp` (inside the private mount
/// namespace) and, below it, enough tmpfs mounts and overlays to bring the namespace's table to
/// ``Configuration/totalMounts`` lines.
///
/// Paths are shaped like a container host's (every mount point 70–80 bytes):
///
/// - lower layers: `<root>/overlay2/l/<26 capitals>` (Docker's short layer links), a pool of ``lowerPoolSize``
///   real directories with a file each; one of them also holds a deep tree (``deepFile``);
/// - overlays: `<root>/overlay2/<20 hex>/{diff,work,merged}`, `lowerdir=` of a few pool layers, one upper and
///   one work directory each;
/// - tmpfs mounts: `<root>/volumes/vol-<6 digits>-<hex>/_data`, `size=64k,mode=755`.
///
/// Every tenth mount made is an overlay, so the overlay lines are spread over the table. Nothing needs escaping.
struct TableFixture {
    /// What to build.
    struct Configuration {
        /// Lines the namespace's mountinfo should have once everything is mounted.
        var totalMounts = 10_000
        /// Overlays among them.
        var overlays = 1_000
        /// Lower layers per overlay.
        var layersPerOverlay = 3
    }

    /// How many lower layer directories the overlays share.
    static let lowerPoolSize = 32

    /// The temporary directory, with the benchmark's tmpfs on it.
    let root: String
    /// Lines the namespace had before the benchmark mounted anything.
    let preexistingMounts: Int
    /// Lines after everything was mounted (should equal the configured total).
    let totalMounts: Int
    /// tmpfs mounts made below ``root`` (besides the one on it).
    let tmpfsCount: Int
    /// Overlay mount points, in the order they were mounted.
    let overlayMountPoints: [String]
    /// Lower layers per overlay.
    let layersPerOverlay: Int
    /// A copy of `/proc/self/mountinfo` with every mount in place, on the benchmark's tmpfs.
    let savedMountinfo: String
    /// Its size in bytes.
    let savedBytes: Int
    /// A file seven directories deep inside one overlay (through its merged view).
    let deepFile: String
    /// The mount point of the overlay holding ``deepFile``.
    let deepOverlay: String
    /// Seconds spent mounting.
    let mountSeconds: Double

    /// Mounts everything; on failure, whatever was mounted is detached again before the error is thrown.
    init(_ configuration: Configuration) throws(BenchmarkError) {
        let before = try countMountinfoLines()
        preexistingMounts = before
        let tmpfsCount = configuration.totalMounts - before - 1 - configuration.overlays
        guard tmpfsCount >= 0, configuration.overlays >= 1 else {
            throw BenchmarkError(
                description: "cannot reach \(configuration.totalMounts) mounts with \(configuration.overlays) "
                    + "overlays: the namespace already has \(before)")
        }
        guard (1...Self.lowerPoolSize).contains(configuration.layersPerOverlay) else {
            throw BenchmarkError(description: "layers per overlay must be 1…\(Self.lowerPoolSize)")
        }
        self.tmpfsCount = tmpfsCount
        layersPerOverlay = configuration.layersPerOverlay

        var template = Array("/tmp/unionmount-table-bench-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw .systemCall("mkdtemp /tmp/unionmount-table-bench-XXXXXX") }
        let root = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        self.root = root
        guard mount("tmpfs", root, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=0755") == 0 else {
            let error = BenchmarkError.systemCall("mount tmpfs on \(root)")
            rmdir(root)
            throw error
        }
        do throws(BenchmarkError) {
            let started = monotonicNanoseconds()
            var random = SplitMix(seed: 0x756e_696f_6e6d_6e74)
            // The lower layer pool.
            try makeDirectory(root + "/overlay2")
            try makeDirectory(root + "/overlay2/l")
            try makeDirectory(root + "/volumes")
            var pool: [String] = []
            for index in 0..<Self.lowerPoolSize {
                let name = String((0..<26).map { _ in Character(Unicode.Scalar(UInt8(65 + random.next() % 26))) })
                let layer = root + "/overlay2/l/" + name
                try makeDirectory(layer)
                try writeFile(layer + "/layer-\(index)", contents: "layer \(index)\n")
                pool.append(layer)
            }
            let deepRelative = "usr/lib/python3/dist-packages/unionmount_bench/data/locale"
            var directory = pool[0]
            for component in deepRelative.split(separator: "/") {
                directory += "/" + component
                try makeDirectory(directory)
            }
            try writeFile(directory + "/messages.mo", contents: "deep\n")

            // Overlays and tmpfs mounts, every tenth an overlay.
            let deepIndex = (configuration.overlays / 2) / Self.lowerPoolSize * Self.lowerPoolSize
            var overlays: [String] = []
            overlays.reserveCapacity(configuration.overlays)
            var tmpfsMade = 0
            var step = 0
            while overlays.count < configuration.overlays || tmpfsMade < tmpfsCount {
                step += 1
                let overlayTurn = step % 10 == 0 || tmpfsMade == tmpfsCount
                if overlayTurn && overlays.count < configuration.overlays {
                    let index = overlays.count
                    let directory = root + "/overlay2/" + hex(random.next(), digits: 16) + hex(random.next(), digits: 4)
                    try makeDirectory(directory)
                    for name in ["diff", "work", "merged"] { try makeDirectory(directory + "/" + name) }
                    // Consecutive pool layers, so an overlay whose index is a multiple of the pool size has pool[0]
                    // on top.
                    let lowers = (0..<configuration.layersPerOverlay).map {
                        pool[(index + $0) % Self.lowerPoolSize]
                    }
                    let options =
                        "lowerdir=" + lowers.joined(separator: ":") + ",upperdir=\(directory)/diff,workdir="
                        + "\(directory)/work"
                    guard mount("overlay", directory + "/merged", "overlay", 0, options) == 0 else {
                        throw BenchmarkError.systemCall("mount overlay \(index) on \(directory)/merged")
                    }
                    overlays.append(directory + "/merged")
                } else {
                    // Pad the volume name so the mount point is 80 bytes (given the 34-byte root).
                    let prefix = root + "/volumes/vol-" + decimal(tmpfsMade, digits: 6) + "-"
                    let padding = max(8, 80 - prefix.utf8.count - "/_data".utf8.count)
                    var name = prefix
                    while name.utf8.count - prefix.utf8.count < padding {
                        name += hex(random.next(), digits: min(16, padding - (name.utf8.count - prefix.utf8.count)))
                    }
                    try makeDirectory(name)
                    let target = name + "/_data"
                    try makeDirectory(target)
                    guard mount("tmpfs", target, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "size=64k,mode=755") == 0 else {
                        throw BenchmarkError.systemCall("mount tmpfs \(tmpfsMade) on \(target)")
                    }
                    tmpfsMade += 1
                }
            }
            mountSeconds = Double(monotonicNanoseconds() - started) / 1e9
            overlayMountPoints = overlays
            deepOverlay = overlays[deepIndex]
            deepFile = overlays[deepIndex] + "/" + deepRelative + "/messages.mo"
            guard access(deepFile, R_OK) == 0 else {
                throw BenchmarkError.systemCall("the merged view lacks \(deepFile)")
            }

            // The saved copy.
            guard let table = readWholeFile("/proc/self/mountinfo") else {
                throw BenchmarkError.systemCall("read /proc/self/mountinfo")
            }
            totalMounts = table.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            savedMountinfo = root + "/mountinfo.saved"
            savedBytes = table.count
            try writeFile(savedMountinfo, bytes: table)
        } catch {
            _ = umount2(root, CInt(MNT_DETACH))
            rmdir(root)
            throw error
        }
    }

    /// Detaches the benchmark's tmpfs and everything mounted below it in one lazy, recursive unmount, then checks
    /// that nothing of it is left in the table and that the table is back to its size before, and removes the
    /// (then empty) directory.
    func tearDown() throws(BenchmarkError) {
        guard umount2(root, CInt(MNT_DETACH)) == 0 else { throw .systemCall("detach \(root)") }
        let left = try mountinfoLines().filter { mountPointOf($0).map { isAtOrBelow($0, root) } ?? false }
        guard left.isEmpty else {
            throw BenchmarkError(description: "\(left.count) mounts below \(root) are still in the table")
        }
        let after = try countMountinfoLines()
        guard after == preexistingMounts else {
            throw BenchmarkError(description: "the table has \(after) lines, \(preexistingMounts) before the benchmark")
        }
        guard rmdir(root) == 0 else { throw .systemCall("rmdir \(root)") }
    }
}

/// Whether `path` is `directory` or below it, by components.
private func isAtOrBelow(_ path: String, _ directory: String) -> Bool {
    path == directory || path.hasPrefix(directory + "/")
}

/// The lines of `/proc/self/mountinfo`.
private func mountinfoLines() throws(BenchmarkError) -> [ArraySlice<UInt8>] {
    guard let bytes = readWholeFile("/proc/self/mountinfo") else { throw .systemCall("read /proc/self/mountinfo") }
    return bytes.split(separator: UInt8(ascii: "\n"))
}

/// How many lines `/proc/self/mountinfo` has.
func countMountinfoLines() throws(BenchmarkError) -> Int { try mountinfoLines().count }

/// Field 5 of a mountinfo line, undecoded (the benchmark's paths need no escaping).
private func mountPointOf(_ line: ArraySlice<UInt8>) -> String? {
    let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: false)
    return fields.count >= 5 ? String(decoding: fields[4], as: UTF8.self) : nil
}

/// A small deterministic generator for names (SplitMix64).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `value`'s low `digits` hexadecimal digits.
private func hex(_ value: UInt64, digits: Int) -> String {
    let text = String(value, radix: 16)
    let padded = String(repeating: "0", count: max(0, 16 - text.count)) + text
    return String(padded.suffix(digits))
}

/// `value` as `digits` decimal digits, zero-padded.
private func decimal(_ value: Int, digits: Int) -> String {
    let text = String(value)
    return String(repeating: "0", count: max(0, digits - text.count)) + text
}

private func makeDirectory(_ path: String) throws(BenchmarkError) {
    guard mkdir(path, 0o755) == 0 else { throw .systemCall("mkdir \(path)") }
}

private func writeFile(_ path: String, contents: String) throws(BenchmarkError) {
    try writeFile(path, bytes: Array(contents.utf8))
}

private func writeFile(_ path: String, bytes: [UInt8]) throws(BenchmarkError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw .systemCall("create \(path)") }
    defer { close(fd) }
    var written = 0
    while written < bytes.count {
        let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { throw .systemCall("write \(path)") }
        written += count
    }
}
