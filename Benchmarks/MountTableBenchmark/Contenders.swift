import CLibMount
import SystemPackage
import UnionMount
import UnionMountBenchSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A target of the issue: a contender's time against a reference's (the floor or libmount).
struct Target {
    enum Kind {
        /// contender time ≤ limit × reference time.
        case atMostTimes(Double)
        /// reference time ≥ limit × contender time.
        case atLeastFaster(Double)
    }

    var contender: String
    var reference: String
    var kind: Kind
}

/// A set of contenders measured together, interleaved, against a floor.
struct Group {
    /// A short key (`parse`, `list`, `lookup`).
    var key: String
    /// A heading.
    var title: String
    /// The contender every ratio is taken against.
    var floor: String
    /// A second reference for a "× faster than" column (libmount), if any.
    var reference: String?
    var contenders: [Contender]
    var targets: [Target]
}

/// A buffer reused by every call of a floor, so the floor is read(2) and nothing else.
final class ReadBuffer {
    let base: UnsafeMutableRawPointer
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)  // touch every page once
    }

    deinit { base.deallocate() }

    /// open, read(2) until end of file (procfs included), close; returns the bytes read.
    func read(_ path: String) throws(BenchmarkError) -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .systemCall("open \(path)") }
        defer { close(fd) }
        var total = 0
        while true {
            guard total < capacity else { throw BenchmarkError(description: "\(path) exceeds \(capacity) bytes") }
            let count = systemRead(fd, base + total, capacity - total)
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw .systemCall("read \(path)") }
            if count == 0 { return total }
            total += count
        }
    }
}

/// open, fstat, malloc(size), read(2), close, free: what any reader of a regular file must do at least.
func readIntoFreshBuffer(_ path: String) throws(BenchmarkError) -> Int {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .systemCall("open \(path)") }
    defer { close(fd) }
    var status = stat()
    guard fstat(fd, &status) == 0 else { throw .systemCall("fstat \(path)") }
    let capacity = Int(status.st_size) + 1
    guard let buffer = malloc(capacity) else { throw .systemCall("malloc") }
    defer { free(buffer) }
    var total = 0
    while total < capacity {
        let count = systemRead(fd, buffer + total, capacity - total)
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { throw .systemCall("read \(path)") }
        if count == 0 { break }
        total += count
    }
    return total
}

/// libmount: `mnt_new_table`, `mnt_table_parse_file`, `mnt_unref_table`; returns the entries parsed.
func libmountParse(_ path: String) throws(BenchmarkError) -> Int {
    guard let table = mnt_new_table() else { throw .systemCall("mnt_new_table") }
    defer { mnt_unref_table(table) }
    let status = mnt_table_parse_file(table, path)
    guard status == 0 else { throw .systemCall("mnt_table_parse_file \(path)", errno: -status) }
    return Int(mnt_table_get_nents(table))
}

/// Runs a library call, turning its error into a ``BenchmarkError``.
func library<T>(_ what: String, _ body: () throws(UnionMountError) -> T) throws(BenchmarkError) -> T {
    do {
        return try body()
    } catch {
        throw BenchmarkError(description: "\(what): \(error)")
    }
}

let liveMountinfo = "/proc/self/mountinfo"

/// (a) Parsing a saved copy of the table.
func parseGroup(_ fixture: TableFixture) -> Group {
    let path = fixture.savedMountinfo
    let filePath = FilePath(path)
    let buffer = ReadBuffer(capacity: fixture.savedBytes * 2 + 4096)
    let inMemory = readWholeFile(path) ?? []
    // The mount point and root of every line as bytes, decoded once here, outside any timing.
    let pathBytes: [[UInt8]] =
        ((try? MountTable.entries(source: .file(filePath))) ?? []).flatMap {
            [Array($0.mountPoint.string.utf8), Array($0.root.string.utf8)]
        }
    return Group(
        key: "parse", title: "(a) Parsing a saved copy of the mountinfo (\(fixture.totalMounts) lines, on tmpfs)",
        floor: "read",
        reference: "libmount",
        contenders: [
            Contender(name: "read", label: "read() into a reused buffer (floor)") { () throws(BenchmarkError) in
                try buffer.read(path)
            },
            Contender(name: "read-control", label: "the same read() again (noise control)") {
                () throws(BenchmarkError) in try buffer.read(path)
            },
            Contender(name: "read-fresh", label: "open+fstat+malloc+read()+free") { () throws(BenchmarkError) in
                try readIntoFreshBuffer(path)
            },
            Contender(name: "libmount", label: "libmount mnt_new_table+mnt_table_parse_file+mnt_unref_table") {
                () throws(BenchmarkError) in try libmountParse(path)
            },
            Contender(name: "parse", label: "MountTable.entries(source: .file(saved)) → [MountEntry]") {
                () throws(BenchmarkError) in
                try library("MountTable.entries") { () throws(UnionMountError) in
                    try MountTable.entries(source: .file(filePath)).count
                }
            },
            Contender(
                name: "parse-touch",
                label: "MountTable.entries(source: .file(saved)) + mountPoint, filesystemType of each"
            ) {
                () throws(BenchmarkError) in
                let entries = try library("MountTable.entries") { () throws(UnionMountError) in
                    try MountTable.entries(source: .file(filePath))
                }
                var total = 0
                for entry in entries {
                    let mountPoint = entry.mountPoint
                    let type = entry.filesystemType
                    total &+= (mountPoint.isAbsolute ? 1 : 0) &+ type.utf8.count
                }
                return total
            },
            Contender(
                name: "parse-every-field", label: "MountTable.entries(source: .file(saved)) + every field of each"
            ) {
                () throws(BenchmarkError) in
                let entries = try library("MountTable.entries") { () throws(UnionMountError) in
                    try MountTable.entries(source: .file(filePath))
                }
                var total = 0
                for entry in entries {
                    total &+= entry.mountID &+ entry.parentID &+ Int(entry.major) &+ Int(entry.minor)
                    total &+= (entry.root.isAbsolute ? 1 : 0) &+ (entry.mountPoint.isAbsolute ? 1 : 0)
                    total &+= entry.mountOptions.count &+ entry.optionalFields.count &+ entry.filesystemType.utf8.count
                    total &+= entry.sourceBytes.count &+ entry.superOptions.count
                }
                return total
            },
            // What any parser that hands out `FilePath` values pays for them, whatever else it does: swift-system's
            // public initializer (String, then separator normalization) for each line's mount point and root.
            Contender(
                name: "filepaths-only", label: "FilePath(String) of every mount point and root, nothing parsed"
            ) {
                () throws(BenchmarkError) in
                var total = 0
                for bytes in pathBytes { total &+= FilePath(String(decoding: bytes, as: UTF8.self)).length }
                return total
            },
            Contender(name: "parse-memory", label: "MountTable.parse(bytes already in memory), no read") {
                () throws(BenchmarkError) in
                try library("MountTable.parse") { () throws(UnionMountError) in try MountTable.parse(inMemory).count }
            },
        ],
        targets: [
            Target(contender: "parse", reference: "libmount", kind: .atLeastFaster(10)),
            Target(contender: "parse", reference: "read", kind: .atMostTimes(3)),
            Target(contender: "parse-every-field", reference: "libmount", kind: .atLeastFaster(10)),
            Target(contender: "parse-every-field", reference: "read", kind: .atMostTimes(3)),
        ])
}

/// (b) Listing the live union mounts with their branches.
func listGroup(_ fixture: TableFixture) -> Group {
    let buffer = ReadBuffer(capacity: max(fixture.savedBytes * 4, 1 << 20))
    func reports(_ source: MountTable.Source) -> () throws(BenchmarkError) -> Int {
        { () throws(BenchmarkError) in
            try library("unionMountReports(\(source))") { () throws(UnionMountError) in
                try MountTable.reports(source: source).count
            }
        }
    }
    return Group(
        key: "list", title: "(b) Listing the live union mounts with their branches", floor: "read-live",
        reference: nil,
        contenders: [
            Contender(name: "read-live", label: "read() of /proc/self/mountinfo into a reused buffer (floor)") {
                () throws(BenchmarkError) in try buffer.read(liveMountinfo)
            },
            Contender(name: "read-live-control", label: "the same read() again (noise control)") {
                () throws(BenchmarkError) in try buffer.read(liveMountinfo)
            },
            Contender(name: "list", label: "MountTable.reports()") { () throws(BenchmarkError) in
                try library("MountTable.reports") { () throws(UnionMountError) in try MountTable.reports().count }
            },
            Contender(
                name: "reports-auto", label: "MountTable.reports(source: .automatic)",
                run: reports(.automatic)),
            Contender(
                name: "reports-statmount", label: "MountTable.reports(source: .statmount)",
                run: reports(.statmount)),
            Contender(
                name: "reports-mountinfo", label: "MountTable.reports(source: .mountinfo)",
                run: reports(.mountinfo)),
            Contender(
                name: "mountinfo-live", label: "MountTable.entries(source: .mountinfo) of the live table, no reports"
            ) {
                () throws(BenchmarkError) in
                try library("MountTable.entries") { () throws(UnionMountError) in
                    try MountTable.entries(source: .mountinfo).count
                }
            },
            Contender(name: "libmount-live", label: "libmount mnt_table_parse_file(/proc/self/mountinfo)") {
                () throws(BenchmarkError) in try libmountParse(liveMountinfo)
            },
        ],
        targets: [
            Target(contender: "list", reference: "read-live", kind: .atMostTimes(1.15)),
            Target(contender: "reports-auto", reference: "read-live", kind: .atMostTimes(1.15)),
        ])
}

/// (c) Finding the mount that holds one path.
func lookupGroup(_ fixture: TableFixture) -> Group {
    let buffer = ReadBuffer(capacity: max(fixture.savedBytes * 4, 1 << 20))
    let deep = FilePath(fixture.deepFile)
    func containing(_ source: MountTable.Source) -> () throws(BenchmarkError) -> Int {
        { () throws(BenchmarkError) in
            try library("mount(containing:)") { () throws(UnionMountError) in
                try MountTable.entry(containing: deep, source: source).mountID
            }
        }
    }
    return Group(
        key: "lookup", title: "(c) Finding the mount that holds one file deep inside an overlay", floor: "read-live",
        reference: nil,
        contenders: [
            Contender(name: "read-live", label: "read() of /proc/self/mountinfo into a reused buffer (floor)") {
                () throws(BenchmarkError) in try buffer.read(liveMountinfo)
            },
            Contender(
                name: "containing-auto", label: "MountTable.entry(containing:) (.automatic)",
                run: containing(.automatic)),
            Contender(
                name: "containing-mountinfo", label: "MountTable.entry(containing:, source: .mountinfo)",
                run: containing(.mountinfo)),
        ],
        targets: [Target(contender: "containing-auto", reference: "read-live", kind: .atLeastFaster(100))])
}

/// Checks, once before timing, that every contender computes what it should on this table.
func verifyAnswers(_ fixture: TableFixture) throws(BenchmarkError) {
    let saved = FilePath(fixture.savedMountinfo)
    let parsed = try library("MountTable.entries(saved)") { () throws(UnionMountError) in
        try MountTable.entries(source: .file(saved))
    }
    let libmountCount = try libmountParse(fixture.savedMountinfo)
    guard parsed.count == fixture.totalMounts, libmountCount == fixture.totalMounts else {
        throw BenchmarkError(
            description: "saved table: \(parsed.count) entries parsed, \(libmountCount) by libmount, "
                + "\(fixture.totalMounts) lines")
    }
    let listed = try library("MountTable.reports") { () throws(UnionMountError) in try MountTable.reports() }
    guard listed.count == fixture.overlayMountPoints.count,
        listed.map(\.mountPoint) == fixture.overlayMountPoints.map({ FilePath($0) }),
        listed.allSatisfy({ report in
            report.branches.count == fixture.layersPerOverlay + 1 && report.branches.allSatisfy(\.exists)
        })
    else {
        throw BenchmarkError(description: "MountTable.reports() found \(listed.count) overlays, or not their branches")
    }
    for source in [MountTable.Source.automatic, .statmount, .mountinfo] {
        let reports = try library("unionMountReports(\(source))") { () throws(UnionMountError) in
            try MountTable.reports(source: source)
        }
        guard reports == listed else {
            throw BenchmarkError(description: "unionMountReports(source: \(source)) differs from MountTable.reports()")
        }
    }
    for source in [MountTable.Source.automatic, .mountinfo] {
        let entry = try library("mount(containing:)") { () throws(UnionMountError) in
            try MountTable.entry(containing: FilePath(fixture.deepFile), source: source)
        }
        guard entry.mountPoint == FilePath(fixture.deepOverlay), entry.filesystemType == "overlay" else {
            throw BenchmarkError(
                description:
                    "mount(containing:, source: \(source)) found \(entry.mountPoint), not \(fixture.deepOverlay)")
        }
    }
}

/// read(2), named apart from ``ReadBuffer/read(_:)``.
@inline(__always)
func systemRead(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { read(fd, buffer, count) }
