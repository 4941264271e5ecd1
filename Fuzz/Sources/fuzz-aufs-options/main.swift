import FuzzSupport

// Internal API: the aufs sysfs `br<N>` / `brid<N>` / `xi_path` decoders (`AufsSysfs.sysfsBranch`, `AufsSysfs.id`)
// and the `AufsSysfs(root:reader:sleeper:)` seam that serves sysfs files from memory. Needs `-enable-testing`.
@testable import UnionMount

/// The libFuzzer target. Every input goes through all aufs parsers: the mount(2) data parser with its round trip,
/// the `br:` list of a `brs=0` mount table entry, and the sysfs files.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    trapOnFailure { () throws(FuzzFailure) in
        try FuzzChecks.aufsOptions(bytes)
        try FuzzChecks.aufsBranchList(bytes)
    }
    AufsSysfsFuzz.check(bytes)
    return 0
}

/// The program's `main` (SwiftPM links it as `main`; see `runLibFuzzer`).
@_cdecl("fuzz_aufs_options_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzz)
}

enum AufsSysfsFuzz {
    /// A sysfs tree in memory: `si_1/brid0` is `1`, `si_1/br0` and `si_1/xi_path` are the input, nothing else exists.
    static func sysfs(_ bytes: [UInt8]) -> AufsSysfs {
        AufsSysfs(
            root: "/fuzz",
            reader: { path in
                switch path.lastComponent?.string {
                case "brid0": .success(Array("1\n".utf8))
                case "br0", "xi_path": .success(bytes)
                default: .failure(AufsSysfs.FileReadError(systemCall: "open", errno: .noSuchFileOrDirectory))
                }
            },
            sleeper: { _ in })
    }

    static func check(_ bytes: [UInt8]) {
        if let parsed = try? AufsSysfs.sysfsBranch(bytes, file: "/fuzz/si_1/br0") {
            let path = parsed.path.bytes
            if path.isEmpty || path.contains(0) {
                fatalError(
                    FuzzFailure(message: "aufs sysfs: br0 decoded to an empty path or one with NUL", input: bytes)
                        .description)
            }
        }
        _ = try? AufsSysfs.id(bytes, "/fuzz/si_1/brid0")
        do {
            let (branches, _) = try sysfs(bytes).branches(si: "1")
            if branches.count != 1 || branches[0].id != 1 || branches[0].index != 0 {
                fatalError(FuzzFailure(message: "aufs sysfs: one br0 gave \(branches)", input: bytes).description)
            }
        } catch {
            if error.code != .malformedInput {
                fatalError(FuzzFailure(message: "aufs sysfs: threw \(error.code)", input: bytes).description)
            }
        }
    }
}
