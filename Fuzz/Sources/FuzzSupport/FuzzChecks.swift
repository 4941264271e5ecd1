#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import UnionMount

/// The properties the fuzz harnesses check, through UnionMount's public API only.
///
/// Every parser must return or throw a ``UnionMountError`` for any input; a trap (bounds, overflow, force unwrap)
/// or a sanitizer report is a bug. Where a parser promises more, the check enforces it with `fatalError`, so that
/// libFuzzer records the input as a crash:
///
/// - `MountInfo` / `ProcMounts`: the throwing and the skipping parses agree, and every lazily decoded field of every
///   entry can be read, hashed, compared and turned into a ``UnionMountReport``. A mountinfo entry of a UTF-8 line
///   reads back equal from its own `description`.
/// - overlay: `OverlaySpec(legacyOptionString: spec.legacyOptionString()) == spec` for a parsed spec that passes
///   `validate()`, except for `source` and `userXattr == false` (documented at `init(legacyOptionString:)`).
/// - aufs: `AufsSpec(optionString: spec.optionString()) == spec` for a parsed spec that passes `validate()`.
///
/// Tests/UnionMountTests/FuzzCorpusTests.swift runs the committed corpus through the same properties.
public enum FuzzChecks {
    /// An aufs sysfs root that does not exist, so a report never reads the host's `/sys/fs/aufs`.
    public static let absentSysfs = AufsSysfs(root: "/nonexistent/unionmount-fuzz/sys/fs/aufs")

    // MARK: Mount tables

    /// `/proc/self/mountinfo` contents.
    public static func mountInfo(_ bytes: [UInt8]) {
        let strict = Result { () throws(UnionMountError) in try MountInfo.parse(bytes) }
        let (entries, skipped) = MountInfo.parseSkippingMalformed(bytes)
        let lenient = Result { () throws(UnionMountError) in try MountInfo.parse(bytes, malformedLines: .skip) }
        agree(strict: strict, lenient: lenient, entries: entries, skipped: skipped, bytes: bytes, format: "mountinfo")
        // Non-UTF-8 bytes are shown as `\xNN` in a description, which does not parse back to the same bytes.
        let isUTF8 = String(validating: bytes, as: UTF8.self) != nil
        for entry in entries {
            touch(entry)
            if isUTF8 { roundTripDescription(entry, bytes: bytes) }
        }
    }

    /// `/proc/mounts` or fstab contents.
    public static func procMounts(_ bytes: [UInt8]) {
        let strict = Result { () throws(UnionMountError) in try ProcMounts.parse(bytes) }
        let (entries, skipped) = ProcMounts.parseSkippingMalformed(bytes)
        let lenient = Result { () throws(UnionMountError) in try ProcMounts.parse(bytes, malformedLines: .skip) }
        agree(strict: strict, lenient: lenient, entries: entries, skipped: skipped, bytes: bytes, format: "mounts")
        for entry in entries {
            touch(entry)
            if entry.origin != .mounts || entry.mountID != -1 || entry.root != "/" || !entry.optionalFields.isEmpty {
                fail("a /proc/mounts entry has mountinfo-only fields: \(entry)", bytes)
            }
        }
    }

    /// The throwing parse succeeds exactly when nothing is skipped, and all three parses find the same entries.
    static func agree(
        strict: Result<[MountEntry], UnionMountError>, lenient: Result<[MountEntry], UnionMountError>,
        entries: [MountEntry], skipped: [UnionMountError], bytes: [UInt8], format: String
    ) {
        guard case .success(let lenientEntries) = lenient else {
            fail("\(format): parse(malformedLines: .skip) threw", bytes)
        }
        if lenientEntries != entries { fail("\(format): .skip and parseSkippingMalformed differ", bytes) }
        switch strict {
        case .success(let strictEntries):
            if !skipped.isEmpty { fail("\(format): the strict parse succeeded but lines were skipped", bytes) }
            if strictEntries != entries { fail("\(format): the strict and the skipping parse differ", bytes) }
        case .failure(let error):
            _ = error.description
            guard let first = skipped.first else {
                fail("\(format): the strict parse threw (\(error)) but no line was skipped", bytes)
            }
            if error != first || error.code != .malformedInput || error.line == nil {
                fail("\(format): the strict parse threw \(error), not the first skipped line's \(first)", bytes)
            }
        }
        for error in skipped {
            if error.code != .malformedInput || error.line == nil { fail("\(format): skipped without a line", bytes) }
            _ = error.description
        }
    }

    /// Reads every lazily decoded field, hashes and compares the entry, and builds its report.
    public static func touch(_ entry: MountEntry) {
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
        hasher.combine(entry.superOptionStrings)
        hasher.combine(entry.isReadOnly)
        hasher.combine(entry.description)
        hasher.combine(entry)
        if let layout = entry.overlayLayout {
            hasher.combine(layout)
            hasher.combine(layout.hasRelativePaths)
        }
        _ = hasher.finalize()
        if entry != entry { fail("an entry is not equal to itself: \(entry)", Array(entry.description.utf8)) }
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
    static func roundTripDescription(_ entry: MountEntry, bytes: [UInt8]) {
        guard entry.origin == .mountinfo else { return }
        let line = Array(entry.description.utf8)
        let again: [MountEntry]
        do {
            again = try MountInfo.parse(line)
        } catch {
            fail("mountinfo: the description \(line.shown) of an entry does not parse: \(error)", bytes)
        }
        if again != [entry] { fail("mountinfo: the description \(line.shown) parses to another entry", bytes) }
    }

    // MARK: Option strings

    /// overlay mount(2) data.
    public static func overlayOptions(_ bytes: [UInt8]) {
        let spec: OverlaySpec
        do {
            spec = try OverlaySpec(legacyOptionString: bytes)
        } catch {
            if error.code != .malformedInput { fail("overlay: threw \(error.code), not malformed input", bytes) }
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
            if error.code != .invalidSpec { fail("overlay: legacyOptionString threw \(error.code)", bytes) }
            return
        }
        let again: OverlaySpec
        do {
            again = try OverlaySpec(legacyOptionString: string)
        } catch {
            fail("overlay round trip: \(string.shown) does not parse: \(error)", bytes)
        }
        var expected = spec
        expected.source = "overlay"
        if expected.options.userXattr == false { expected.options.userXattr = nil }
        if again != expected {
            fail("overlay round trip: \(string.shown) parses to \(again), not \(expected)", bytes)
        }
        // Relative to `/`: succeeds for absolute paths only, must never trap.
        _ = try? spec.legacyOptionString(relativeTo: "/")
    }

    /// aufs mount(2) data.
    public static func aufsOptions(_ bytes: [UInt8]) {
        let spec: AufsSpec
        do {
            spec = try AufsSpec(optionString: bytes)
        } catch {
            if error.code != .malformedInput { fail("aufs: threw \(error.code), not malformed input", bytes) }
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
            fail("aufs: optionString() threw for a valid spec: \(error)", bytes)
        }
        let again: AufsSpec
        do {
            again = try AufsSpec(optionString: string)
        } catch {
            fail("aufs round trip: \(string.shown) does not parse: \(error)", bytes)
        }
        if again != spec { fail("aufs round trip: \(string.shown) parses to \(again), not \(spec)", bytes) }
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
    public static func aufsBranchList(_ bytes: [UInt8]) {
        let line = aufsBranchListEntry(bytes)
        let entries: [MountEntry]
        do {
            entries = try MountInfo.parse(line)
        } catch {
            fail("aufs br: list: the constructed mountinfo line does not parse: \(error)", bytes)
        }
        guard entries.count == 1, let entry = entries.first else {
            fail("aufs br: list: the constructed line gave \(entries.count) entries", bytes)
        }
        do {
            let branches = try AufsSysfs.branches(inMountOptionsOf: entry)
            for (index, branch) in branches.enumerated() where branch.index != index || branch.id != nil {
                fail("aufs br: list: branch \(index) is numbered \(branch.index) / id \(String(describing: branch.id))", bytes)
            }
        } catch {
            if error.code != .malformedInput { fail("aufs br: list threw \(error.code)", bytes) }
        }
        touch(entry)
    }

    // MARK: Failing

    /// Reports a broken property and traps, so that libFuzzer saves the input.
    public static func fail(_ message: String, _ input: [UInt8]) -> Never {
        fatalError("\(message)\ninput (\(input.count) bytes): \(input.shown)")
    }
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
