import SystemPackage
import UnionMount

/// A property of a parser that an input broke: what, and the input.
public struct FuzzFailure: Error, CustomStringConvertible {
    /// What was expected and what happened.
    public let message: String
    /// The input that broke it.
    public let input: [UInt8]

    /// A failure of `input`.
    public init(message: String, input: [UInt8]) {
        self.message = message
        self.input = input
    }

    /// The message and the input as a Swift string literal body.
    public var description: String { "\(message)\ninput (\(input.count) bytes): \(input.shown)" }
}

/// The properties of UnionMount's parsers of untrusted input, written once for the libFuzzer harnesses
/// (`Fuzz/`, which trap on a failure so that libFuzzer saves the input) and for `swift test`
/// (`FuzzCorpusTests`, which runs the committed corpus through them and records a failure as an issue).
///
/// Every parser must return or throw a ``UnionMountError`` for any input; a trap (bounds, overflow, force unwrap)
/// or a sanitizer report is a bug. Where a parser promises more, the check throws a ``FuzzFailure``:
///
/// - mount tables: the throwing and the skipping parses agree, and every field of every entry can be read, hashed,
///   compared and turned into a ``UnionMountReport``. A mountinfo entry of a UTF-8 line reads back equal from its
///   own `description`. The fast mountinfo line loop finds exactly the entries, and skips exactly the lines, that
///   the general line parser finds and skips on every line.
/// - overlay: `OverlaySpec(legacyOptionString: spec.legacyOptionString()) == spec` for a parsed spec that passes
///   `validate()`, except for `source` and `userXattr == false` (documented at `init(legacyOptionString:)`).
/// - aufs: `AufsSpec(optionString: spec.optionString()) == spec` for a parsed spec that passes `validate()`.
///
public enum FuzzChecks {
    /// An aufs sysfs root that does not exist, so a report never reads the host's `/sys/fs/aufs`.
    public static let absentSysfs = AufsSysfs(root: "/nonexistent/unionmount-fuzz/sys/fs/aufs")

    // MARK: Mount tables

    /// `/proc/self/mountinfo` contents.
    public static func mountInfo(_ bytes: [UInt8]) throws(FuzzFailure) {
        let strict = Result { () throws(UnionMountError) in try MountTable.parse(bytes) }
        let (entries, skipped) = skippingParse(bytes, format: .mountinfo)
        let lenient = Result { () throws(UnionMountError) in try MountTable.parse(bytes, malformedLines: .skip) }
        try agree(
            strict: strict, lenient: lenient, entries: entries, skipped: skipped, bytes: bytes, format: "mountinfo")
        // Non-UTF-8 bytes are shown as `\xNN` in a description, which does not parse back to the same bytes.
        let isUTF8 = String(validating: bytes, as: UTF8.self) != nil
        for entry in entries {
            try touch(entry)
            if isUTF8 { try roundTripDescription(entry, bytes: bytes) }
        }
        try mountInfoDifferential(bytes, entries: entries, skipped: skipped)
    }

    /// The fast line loop (the C block scanner and cheap checks, with the general parser for other lines) finds
    /// the same entries and skips the same lines, with the same reasons, as the general parser on every line.
    static func mountInfoDifferential(
        _ bytes: [UInt8], entries: [MountEntry], skipped: [UnionMountError]
    ) throws(FuzzFailure) {
        let reference = MountTable.parseEveryLineGenerally(bytes)
        guard entries == reference.entries else {
            throw FuzzFailure(
                message: "mountinfo differential: \(entries.count) entries, the general parser finds "
                    + "\(reference.entries.count) (or other values): \(entries) vs \(reference.entries)", input: bytes)
        }
        guard skipped.count == reference.skipped.count else {
            throw FuzzFailure(
                message: "mountinfo differential: \(skipped.count) lines skipped, the general parser skips "
                    + "\(reference.skipped.count)", input: bytes)
        }
        for (error, expected) in zip(skipped, reference.skipped)
        where error.line != expected.line || !error.message.hasPrefix(expected.reason + ": ") {
            throw FuzzFailure(
                message: "mountinfo differential: line \(error.line ?? -1) skipped as \(error.message), the general "
                    + "parser: line \(expected.line), \(expected.reason)", input: bytes)
        }
    }

    /// The entries and the skipped lines' errors of a parse that skips malformed lines.
    static func skippingParse(_ bytes: [UInt8], format: MountTable.Format) -> ([MountEntry], [UnionMountError]) {
        var skipped: [UnionMountError] = []
        let entries =
            (try? MountTable.parse(bytes, format: format, malformedLines: .skip(reporting: { skipped.append($0) })))
            ?? []
        return (entries, skipped)
    }

    /// `/proc/mounts` or fstab contents.
    public static func procMounts(_ bytes: [UInt8]) throws(FuzzFailure) {
        let strict = Result { () throws(UnionMountError) in try MountTable.parse(bytes, format: .mounts) }
        let (entries, skipped) = skippingParse(bytes, format: .mounts)
        let lenient = Result { () throws(UnionMountError) in
            try MountTable.parse(bytes, format: .mounts, malformedLines: .skip)
        }
        try agree(strict: strict, lenient: lenient, entries: entries, skipped: skipped, bytes: bytes, format: "mounts")
        for entry in entries {
            try touch(entry)
            if entry.origin != .mounts || entry.mountID != -1 || entry.root != "/" || !entry.optionalFields.isEmpty {
                throw fail("a /proc/mounts entry has mountinfo-only fields: \(entry)", bytes)
            }
        }
    }

    /// The throwing parse succeeds exactly when nothing is skipped, and all three parses find the same entries.
    static func agree(
        strict: Result<[MountEntry], UnionMountError>, lenient: Result<[MountEntry], UnionMountError>,
        entries: [MountEntry], skipped: [UnionMountError], bytes: [UInt8], format: String
    ) throws(FuzzFailure) {
        guard case .success(let lenientEntries) = lenient else {
            throw fail("\(format): parse(malformedLines: .skip) threw", bytes)
        }
        if lenientEntries != entries { throw fail("\(format): .skip and .skip(reporting:) differ", bytes) }
        switch strict {
        case .success(let strictEntries):
            if !skipped.isEmpty { throw fail("\(format): the strict parse succeeded but lines were skipped", bytes) }
            if strictEntries != entries { throw fail("\(format): the strict and the skipping parse differ", bytes) }
        case .failure(let error):
            _ = error.description
            guard let first = skipped.first else {
                throw fail("\(format): the strict parse threw (\(error)) but no line was skipped", bytes)
            }
            if error != first || error.code != .malformedInput || error.line == nil {
                throw fail("\(format): the strict parse threw \(error), not the first skipped line's \(first)", bytes)
            }
        }
        for error in skipped {
            if error.code != .malformedInput || error.line == nil {
                throw fail("\(format): skipped without a line", bytes)
            }
            _ = error.description
        }
    }

    /// Reads every field, hashes and compares the entry, and builds its report.
    public static func touch(_ entry: MountEntry) throws(FuzzFailure) {
        var hasher = Hasher()
        hasher.combine(entry.mountPoint)
        hasher.combine(entry.mountPointBytes)
        hasher.combine(entry.root)
        hasher.combine(entry.rootBytes)
        hasher.combine(entry.mountOptions)
        for field in entry.optionalFields { hasher.combine(field.description) }
        hasher.combine(entry.filesystemType)
        hasher.combine(entry.source)
        hasher.combine(entry.sourceBytes)
        hasher.combine(entry.superOptions)
        hasher.combine(entry.superOptions.bytes)
        hasher.combine(Array(entry.mountOptions))
        hasher.combine(entry.isReadOnly)
        hasher.combine(entry.description)
        hasher.combine(entry)
        if let layout = entry.overlayLayout {
            hasher.combine(layout)
            hasher.combine(layout.hasRelativePaths)
        }
        _ = hasher.finalize()
        if entry != entry { throw fail("an entry is not equal to itself: \(entry)", Array(entry.description.utf8)) }
        do {
            if let report = try UnionMountReport(entry: entry, aufsSysfs: absentSysfs) {
                var reportHasher = Hasher()
                reportHasher.combine(report)
                _ = reportHasher.finalize()
            }
        } catch {
            _ = error.description
        }
        if entry.filesystemType == "aufs" {
            _ = try? AufsSysfs.branches(inMountOptionsOf: entry)
        }
    }

    /// A mountinfo entry parsed from a UTF-8 input reads back equal from its `description` (fields as parsed).
    static func roundTripDescription(_ entry: MountEntry, bytes: [UInt8]) throws(FuzzFailure) {
        guard entry.origin == .mountinfo else { return }
        let line = Array(entry.description.utf8)
        let again: [MountEntry]
        do {
            again = try MountTable.parse(line)
        } catch {
            throw fail("mountinfo: the description \(line.shown) of an entry does not parse: \(error)", bytes)
        }
        if again != [entry] { throw fail("mountinfo: the description \(line.shown) parses to another entry", bytes) }
    }

    // MARK: Option strings

    /// overlay mount(2) data.
    public static func overlayOptions(_ bytes: [UInt8]) throws(FuzzFailure) {
        let spec: OverlaySpec
        do {
            spec = try OverlaySpec(legacyOptionString: bytes)
        } catch {
            if error.code != .malformedInput { throw fail("overlay: threw \(error.code), not malformed input", bytes) }
            _ = error.description
            return
        }
        _ = spec.allDirectories
        do {
            try spec.validate()
        } catch {
            _ = error.description
            return
        }
        let string: [UInt8]
        do {
            string = try spec.legacyOptionString()
        } catch {
            // Documented: a path with `,context=`-like text after a comma is refused (SELinux/Smack).
            if error.code != .invalidSpec { throw fail("overlay: legacyOptionString threw \(error.code)", bytes) }
            return
        }
        let again: OverlaySpec
        do {
            again = try OverlaySpec(legacyOptionString: string)
        } catch {
            throw fail("overlay round trip: \(string.shown) does not parse: \(error)", bytes)
        }
        var expected = spec
        expected.source = "overlay"
        if expected.options.userXattr == false { expected.options.userXattr = nil }
        if again != expected {
            throw fail("overlay round trip: \(string.shown) parses to \(again), not \(expected)", bytes)
        }
        // Relative to `/`: succeeds for absolute paths only, must never trap.
        _ = try? spec.legacyOptionString(relativeTo: "/")
    }

    /// aufs mount(2) data.
    public static func aufsOptions(_ bytes: [UInt8]) throws(FuzzFailure) {
        let spec: AufsSpec
        do {
            spec = try AufsSpec(optionString: bytes)
        } catch {
            if error.code != .malformedInput { throw fail("aufs: threw \(error.code), not malformed input", bytes) }
            _ = error.description
            return
        }
        do {
            try spec.validate()
        } catch {
            _ = error.description
            return
        }
        let string: [UInt8]
        do {
            string = try spec.optionString()
        } catch {
            throw fail("aufs: optionString() threw for a valid spec: \(error)", bytes)
        }
        let again: AufsSpec
        do {
            again = try AufsSpec(optionString: string)
        } catch {
            throw fail("aufs round trip: \(string.shown) does not parse: \(error)", bytes)
        }
        if again != spec { throw fail("aufs round trip: \(string.shown) parses to \(again), not \(spec)", bytes) }
    }

    /// An aufs entry of a `brs=0` host whose `br:` list is `list` (space, tab and newline octal-escaped, the
    /// bytes a mountinfo field cannot hold raw; everything else, backslashes included, as given).
    public static func aufsBranchListEntry(_ list: [UInt8]) -> [UInt8] {
        var line = Array("1 2 0:51 / /u rw,relatime - aufs none rw,si=9c1b2e7f40a35d18,br:".utf8)
        for byte in list {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"):
                let zero = UInt8(ascii: "0")
                line += [UInt8(ascii: "\\"), zero + (byte >> 6), zero + ((byte >> 3) & 7), zero + (byte & 7)]
            default:
                line.append(byte)
            }
        }
        return line
    }

    /// The `br:` list of a mountinfo aufs entry through `AufsSysfs.branches(inMountOptionsOf:)` and the report.
    public static func aufsBranchList(_ bytes: [UInt8]) throws(FuzzFailure) {
        let line = aufsBranchListEntry(bytes)
        let entries: [MountEntry]
        do {
            entries = try MountTable.parse(line)
        } catch {
            throw fail("aufs br: list: the constructed mountinfo line does not parse: \(error)", bytes)
        }
        guard entries.count == 1, let entry = entries.first else {
            throw fail("aufs br: list: the constructed line gave \(entries.count) entries", bytes)
        }
        let branches: [AufsSysfs.Branch]
        do {
            branches = try AufsSysfs.branches(inMountOptionsOf: entry)
        } catch {
            if error.code != .malformedInput { throw fail("aufs br: list threw \(error.code)", bytes) }
            branches = []
        }
        for (index, branch) in branches.enumerated() where branch.index != index || branch.id != nil {
            throw fail(
                "aufs br: list: branch \(index) is numbered \(branch.index) / id \(String(describing: branch.id))",
                bytes)
        }
        try touch(entry)
    }

    // MARK: Failing

    /// The failure of a broken property.
    static func fail(_ message: String, _ input: [UInt8]) -> FuzzFailure { FuzzFailure(message: message, input: input) }
}

extension Array where Element == UInt8 {
    /// The bytes as a Swift string literal body: printable ASCII as is, everything else `\u{XX}`.
    public var shown: String {
        var out = "\""
        for byte in self.prefix(2048) {
            switch byte {
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(byte))
            default: out += "\\u{" + String(byte, radix: 16) + "}"
            }
        }
        return out + (count > 2048 ? "…\"" : "\"")
    }
}
