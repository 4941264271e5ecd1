import Foundation
import SystemPackage
import Testing
import UnionMountFuzzChecks

@testable import UnionMount

// MARK: - The fuzz corpus, in process

/// The libFuzzer seed corpus (`Fuzz/Corpus/<target>/`) and the inputs that once crashed a target
/// (`Fuzz/Crashes/<target>/`), found from this source file.
enum FuzzCorpus {
    static let targets = [
        "mountinfo", "proc-mounts", "overlay-options", "aufs-options", "layer-archive", "image-json", "docker-archive",
    ]

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

    /// What the harness `fuzz-<target>` checks for one input: the same ``FuzzChecks``, a failure recorded.
    static func check(_ target: String, _ bytes: [UInt8], _ name: String) {
        do {
            switch target {
            case "mountinfo":
                try FuzzChecks.mountInfo(bytes)
            case "proc-mounts":
                try FuzzChecks.procMounts(bytes)
            case "overlay-options":
                try FuzzChecks.overlayOptions(bytes)
            case "layer-archive":
                try FuzzChecks.layerArchive(bytes)
            case "image-json":
                try FuzzChecks.imageJSON(bytes)
            case "docker-archive":
                try FuzzChecks.dockerArchive(bytes)
            case "aufs-options":
                try FuzzChecks.aufsOptions(bytes)
                try FuzzChecks.aufsBranchList(bytes)
                FuzzProperties.aufsSysfs(bytes, name)
            default:
                Issue.record("no fuzz target \(target)")
            }
        } catch {
            Issue.record("\(name): \(error)")
        }
    }
}

/// The properties of the aufs harness that reach internals (the sysfs decoders), as expectations.
enum FuzzProperties {
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
        if target == "layer-archive" { FuzzChecks.removeLayerArchiveScratch() }
        if target == "docker-archive" { FuzzChecks.removeDockerArchiveScratch() }
    }

    @Test("the committed corpus stays small")
    func corpusIsSmall() {
        let total = FuzzCorpus.targets.flatMap(FuzzCorpus.inputs).reduce(0) { $0 + $1.bytes.count }
        #expect(total < 2_000_000)
    }
}
