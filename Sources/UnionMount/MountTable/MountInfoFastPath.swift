// The mountinfo line loop. Parsing 10,000 lines has about the budget of three read(2)s of the file, so the loop
// does no more than it must: the C scanner (`CUnionMount_scan_lines`, scan.c) finds the lines, their spaces and
// which of their first 64 bytes are digits in 64-byte blocks; the checks below accept an ordinary line from
// those alone, and its fields are where its spaces are, so the entry is made from the scanner's records with no
// second look at the line (``MountEntryBuilder`` decodes the fields into the entry's own storage).

extension MountTableParser {
    /// The spaces and lines one call of the scanner records at most (plus the slack it needs).
    static let batchSpaces = 1024
    static let batchLines = 64

    /// The mountinfo line loop.
    ///
    /// A line the scanner's records show to be well-formed in the ordinary way (see
    /// ``isOrdinary(_:start:spaces:count:digits:)``) is accepted right there; any other line, empty or malformed
    /// or merely unusual, goes to ``parseMountInfoLine(_:start:end:)``, the general parser, which decides and
    /// words the error exactly as it always did.
    static func runMountInfo(
        _ bytes: [UInt8], inputName: String, policy: MalformedLinePolicy
    ) throws(UnionMountError) -> [MountEntry] {
        var skipped: [UnionMountError] = []
        var entries: [MountEntry] = []
        entries.reserveCapacity(bytes.count / 128 + 16)
        var builder = MountEntryBuilder()
        defer { builder.deallocate() }
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let total = buffer.count
            let spaces = UnsafeMutablePointer<UInt32>.allocate(capacity: batchSpaces + 64)
            let lines = UnsafeMutablePointer<ScannedLine>.allocate(capacity: batchLines + 65)
            defer {
                spaces.deallocate()
                lines.deallocate()
            }
            var position = 0
            var lineNumber = 0
            while position < total {
                let count = system_scan_lines(
                    base, from: position, total: total, spaces: spaces, spaceCapacity: batchSpaces, lines: lines,
                    lineCapacity: batchLines)
                if count == 0 {
                    // One line with more spaces than a batch holds: the general parser alone.
                    lineNumber += 1
                    let end = MountInfoLineReader.lineEnd(base, start: position, total: total)
                    switch general(base, start: position, end: end, lineNumber, inputName, &skipped) {
                    case .accept(let record):
                        entries.append(MountEntry(line: base + position, record, builder: &builder))
                    case .ignore: break
                    case .malformed where policy.throwsFirst: return
                    case .malformed: break
                    }
                    position = end + 1
                    continue
                }
                var index = 0
                while index < count {
                    index = ordinaryLines(
                        base + position, lines, from: index, to: count, spaces: spaces, into: &entries,
                        builder: &builder)
                    guard index < count else { break }
                    // Line `index` is not ordinary.
                    let start = index == 0 ? position : position &+ Int(lines[index &- 1].end) &+ 1
                    let end = position &+ Int(lines[index].end)
                    switch general(base, start: start, end: end, lineNumber &+ index &+ 1, inputName, &skipped) {
                    case .accept(let record):
                        entries.append(MountEntry(line: base + start, record, builder: &builder))
                    case .ignore:
                        break
                    case .malformed where policy.throwsFirst:
                        return
                    case .malformed:
                        break
                    }
                    index &+= 1
                }
                lineNumber &+= count
                position &+= Int(lines[count &- 1].end) &+ 1
            }
        }
        try policy.finish(skipped)
        return entries
    }

    /// Makes the entries of the ordinary lines `first..<count` of a batch the scanner recorded (starting at
    /// `batch`), up to the first line that is not ordinary; returns the index of that line, or `count`.
    ///
    /// The fields of an ordinary line are where its spaces are: the scanner's records are all it takes.
    @inline(never)
    static func ordinaryLines(
        _ batch: UnsafePointer<UInt8>, _ lines: UnsafePointer<ScannedLine>, from first: Int, to count: Int,
        spaces: UnsafePointer<UInt32>, into entries: inout [MountEntry], builder: inout MountEntryBuilder
    ) -> Int {
        var index = first
        var lineStart: UInt32 = first == 0 ? 0 : lines[first &- 1].end &+ 1
        var spaceStart = first == 0 ? 0 : Int(lines[first &- 1].spaces)
        while index < count {
            let line = lines[index]
            let spaceEnd = Int(line.spaces)
            let lineSpaces = spaces + spaceStart
            let spaceCount = spaceEnd &- spaceStart
            guard isOrdinary(batch, start: lineStart, spaces: lineSpaces, count: spaceCount, digits: line.digits)
            else { break }
            let separator = spaceCount &- 3
            let start = lineStart
            @inline(__always) func span(_ from: UInt32, _ to: UInt32) -> ByteSpan {
                ByteSpan(start: from &- start, count: to &- from)
            }
            @inline(__always) func field(_ index: Int) -> ByteSpan {
                span(lineSpaces[index &- 1] &+ 1, lineSpaces[index])
            }
            let numbers = MountInfoLineReader.numbers(batch, start: Int(lineStart), total: Int(line.end))
            let record = MountEntryRecord(
                mountID: numbers.mountID, parentID: numbers.parentID, major: numbers.major, minor: numbers.minor,
                origin: .mountinfo,
                fields: MountEntryFields(
                    root: field(3), mountPoint: field(4), mountOptions: field(5),
                    optionalFields: separator > 6 ? span(lineSpaces[5] &+ 1, lineSpaces[separator &- 1]) : .empty,
                    filesystemType: field(separator &+ 1), source: field(separator &+ 2),
                    superOptions: span(lineSpaces[spaceCount &- 1] &+ 1, line.end)))
            entries.append(MountEntry(line: batch + Int(lineStart), record, builder: &builder))
            lineStart = line.end &+ 1
            spaceStart = spaceEnd
            index &+= 1
        }
        return index
    }

    /// What the line loop does after the general parser has seen a line.
    enum GeneralOutcome {
        case accept(MountEntryRecord)
        case ignore
        case malformed
    }

    /// A line for the general parser; the error of a malformed one is appended to `skipped`.
    @inline(never)
    static func general(
        _ base: UnsafePointer<UInt8>, start: Int, end: Int, _ lineNumber: Int, _ inputName: String,
        _ skipped: inout [UnionMountError]
    ) -> GeneralOutcome {
        let result: Line
        if end - start > Int(UInt32.max) {
            result = .malformed("line is longer than 4 GiB")
        } else {
            result = parseMountInfoLine(base, start: start, end: end)
        }
        switch result {
        case .record(let record):
            return .accept(record)
        case .ignored:
            return .ignore
        case .malformed(let reason):
            skipped.append(malformed(reason, base, start: start, end: end, inputName, lineNumber))
            return .malformed
        }
    }

    /// Whether the mountinfo line at `batch[start...]` is well-formed in the ordinary way, judged from the
    /// positions of its `count` spaces (relative to `batch`) and the digit-or-space bits of its first 64 bytes: IDs of 1 to
    /// 18 digits and device numbers of 1 to 9 (so nothing can overflow) ending before byte 64, non-empty root,
    /// mount point and filesystem type, and the first field after field 6 that is exactly `-` followed by exactly
    /// three fields. The general parser accepts every such line too, with the same fields.
    @inline(__always)
    static func isOrdinary(
        _ batch: UnsafePointer<UInt8>, start: UInt32, spaces: UnsafePointer<UInt32>, count: Int, digits: UInt64
    ) -> Bool {
        // Ten fields at least: the separator is field `count - 3` (three fields follow it) and comes after field 6.
        let separator = count &- 3
        guard separator >= 6 else { return false }
        let space0 = spaces[0] &- start
        let space1 = spaces[1] &- start
        let space2 = spaces[2] &- start
        guard space2 < 64 else { return false }
        // Below the third space, every byte but the two spaces and one colon is a digit.
        let others = ~digits & ((UInt64(1) &<< UInt64(space2)) &- 1)
        guard others != 0, others & (others &- 1) == 0 else { return false }
        let colon = UInt32(truncatingIfNeeded: others.trailingZeroBitCount)
        guard batch[Int(start &+ colon)] == UInt8(ascii: ":"),
            space0 &- 1 < 18, space1 &- space0 &- 2 < 18, colon &- space1 &- 2 < 9, space2 &- colon &- 2 < 9
        else { return false }
        // Root and mount point are not empty.
        guard spaces[3] &- spaces[2] > 1, spaces[4] &- spaces[3] > 1 else { return false }
        // The separator is the first field after field 6 that is "-"; the filesystem type after it is not empty.
        @inline(__always) func isDash(_ field: Int) -> Bool {
            spaces[field] &- spaces[field &- 1] == 2 && batch[Int(spaces[field] &- 1)] == UInt8(ascii: "-")
        }
        guard isDash(separator), spaces[separator &+ 1] &- spaces[separator] > 1 else { return false }
        var field = 6
        while field < separator {
            if isDash(field) { return false }
            field &+= 1
        }
        return true
    }
}

/// Reads the numbers of a mountinfo line that ``MountTableParser`` accepted as ordinary (so every check has passed
/// and nothing here can fail or overflow), and finds where lines end.
enum MountInfoLineReader {
    /// Where the line starting at `start` ends: its `\n`, or `total`.
    @inline(__always)
    static func lineEnd(_ base: UnsafePointer<UInt8>, start: Int, total: Int) -> Int {
        guard start < total,
            let offset = byteOffset(of: MountTableParser.newline, in: base + start, count: total - start)
        else { return total }
        return start &+ offset
    }

    /// Fields 1 to 3: mount ID, parent ID, `major:minor`.
    static func numbers(
        _ base: UnsafePointer<UInt8>, start: Int, total: Int
    ) -> (mountID: Int, parentID: Int, major: UInt32, minor: UInt32) {
        var index = start
        @inline(__always) func number() -> Int {
            var value = 0
            while index < total {
                let digit = base[index] &- UInt8(ascii: "0")
                guard digit < 10 else { break }
                value = value &* 10 &+ Int(digit)
                index &+= 1
            }
            index &+= 1  // the space or colon after it
            return value
        }
        let mountID = number()
        let parentID = number()
        let major = number()
        let minor = number()
        return (mountID, parentID, UInt32(truncatingIfNeeded: major), UInt32(truncatingIfNeeded: minor))
    }
}
