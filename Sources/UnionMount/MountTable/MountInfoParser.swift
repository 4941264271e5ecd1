import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    #error("UnionMount supports Linux only")
#endif

/// What a mount table parser (``MountInfo`` for `/proc/self/mountinfo`, ``ProcMounts`` for `/proc/mounts` and
/// fstab-shaped files) does with a line it cannot parse.
public enum MalformedLinePolicy: Sendable, Hashable {
    /// Stop and throw a ``UnionMountError`` with code ``UnionMountError/Code/malformedInput`` naming the file
    /// and the 1-based line.
    case `throw`
    /// Leave the line out and go on. To get the reasons too, call `parseSkippingMalformed` or
    /// `readSkippingMalformed` instead.
    case skip
}

/// The parser of `/proc/self/mountinfo` (proc(5); `fs/proc_namespace.c` `show_mountinfo`).
///
/// The file is read as bytes, not text. Lines are split on `\n` with no length limit (a 300-layer overlay
/// line is about 18 KB), fields on single spaces (so an empty source field, printed as two spaces, survives),
/// the optional fields run up to the first field equal to `-` after field 6, and exactly three fields follow
/// it. `\ooo` escapes are decoded per field after splitting, when a field is read (see ``MountEntry``).
/// Empty lines are ignored.
///
/// A line is malformed when it has fewer than 10 fields, no `-` separator, other than 3 fields after it, an
/// ID or device number that is not a plain decimal number of its type (no sign, no overflow), or an empty
/// root, mount point or filesystem type.
public enum MountInfo {
    /// The mountinfo file of the calling process.
    public static let defaultPath: FilePath = "/proc/self/mountinfo"

    /// Parses the contents of a `/proc/<pid>/mountinfo` file.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - malformedLines: Whether a malformed line throws or is left out.
    ///   - inputName: The file's name for error messages.
    /// - Returns: The entries, in file order.
    /// - Throws: ``UnionMountError/Code/malformedInput`` for the first malformed line, with
    ///   ``UnionMountError/line`` set, unless `malformedLines` is ``MalformedLinePolicy/skip``.
    public static func parse(
        _ bytes: some Collection<UInt8>,
        malformedLines: MalformedLinePolicy = .throw,
        inputName: String = "mountinfo"
    ) throws(UnionMountError) -> [MountEntry] {
        try MountTableParser.run(
            MountTableStorage(contiguousArray(bytes)), format: .mountinfo, inputName: inputName,
            policy: malformedLines
        ).entries
    }

    /// Parses the contents of a `/proc/<pid>/mountinfo` file, leaving out malformed lines and reporting why.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - inputName: The file's name for error messages.
    /// - Returns: The entries of the well-formed lines, in file order, and one error per skipped line.
    public static func parseSkippingMalformed(
        _ bytes: some Collection<UInt8>, inputName: String = "mountinfo"
    ) -> (entries: [MountEntry], skipped: [UnionMountError]) {
        // The skip policy never throws.
        let result = try? MountTableParser.run(
            MountTableStorage(contiguousArray(bytes)), format: .mountinfo, inputName: inputName, policy: .skip)
        return result.map { ($0.entries, $0.skipped) } ?? ([], [])
    }

    /// Reads and parses a mountinfo file, `/proc/self/mountinfo` by default.
    ///
    /// The file is read whole with read(2) into a growing buffer (one snapshot as far as the kernel allows),
    /// retrying on `EINTR`. Prefer `/proc/thread-self/mountinfo` when threads may be in different mount
    /// namespaces.
    ///
    /// - Parameters:
    ///   - path: The file to read.
    ///   - malformedLines: Whether a malformed line throws or is left out.
    /// - Returns: The entries, in file order.
    /// - Throws: ``UnionMountError/Code/systemCallFailed`` naming the file and the failed `open` or `read`,
    ///   or ``UnionMountError/Code/malformedInput`` as ``parse(_:malformedLines:inputName:)`` does.
    public static func read(
        _ path: FilePath = defaultPath, malformedLines: MalformedLinePolicy = .throw
    ) throws(UnionMountError) -> [MountEntry] {
        let bytes = try MountTableFile.readAll(path)
        return try MountTableParser.run(
            MountTableStorage(bytes), format: .mountinfo, inputName: path.readable, policy: malformedLines
        ).entries
    }

    /// Reads and parses a mountinfo file, leaving out malformed lines and reporting why.
    ///
    /// - Parameter path: The file to read, `/proc/self/mountinfo` by default.
    /// - Returns: The entries of the well-formed lines and one error per skipped line.
    /// - Throws: ``UnionMountError/Code/systemCallFailed`` when the file cannot be opened or read.
    public static func readSkippingMalformed(
        _ path: FilePath = defaultPath
    ) throws(UnionMountError) -> (entries: [MountEntry], skipped: [UnionMountError]) {
        let bytes = try MountTableFile.readAll(path)
        let result = try MountTableParser.run(
            MountTableStorage(bytes), format: .mountinfo, inputName: path.readable, policy: .skip)
        return (result.entries, result.skipped)
    }
}

/// The parser of `/proc/mounts` (`/proc/<pid>/mounts`, `fs/proc_namespace.c` `show_vfsmnt`) and of any
/// fstab-shaped file (fstab(5), the old `/etc/mtab`).
///
/// A line is `source mountPoint type [options [freq [passno]]]`. Fields are separated by runs of spaces and
/// tabs; blank lines and lines whose first non-blank byte is `#` are skipped; a trailing `\r` is dropped;
/// `freq` and `passno` must be plain decimal numbers when present. `\ooo` escapes are decoded per field (the
/// options per option, after splitting on raw commas). Entries have ``MountEntry/Origin-swift.enum/mounts``
/// origin: no IDs, no device number, root `/`, and the one options field as both ``MountEntry/mountOptions``
/// and ``MountEntry/superOptions``.
///
/// The kernel prints an empty source as an empty field, which blank-run splitting cannot see (libmount has
/// the same limit); `/proc/self/mountinfo` keeps it, so prefer ``MountInfo``.
public enum ProcMounts {
    /// The mounts file of the calling process.
    public static let defaultPath: FilePath = "/proc/self/mounts"

    /// Parses the contents of `/proc/mounts` or an fstab-shaped file.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - malformedLines: Whether a malformed line throws or is left out.
    ///   - inputName: The file's name for error messages.
    /// - Returns: The entries, in file order.
    /// - Throws: ``UnionMountError/Code/malformedInput`` for the first malformed line (fewer than 3 or more than
    ///   6 fields, a non-numeric `freq`/`passno`), unless `malformedLines` is ``MalformedLinePolicy/skip``.
    public static func parse(
        _ bytes: some Collection<UInt8>,
        malformedLines: MalformedLinePolicy = .throw,
        inputName: String = "mounts"
    ) throws(UnionMountError) -> [MountEntry] {
        try MountTableParser.run(
            MountTableStorage(contiguousArray(bytes)), format: .mounts, inputName: inputName, policy: malformedLines
        ).entries
    }

    /// Parses the contents of `/proc/mounts` or an fstab-shaped file, leaving out malformed lines and
    /// reporting why.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - inputName: The file's name for error messages.
    /// - Returns: The entries of the well-formed lines and one error per skipped line.
    public static func parseSkippingMalformed(
        _ bytes: some Collection<UInt8>, inputName: String = "mounts"
    ) -> (entries: [MountEntry], skipped: [UnionMountError]) {
        let result = try? MountTableParser.run(
            MountTableStorage(contiguousArray(bytes)), format: .mounts, inputName: inputName, policy: .skip)
        return result.map { ($0.entries, $0.skipped) } ?? ([], [])
    }

    /// Reads and parses `/proc/self/mounts` (by default) or an fstab-shaped file.
    ///
    /// - Parameters:
    ///   - path: The file to read.
    ///   - malformedLines: Whether a malformed line throws or is left out.
    /// - Returns: The entries, in file order.
    /// - Throws: ``UnionMountError/Code/systemCallFailed`` naming the file and the failed `open` or `read`,
    ///   or ``UnionMountError/Code/malformedInput`` as ``parse(_:malformedLines:inputName:)`` does.
    public static func read(
        _ path: FilePath = defaultPath, malformedLines: MalformedLinePolicy = .throw
    ) throws(UnionMountError) -> [MountEntry] {
        let bytes = try MountTableFile.readAll(path)
        return try MountTableParser.run(
            MountTableStorage(bytes), format: .mounts, inputName: path.readable, policy: malformedLines
        ).entries
    }

    /// Reads and parses `/proc/self/mounts` (by default) or an fstab-shaped file, leaving out malformed lines
    /// and reporting why.
    ///
    /// - Parameter path: The file to read.
    /// - Returns: The entries of the well-formed lines and one error per skipped line.
    /// - Throws: ``UnionMountError/Code/systemCallFailed`` when the file cannot be opened or read.
    public static func readSkippingMalformed(
        _ path: FilePath = defaultPath
    ) throws(UnionMountError) -> (entries: [MountEntry], skipped: [UnionMountError]) {
        let bytes = try MountTableFile.readAll(path)
        let result = try MountTableParser.run(
            MountTableStorage(bytes), format: .mounts, inputName: path.readable, policy: .skip)
        return (result.entries, result.skipped)
    }
}

/// The bytes of any collection as an array, copied at most once.
private func contiguousArray(_ bytes: some Collection<UInt8>) -> [UInt8] {
    if let array = bytes as? [UInt8] { return array }
    if let copy = bytes.withContiguousStorageIfAvailable({ Array($0) }) { return copy }
    return Array(bytes)
}

// MARK: - Line parsing

/// The line loop of ``MountInfo`` and ``ProcMounts`` (mountinfo has a faster one of its own:
/// ``runMountInfo(_:inputName:policy:)``).
enum MountTableParser {
    enum Format { case mountinfo, mounts }

    /// The outcome of one line.
    enum Line {
        case entry(MountEntry)
        case ignored
        case malformed(String)
    }

    static let newline = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")

    static func run(
        _ storage: MountTableStorage, format: Format, inputName: String, policy: MalformedLinePolicy
    ) throws(UnionMountError) -> (entries: [MountEntry], skipped: [UnionMountError]) {
        if format == .mountinfo { return try runMountInfo(storage, inputName: inputName, policy: policy) }
        var entries: [MountEntry] = []
        var skipped: [UnionMountError] = []
        storage.bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let total = buffer.count
            entries.reserveCapacity(total / 128 + 1)
            var position = 0
            var lineNumber = 0
            while position < total {
                lineNumber += 1
                let lineStart = position
                let lineEnd: Int
                if let hit = memchr(base + lineStart, Int32(newline), total - lineStart) {
                    lineEnd = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - base
                } else {
                    lineEnd = total
                }
                position = lineEnd + 1
                let result: Line
                if lineEnd - lineStart > Int(UInt32.max) {
                    result = .malformed("line is longer than 4 GiB")
                } else {
                    switch format {
                    case .mountinfo:
                        result = parseMountInfoLine(base, start: lineStart, end: lineEnd, storage: storage)
                    case .mounts:
                        result = parseMountsLine(base, start: lineStart, end: lineEnd, storage: storage)
                    }
                }
                switch result {
                case .entry(let entry):
                    entries.append(entry)
                case .ignored:
                    continue
                case .malformed(let reason):
                    let excerpt = excerptOf(UnsafeBufferPointer(start: base + lineStart, count: lineEnd - lineStart))
                    skipped.append(.malformed("\(reason): \(excerpt)", input: inputName, line: lineNumber))
                    if policy == .throw { return }
                }
            }
        }
        if policy == .throw, let first = skipped.first { throw first }
        return (entries, skipped)
    }

    // MARK: mountinfo: one pass per line

    /// How many spaces of a line the fast path records; a line with more (fields) goes to the general parser.
    static let recordedSpaces = 32

    /// The mountinfo line loop.
    ///
    /// Each line is read once by `CUnionMount_scan_line` (the shim's `scan.c`: AVX2 or SSE2 blocks on x86-64, a
    /// byte loop elsewhere), which yields its end and the positions of its spaces with no per-field search. A line whose fields are well-formed in the ordinary way (see
    /// ``entry(_:start:end:total:spaces:count:storage:)``) becomes an entry right there; any other line, empty or
    /// malformed or merely unusual, is handed to ``parseMountInfoLine(_:start:end:storage:)``, the general
    /// parser, which decides and words the error exactly as it always did.
    static func runMountInfo(
        _ storage: MountTableStorage, inputName: String, policy: MalformedLinePolicy
    ) throws(UnionMountError) -> (entries: [MountEntry], skipped: [UnionMountError]) {
        var entries: [MountEntry] = []
        var skipped: [UnionMountError] = []
        storage.bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let total = buffer.count
            entries.reserveCapacity(total / 128 + 1)
            withUnsafeTemporaryAllocation(of: Int.self, capacity: recordedSpaces) { spacesBuffer in
                guard let spaces = spacesBuffer.baseAddress else { return }
                var position = 0
                var lineNumber = 0
                while position < total {
                    lineNumber += 1
                    let lineStart = position
                    var count = 0
                    let lineEnd = CUnionMount_scan_line(base, lineStart, total, spaces, recordedSpaces, &count)
                    position = lineEnd + 1
                    if count <= recordedSpaces, lineEnd - lineStart <= Int(UInt32.max),
                        let entry = entry(
                            base, start: lineStart, end: lineEnd, total: total, spaces: spaces, count: count,
                            storage: storage)
                    {
                        entries.append(entry)
                        continue
                    }
                    let result: Line
                    if lineEnd - lineStart > Int(UInt32.max) {
                        result = .malformed("line is longer than 4 GiB")
                    } else {
                        result = parseMountInfoLine(base, start: lineStart, end: lineEnd, storage: storage)
                    }
                    switch result {
                    case .entry(let entry):
                        entries.append(entry)
                    case .ignored:
                        continue
                    case .malformed(let reason):
                        let excerpt = excerptOf(
                            UnsafeBufferPointer(start: base + lineStart, count: lineEnd - lineStart))
                        skipped.append(.malformed("\(reason): \(excerpt)", input: inputName, line: lineNumber))
                        if policy == .throw { return }
                    }
                }
            }
        }
        if policy == .throw, let first = skipped.first { throw first }
        return (entries, skipped)
    }

    /// The value of the decimal digits in `[from, to)`, or nil when there are none, more than `maximumDigits`
    /// (chosen so the value cannot overflow) or a byte that is not a digit. Up to 8 digits are converted as one
    /// word, without a loop, when 8 bytes can be read at `from` (`from + 8 <= total`).
    @inline(__always)
    static func decimal(
        _ base: UnsafePointer<UInt8>, from: Int, to: Int, total: Int, maximumDigits: Int
    ) -> Int? {
        let length = to &- from
        guard length > 0, length <= maximumDigits else { return nil }
        if length <= 8 && from &+ 8 <= total {
            // The digits moved to the high end of the word, '0's before them: "123" reads as "00000123".
            let word = UInt64(littleEndian: UnsafeRawPointer(base + from).loadUnaligned(as: UInt64.self))
            let shift = UInt64(truncatingIfNeeded: (8 &- length) &* 8)
            let zeros: UInt64 = 0x3030_3030_3030_3030
            let text = (word &<< shift) | (zeros & ~(UInt64.max &<< shift))
            // Every byte in 0x30…0x39: high nibble 3, and still 3 after adding 6.
            let nibbles: UInt64 = 0xF0F0_F0F0_F0F0_F0F0
            guard (text & nibbles) | (((text &+ 0x0606_0606_0606_0606) & nibbles) &>> 4) == 0x3333_3333_3333_3333
            else { return nil }
            var value = text &- zeros
            value = ((value &* 10) &+ (value &>> 8)) & 0x00FF_00FF_00FF_00FF
            value = ((value &* 100) &+ (value &>> 16)) & 0x0000_FFFF_0000_FFFF
            value = ((value &* 10000) &+ (value &>> 32)) & 0xFFFF_FFFF
            return Int(truncatingIfNeeded: value)
        }
        var value = 0
        var largest: UInt8 = 0
        var index = from
        while index < to {
            let digit = base[index] &- UInt8(ascii: "0")
            largest = max(largest, digit)
            value = value &* 10 &+ Int(digit)
            index &+= 1
        }
        return largest < 10 ? value : nil
    }

    /// The high bit of every byte of `word` that is zero, exactly (no borrow between bytes).
    @inline(__always)
    static func zeroBytes(_ word: UInt64) -> UInt64 {
        let low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        return ~(((word & low7) &+ low7) | word | low7)
    }

    /// The first colon in `[from, to)`, or `to`.
    @inline(__always)
    static func firstColon(_ base: UnsafePointer<UInt8>, from: Int, to: Int, total: Int) -> Int {
        if from &+ 8 <= total {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + from).loadUnaligned(as: UInt64.self))
            let colons = zeroBytes(word ^ 0x3A3A_3A3A_3A3A_3A3A)
            if colons != 0 { return min(from &+ (colons.trailingZeroBitCount &>> 3), to) }
            if to &- from <= 8 { return to }
        }
        var index = from
        while index < to && base[index] != UInt8(ascii: ":") { index &+= 1 }
        return index
    }

    /// The entry of a mountinfo line `[start, end)` whose `count` spaces (all recorded) are at `spaces`, when the
    /// line is well-formed in the ordinary way: decimal IDs of at most 18 digits and device numbers of at most 9
    /// (so nothing can overflow), non-empty root, mount point and filesystem type, and the first field after
    /// field 6 that is exactly `-` followed by exactly three fields. Otherwise nil, and the general parser
    /// decides; for a line accepted here it yields the same entry (fields split on single spaces, the same
    /// spans and numbers).
    @inline(__always)
    static func entry(
        _ base: UnsafePointer<UInt8>, start: Int, end: Int, total: Int, spaces: UnsafeMutablePointer<Int>,
        count: Int, storage: MountTableStorage
    ) -> MountEntry? {
        // Ten fields at least: the separator is field `count - 3` (three fields follow it) and comes after field 6.
        let separator = count &- 3
        guard separator >= 6 else { return nil }
        @inline(__always) func fieldStart(_ index: Int) -> Int { spaces[index &- 1] &+ 1 }
        guard let mountID = decimal(base, from: start, to: spaces[0], total: total, maximumDigits: 18),
            let parentID = decimal(base, from: fieldStart(1), to: spaces[1], total: total, maximumDigits: 18)
        else { return nil }
        // major:minor, split at the first colon.
        let deviceStart = fieldStart(2)
        let deviceEnd = spaces[2]
        let colon = firstColon(base, from: deviceStart, to: deviceEnd, total: total)
        guard colon < deviceEnd,
            let major = decimal(base, from: deviceStart, to: colon, total: total, maximumDigits: 9),
            let minor = decimal(base, from: colon &+ 1, to: deviceEnd, total: total, maximumDigits: 9)
        else { return nil }
        let rootStart = fieldStart(3)
        let mountPointStart = fieldStart(4)
        guard spaces[3] > rootStart, spaces[4] > mountPointStart else { return nil }
        // The separator must be the first "-" after field 6; the fields before it are the optional fields.
        @inline(__always) func isDash(_ field: Int) -> Bool {
            spaces[field] &- fieldStart(field) == 1 && base[spaces[field] &- 1] == UInt8(ascii: "-")
        }
        guard isDash(separator) else { return nil }
        var field = 6
        while field < separator {
            if isDash(field) { return nil }
            field &+= 1
        }
        let typeStart = fieldStart(separator &+ 1)
        guard spaces[separator &+ 1] > typeStart else { return nil }

        @inline(__always)
        func span(_ from: Int, _ to: Int) -> ByteSpan {
            ByteSpan(
                start: UInt32(truncatingIfNeeded: from &- start), count: UInt32(truncatingIfNeeded: to &- from))
        }
        return MountEntry(
            mountID: mountID, parentID: parentID, major: UInt32(truncatingIfNeeded: major),
            minor: UInt32(truncatingIfNeeded: minor), origin: .mountinfo, storage: storage,
            fields: MountEntryFields(
                lineStart: start, root: span(rootStart, spaces[3]), mountPoint: span(mountPointStart, spaces[4]),
                mountOptions: span(fieldStart(5), spaces[5]),
                optionalFields: separator > 6 ? span(fieldStart(6), spaces[separator &- 1]) : .empty,
                filesystemType: span(typeStart, spaces[separator &+ 1]),
                source: span(fieldStart(separator &+ 2), spaces[separator &+ 2]),
                superOptions: span(fieldStart(count), end)))
    }

    /// At most 120 bytes of a line, readable, for error messages.
    static func excerptOf(_ line: UnsafeBufferPointer<UInt8>) -> String {
        let shown = Array(line.prefix(120)).readable
        return "\"" + shown + (line.count > 120 ? "…" : "") + "\""
    }

    /// Splits a line on single spaces.
    struct SpaceFields {
        let base: UnsafePointer<UInt8>
        let start: Int
        let end: Int
        var position: Int
        var exhausted = false

        init(_ base: UnsafePointer<UInt8>, start: Int, end: Int) {
            self.base = base
            self.start = start
            self.end = end
            self.position = start
        }

        /// The next field as a span relative to the line start; nil after the last field.
        @inline(__always)
        mutating func next() -> ByteSpan? {
            guard !exhausted else { return nil }
            let fieldStart = position
            let fieldEnd: Int
            if fieldStart < end, let hit = memchr(base + fieldStart, Int32(MountTableParser.space), end - fieldStart) {
                fieldEnd = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - base
                position = fieldEnd + 1
            } else {
                fieldEnd = end
                position = end
                exhausted = true
            }
            return ByteSpan(
                start: UInt32(truncatingIfNeeded: fieldStart - start),
                count: UInt32(truncatingIfNeeded: fieldEnd - fieldStart))
        }

        @inline(__always)
        func bytes(_ span: ByteSpan) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(start: base + start + Int(span.start), count: Int(span.count))
        }
    }

    static func describe(_ span: ByteSpan, in fields: SpaceFields) -> String {
        excerptOf(fields.bytes(span))
    }

    /// Parses one `/proc/self/mountinfo` line (without its newline).
    static func parseMountInfoLine(
        _ base: UnsafePointer<UInt8>, start: Int, end: Int, storage: MountTableStorage
    ) -> Line {
        guard end > start else { return .ignored }
        var fields = SpaceFields(base, start: start, end: end)
        guard let idSpan = fields.next(), let parentSpan = fields.next(), let deviceSpan = fields.next(),
            let rootSpan = fields.next(), let mountPointSpan = fields.next(), let optionsSpan = fields.next()
        else { return .malformed("fewer than 10 fields") }

        guard let mountID = MountTableNumber.parseInt(fields.bytes(idSpan)) else {
            return .malformed("mount ID \(describe(idSpan, in: fields)) is not a decimal number")
        }
        guard let parentID = MountTableNumber.parseInt(fields.bytes(parentSpan)) else {
            return .malformed("parent ID \(describe(parentSpan, in: fields)) is not a decimal number")
        }
        let device = fields.bytes(deviceSpan)
        guard let colon = device.firstIndex(of: UInt8(ascii: ":")),
            let major = MountTableNumber.parseUInt32(UnsafeBufferPointer(rebasing: device[..<colon])),
            let minor = MountTableNumber.parseUInt32(UnsafeBufferPointer(rebasing: device[(colon + 1)...]))
        else { return .malformed("device \(describe(deviceSpan, in: fields)) is not major:minor") }
        guard rootSpan.count > 0 else { return .malformed("empty root field") }
        guard mountPointSpan.count > 0 else { return .malformed("empty mount point field") }

        // Optional fields run up to the first field that is exactly "-".
        var optionalStart: UInt32?
        var optionalEnd: UInt32 = 0
        var optionalCount = 0
        while true {
            guard let field = fields.next() else {
                // Six fields, then at least the separator and three more.
                return .malformed(
                    optionalCount < 4 ? "fewer than 10 fields" : "no \"-\" separator after the optional fields")
            }
            optionalCount += 1
            if field.count == 1 && fields.bytes(field)[0] == UInt8(ascii: "-") { break }
            if optionalStart == nil { optionalStart = field.start }
            optionalEnd = field.start + field.count
        }
        let optionalSpan = optionalStart.map { ByteSpan(start: $0, count: optionalEnd - $0) } ?? .empty

        // Exactly three fields follow: type, source (may be empty), super options.
        guard let typeSpan = fields.next(), let sourceSpan = fields.next(), let superSpan = fields.next() else {
            return .malformed("fewer than 3 fields after the \"-\" separator, expected type, source and options")
        }
        guard fields.next() == nil else {
            return .malformed("more than 3 fields after the \"-\" separator, expected type, source and options")
        }
        guard typeSpan.count > 0 else { return .malformed("empty filesystem type") }

        return .entry(
            MountEntry(
                mountID: mountID, parentID: parentID, major: major, minor: minor, origin: .mountinfo,
                storage: storage,
                fields: MountEntryFields(
                    lineStart: start, root: rootSpan, mountPoint: mountPointSpan, mountOptions: optionsSpan,
                    optionalFields: optionalSpan, filesystemType: typeSpan, source: sourceSpan,
                    superOptions: superSpan)))
    }

    @inline(__always)
    static func isBlank(_ byte: UInt8) -> Bool { byte == space || byte == tab }

    /// Parses one `/proc/mounts` or fstab line (without its newline).
    static func parseMountsLine(
        _ base: UnsafePointer<UInt8>, start: Int, end lineEnd: Int, storage: MountTableStorage
    ) -> Line {
        var end = lineEnd
        if end > start && base[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        // source, mount point, type, options, freq, passno
        var spans = (ByteSpan.empty, ByteSpan.empty, ByteSpan.empty, ByteSpan.empty, ByteSpan.empty, ByteSpan.empty)
        var count = 0
        var index = start
        while index < end {
            while index < end && isBlank(base[index]) { index += 1 }
            guard index < end else { break }
            if count == 0 && base[index] == UInt8(ascii: "#") { return .ignored }
            let fieldStart = index
            while index < end && !isBlank(base[index]) { index += 1 }
            let span = ByteSpan(
                start: UInt32(truncatingIfNeeded: fieldStart - start),
                count: UInt32(truncatingIfNeeded: index - fieldStart))
            switch count {
            case 0: spans.0 = span
            case 1: spans.1 = span
            case 2: spans.2 = span
            case 3: spans.3 = span
            case 4: spans.4 = span
            case 5: spans.5 = span
            default: return .malformed("more than 6 fields")
            }
            count += 1
        }
        if count == 0 { return .ignored }
        guard count >= 3 else { return .malformed("fewer than 3 fields (source, mount point, type)") }
        func bytes(_ span: ByteSpan) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(start: base + start + Int(span.start), count: Int(span.count))
        }
        if count > 4 && MountTableNumber.parseInt(bytes(spans.4)) == nil {
            return .malformed("dump frequency \(excerptOf(bytes(spans.4))) is not a decimal number")
        }
        if count > 5 && MountTableNumber.parseInt(bytes(spans.5)) == nil {
            return .malformed("fsck pass number \(excerptOf(bytes(spans.5))) is not a decimal number")
        }
        return .entry(
            MountEntry(
                mountID: -1, parentID: -1, major: 0, minor: 0, origin: .mounts, storage: storage,
                fields: MountEntryFields(
                    lineStart: start, root: .empty, mountPoint: spans.1, mountOptions: spans.3,
                    optionalFields: .empty, filesystemType: spans.2, source: spans.0, superOptions: spans.3)))
    }
}

// MARK: - Reading

/// Reads a whole (proc) file with read(2).
enum MountTableFile {
    /// The whole file, read into a buffer that grows until read(2) returns 0. `EINTR` is retried.
    static func readAll(_ path: FilePath) throws(UnionMountError) -> [UInt8] {
        let name = path.readable
        let descriptor: FileDescriptor
        do {
            descriptor = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec], retryOnInterrupt: true)
        } catch {
            throw .systemCall("open", (error as? Errno) ?? .ioError, message: "cannot open \(name)", input: name)
        }
        defer { try? descriptor.close() }

        // Regular files report their size; proc files report 0 and are read in growing chunks.
        var status = stat()
        var capacity = 64 * 1024
        if fstat(descriptor.rawValue, &status) == 0, status.st_size > 0, status.st_size < Int.max / 2 {
            capacity = Int(status.st_size) + 1
        }
        var result: [UInt8] = []
        var failure: Errno?
        var atEnd = false
        while !atEnd && failure == nil {
            let previous = result
            result = [UInt8](unsafeUninitializedCapacity: max(capacity, previous.count + 1)) { buffer, count in
                count = 0
                guard let base = buffer.baseAddress else {
                    failure = .noMemory
                    return
                }
                previous.withUnsafeBufferPointer { old in
                    if let oldBase = old.baseAddress, old.count > 0 {
                        base.update(from: oldBase, count: old.count)
                    }
                }
                count = previous.count
                while count < buffer.count {
                    let space = UnsafeMutableRawBufferPointer(start: base + count, count: buffer.count - count)
                    let got: Int
                    do {
                        got = try descriptor.read(into: space, retryOnInterrupt: true)
                    } catch {
                        failure = (error as? Errno) ?? .ioError
                        return
                    }
                    if got == 0 {
                        atEnd = true
                        return
                    }
                    count += got
                }
            }
            let (doubled, overflow) = capacity.multipliedReportingOverflow(by: 2)
            if overflow {
                failure = .noMemory
            } else {
                capacity = doubled
            }
        }
        if let failure, !atEnd {
            throw .systemCall("read", failure, message: "cannot read \(name)", input: name)
        }
        return result
    }
}
