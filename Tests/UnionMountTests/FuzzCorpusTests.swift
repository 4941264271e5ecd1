import Foundation
import SystemPackage
import Testing

@testable import UnionMount

// MARK: - The fuzz corpus, in process

/// The libFuzzer seed corpus (`Fuzz/Corpus/<target>/`) and the inputs that once crashed a target
/// (`Fuzz/Crashes/<target>/`), found from this source file.
enum FuzzCorpus {
    static let targets = ["mountinfo", "proc-mounts", "overlay-options", "aufs-options"]

    static let fuzzDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // UnionMountTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // package root
        .appendingPathComponent("Fuzz")

    /// The files directly in `Fuzz/<folder>/<target>/`, sorted; none when the folder does not exist.
    static func files(_ folder: String, _ target: String) -> [URL] {
        let directory = fuzzDirectory.appendingPathComponent(folder).appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().map { directory.appendingPathComponent($0) }.filter { url in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }

    /// The seeds and crash inputs of one target.
    static func inputs(_ target: String) -> [(name: String, bytes: [UInt8])] {
        (files("Corpus", target) + files("Crashes", target)).map { url in
            ("\(target)/\(url.lastPathComponent)", (try? [UInt8](Data(contentsOf: url))) ?? [])
        }
    }

    /// What the harness `fuzz-<target>` checks for one input.
    static func check(_ target: String, _ bytes: [UInt8], _ name: String) {
        switch target {
        case "mountinfo":
            FuzzProperties.mountInfo(bytes, name)
        case "proc-mounts":
            FuzzProperties.procMounts(bytes, name)
        case "overlay-options":
            FuzzProperties.overlayOptions(bytes, name)
        case "aufs-options":
            FuzzProperties.aufsOptions(bytes, name)
            FuzzProperties.aufsBranchList(bytes, name)
            FuzzProperties.aufsSysfs(bytes, name)
        default:
            Issue.record("no fuzz target \(target)")
        }
    }
}

/// The properties the fuzz harnesses in `Fuzz/Sources` check, as expectations: the same parsers, the same
/// round trips. Any input must parse or throw a ``UnionMountError``, never trap.
enum FuzzProperties {
    static let absentSysfs = AufsSysfs(root: "/nonexistent/unionmount-fuzz/sys/fs/aufs")

    static func mountInfo(_ bytes: [UInt8], _ name: String) {
        let strict = Result { () throws(UnionMountError) in try MountTable.parse(bytes) }
        let (entries, skipped) = parseSkippingMalformed(bytes)
        let lenient = Result { () throws(UnionMountError) in try MountTable.parse(bytes, malformedLines: .skip) }
        agree(strict, lenient, entries, skipped, name)
        // A mountinfo entry of a UTF-8 input reads back equal from its description.
        let isUTF8 = String(validating: bytes, as: UTF8.self) != nil
        for entry in entries {
            touch(entry)
            if isUTF8 {
                let again = try? MountTable.parse(Array(entry.description.utf8))
                #expect(again == [entry], "\(name): \(entry.description) does not read back")
            }
        }
    }

    static func procMounts(_ bytes: [UInt8], _ name: String) {
        let strict = Result { () throws(UnionMountError) in try MountTable.parse(bytes, format: .mounts) }
        let (entries, skipped) = parseSkippingMalformed(bytes, format: .mounts)
        let lenient = Result { () throws(UnionMountError) in
            try MountTable.parse(bytes, format: .mounts, malformedLines: .skip)
        }
        agree(strict, lenient, entries, skipped, name)
        for entry in entries {
            touch(entry)
            #expect(entry.origin == .mounts && entry.mountID == -1 && entry.root == "/", "\(name)")
            #expect(entry.optionalFields.isEmpty, "\(name)")
        }
    }

    static func agree(
        _ strict: Result<[MountEntry], UnionMountError>, _ lenient: Result<[MountEntry], UnionMountError>,
        _ entries: [MountEntry], _ skipped: [UnionMountError], _ name: String
    ) {
        #expect((try? lenient.get()) == entries, "\(name): .skip and parseSkippingMalformed differ")
        switch strict {
        case .success(let strictEntries):
            #expect(skipped.isEmpty, "\(name): the strict parse succeeded but lines were skipped")
            #expect(strictEntries == entries, "\(name): the strict and the skipping parse differ")
        case .failure(let error):
            #expect(error == skipped.first, "\(name): the strict parse threw \(error), not the first skipped line's")
        }
        for error in skipped {
            #expect(error.code == .malformedInput && error.line != nil, "\(name): \(error)")
        }
    }

    /// Every decoded field, equality, hashing and the report (aufs sysfs pointed nowhere).
    static func touch(_ entry: MountEntry) {
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
        hasher.combine(entry.superOptions)
        hasher.combine(entry.isReadOnly)
        hasher.combine(entry.description)
        hasher.combine(entry)
        if let layout = entry.overlayLayout {
            hasher.combine(layout)
            hasher.combine(layout.hasRelativePaths)
        }
        _ = hasher.finalize()
        #expect(entry == entry)
        if let report = try? UnionMountReport(entry: entry, aufsSysfs: absentSysfs) {
            var reportHasher = Hasher()
            reportHasher.combine(report)
            _ = reportHasher.finalize()
        }
        if entry.filesystemType == "aufs" { _ = try? AufsSysfs.branches(inMountOptionsOf: entry) }
    }

    static func overlayOptions(_ bytes: [UInt8], _ name: String) {
        let spec: OverlaySpec
        do {
            spec = try OverlaySpec(legacyOptionString: bytes)
        } catch {
            #expect(error.code == .malformedInput, "\(name): \(error)")
            return
        }
        guard (try? spec.validate()) != nil, let string = try? spec.legacyOptionString() else { return }
        var expected = spec
        expected.source = "overlay"
        if expected.options.userXattr == false { expected.options.userXattr = nil }
        #expect(
            (try? OverlaySpec(legacyOptionString: string)) == expected,
            "\(name): \(string.readable) does not read back as the spec")
        _ = try? spec.legacyOptionString(relativeTo: "/")
    }

    static func aufsOptions(_ bytes: [UInt8], _ name: String) {
        let spec: AufsSpec
        do {
            spec = try AufsSpec(optionString: bytes)
        } catch {
            #expect(error.code == .malformedInput, "\(name): \(error)")
            return
        }
        guard (try? spec.validate()) != nil else { return }
        let string = try? spec.optionString()
        #expect(string != nil, "\(name): optionString() threw for a valid spec")
        if let string {
            #expect((try? AufsSpec(optionString: string)) == spec, "\(name): \(string.readable) does not read back")
        }
    }

    /// The input as the `br:` list of a `brs=0` aufs mountinfo entry (space, tab, newline octal-escaped).
    static func aufsBranchList(_ bytes: [UInt8], _ name: String) {
        var line = Array("1 2 0:51 / /u rw,relatime - aufs none rw,si=9c1b2e7f40a35d18,br:".utf8)
        for byte in bytes {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") {
                line += Array(("\\0" + String(byte, radix: 8)).utf8)
            } else {
                line.append(byte)
            }
        }
        guard let entries = try? MountTable.parse(line), entries.count == 1, let entry = entries.first else {
            Issue.record("\(name): the constructed aufs mountinfo line does not parse")
            return
        }
        do {
            let branches = try AufsSysfs.branches(inMountOptionsOf: entry)
            #expect(branches.map(\.index) == Array(branches.indices), "\(name)")
            #expect(branches.allSatisfy { $0.id == nil }, "\(name)")
        } catch {
            #expect(error.code == .malformedInput, "\(name): \(error)")
        }
        touch(entry)
    }

    /// The input as sysfs `br0` and `xi_path` (internal decoders, and the scan through an in-memory reader).
    static func aufsSysfs(_ bytes: [UInt8], _ name: String) {
        if let parsed = try? AufsSysfs.sysfsBranch(bytes, file: "/fuzz/si_1/br0") {
            #expect(!parsed.path.bytes.isEmpty, "\(name)")
        }
        _ = try? AufsSysfs.id(bytes, "/fuzz/si_1/brid0")
        let sysfs = AufsSysfs(
            root: "/fuzz",
            reader: { path in
                switch path.lastComponent?.string {
                case "brid0": .success(Array("1\n".utf8))
                case "br0", "xi_path": .success(bytes)
                default: .failure(AufsSysfs.FileReadError(systemCall: "open", errno: .noSuchFileOrDirectory))
                }
            },
            sleeper: { _ in })
        do {
            let (branches, _) = try sysfs.branches(si: "1")
            #expect(branches.count == 1 && branches.first?.id == 1, "\(name)")
        } catch {
            #expect(error.code == .malformedInput, "\(name): \(error)")
        }
    }
}

@Suite("Fuzz corpus")
struct FuzzCorpusTests {
    /// Each target's seeds and crash inputs through the parsers and properties of that target's harness.
    @Test("seeds and crash inputs pass the harness checks", arguments: FuzzCorpus.targets)
    func harness(target: String) {
        let inputs = FuzzCorpus.inputs(target)
        #expect(!inputs.isEmpty, "Fuzz/Corpus/\(target) is empty or missing")
        for (name, bytes) in inputs { FuzzCorpus.check(target, bytes, name) }
    }

    @Test("the committed corpus stays small")
    func corpusIsSmall() {
        let total = FuzzCorpus.targets.flatMap(FuzzCorpus.inputs).reduce(0) { $0 + $1.bytes.count }
        #expect(total < 2_000_000)
    }
}
