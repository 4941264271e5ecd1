import SystemPackage

/// What parsing a mount table does with a line it cannot parse
/// (``MountTable/parse(_:format:malformedLines:inputName:)``,
/// ``MountTable/entries(source:malformedLines:)``).
public struct MalformedLinePolicy {
    /// Whether the first malformed line throws.
    let throwsFirst: Bool
    /// Called with the error of each skipped line, in file order.
    let report: ((UnionMountError) -> Void)?

    /// Stop and throw a ``UnionMountError`` with code ``UnionMountError/Code/malformedInput`` naming the file and
    /// the 1-based line.
    public static var `throw`: MalformedLinePolicy { MalformedLinePolicy(throwsFirst: true, report: nil) }

    /// Leave malformed lines out and go on.
    public static var skip: MalformedLinePolicy { MalformedLinePolicy(throwsFirst: false, report: nil) }

    /// Leave malformed lines out, go on, and call `report` with each one's error (its
    /// ``UnionMountError/line`` set), in file order, before the parse returns.
    public static func skip(reporting report: @escaping (UnionMountError) -> Void) -> MalformedLinePolicy {
        MalformedLinePolicy(throwsFirst: false, report: report)
    }

    /// Throws the first of `skipped` when the policy says so, else reports each.
    func finish(_ skipped: [UnionMountError]) throws(UnionMountError) {
        if throwsFirst, let first = skipped.first { throw first }
        if let report { skipped.forEach(report) }
    }
}

// MARK: - Line parsing

/// The line loops of ``MountTable/parse(_:format:malformedLines:inputName:)`` and their general line parsers
/// (mountinfo has a faster loop of its own for ordinary lines: ``runMountInfo(_:inputName:policy:)``).
enum MountTableParser {
    typealias Format = MountTable.Format

    /// The outcome of one line.
    enum Line {
        case record(MountEntryRecord)
        case ignored
        case malformed(String)
    }

    static let newline = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")

    static func run(
        _ bytes: [UInt8], format: Format, inputName: String, policy: MalformedLinePolicy
    ) throws(UnionMountError) -> [MountEntry] {
        if format == .mountinfo { return try runMountInfo(bytes, inputName: inputName, policy: policy) }
        var entries: [MountEntry] = []
        var builder = MountEntryBuilder()
        defer { builder.deallocate() }
        var skipped: [UnionMountError] = []
        forEachLine(of: bytes) { base, start, end, lineNumber in
            let result: Line =
                end - start > Int(UInt32.max)
                ? .malformed("line is longer than 4 GiB") : parseMountsLine(base, start: start, end: end)
            switch result {
            case .record(let record):
                entries.append(MountEntry(line: base + start, record, builder: &builder))
            case .ignored:
                break
            case .malformed(let reason):
                skipped.append(malformed(reason, base, start: start, end: end, inputName, lineNumber))
                if policy.throwsFirst { return false }
            }
            return true
        }
        try policy.finish(skipped)
        return entries
    }

    /// Calls `body` with each line of `bytes` (its start, its end before the `\n`, its 1-based number), in order,
    /// until it returns `false`.
    static func forEachLine(
        of bytes: [UInt8], _ body: (UnsafePointer<UInt8>, _ start: Int, _ end: Int, _ lineNumber: Int) -> Bool
    ) {
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            var position = 0
            var lineNumber = 0
            while position < buffer.count {
                lineNumber += 1
                let end = MountInfoLineReader.lineEnd(base, start: position, total: buffer.count)
                guard body(base, position, end, lineNumber) else { return }
                position = end + 1
            }
        }
    }

    static func malformed(
        _ reason: String, _ base: UnsafePointer<UInt8>, start: Int, end: Int, _ inputName: String, _ lineNumber: Int
    ) -> UnionMountError {
        let excerpt = excerptOf(UnsafeBufferPointer(start: base + start, count: end - start))
        return .malformed("\(reason): \(excerpt)", input: inputName, line: lineNumber)
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
            if fieldStart < end,
                let offset = byteOffset(of: MountTableParser.space, in: base + fieldStart, count: end - fieldStart)
            {
                fieldEnd = fieldStart + offset
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

    /// Parses one `/proc/self/mountinfo` line (without its newline): the general parser, which decides every
    /// line the fast loop does not accept and words the errors.
    static func parseMountInfoLine(_ base: UnsafePointer<UInt8>, start: Int, end: Int) -> Line {
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

        return .record(
            MountEntryRecord(
                mountID: mountID, parentID: parentID, major: major, minor: minor, origin: .mountinfo,
                fields: MountEntryFields(
                    root: rootSpan, mountPoint: mountPointSpan, mountOptions: optionsSpan,
                    optionalFields: optionalSpan, filesystemType: typeSpan, source: sourceSpan,
                    superOptions: superSpan)))
    }

    @inline(__always)
    static func isBlank(_ byte: UInt8) -> Bool { byte == space || byte == tab }

    /// Parses one `/proc/mounts` or fstab line (without its newline).
    static func parseMountsLine(_ base: UnsafePointer<UInt8>, start: Int, end lineEnd: Int) -> Line {
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
        return .record(
            MountEntryRecord(
                mountID: -1, parentID: -1, major: 0, minor: 0, origin: .mounts,
                fields: MountEntryFields(
                    root: .empty, mountPoint: spans.1, mountOptions: spans.3,
                    optionalFields: .empty, filesystemType: spans.2, source: spans.0, superOptions: spans.3)))
    }
}

extension MountTable {
    /// Parses mountinfo bytes with the general line parser alone, on every line: the reference the fuzz checks
    /// (`UnionMountFuzzChecks`) hold the fast line loop of ``parse(_:format:malformedLines:inputName:)`` to.
    ///
    /// - Returns: The entries, and the line number and reason of each malformed line.
    package static func parseEveryLineGenerally(
        _ bytes: [UInt8]
    ) -> (entries: [MountEntry], skipped: [(line: Int, reason: String)]) {
        var entries: [MountEntry] = []
        var skipped: [(line: Int, reason: String)] = []
        var builder = MountEntryBuilder()
        defer { builder.deallocate() }
        MountTableParser.forEachLine(of: bytes) { base, start, end, lineNumber in
            switch MountTableParser.parseMountInfoLine(base, start: start, end: end) {
            case .record(let record): entries.append(MountEntry(line: base + start, record, builder: &builder))
            case .ignored: break
            case .malformed(let reason): skipped.append((lineNumber, reason))
            }
            return true
        }
        return (entries, skipped)
    }
}
