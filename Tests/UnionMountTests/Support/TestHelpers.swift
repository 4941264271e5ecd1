import SystemPackage
import Testing

@testable import UnionMount

/// The ``UnionMountError`` that `body` throws, or `nil` when it returns; any other error is recorded as an issue.
func thrown<T>(_ body: () throws -> T) -> UnionMountError? {
    do {
        _ = try body()
        return nil
    } catch let error as UnionMountError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny deterministic generator for seeded property tests.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}

/// The package's root directory, found from this source file's path (tests read the source tree).
let packageRoot: FilePath = {
    var path = FilePath(#filePath)
    for _ in 0..<4 { path.removeLastComponent() }  // TestHelpers.swift, Support, UnionMountTests, Tests
    return path
}()

/// `Tests/UnionMountTests/Fixtures` (the package excludes the folder from the target).
let fixturesDirectory = packageRoot.appending("Tests/UnionMountTests/Fixtures")

/// A parse that skips malformed lines, with the error of each skipped line (through
/// ``MalformedLinePolicy/skip(reporting:)``).
func parseSkippingMalformed(
    _ bytes: some Collection<UInt8>, format: MountTable.Format = .mountinfo, inputName: String? = nil
) -> (entries: [MountEntry], skipped: [UnionMountError]) {
    var skipped: [UnionMountError] = []
    let entries =
        (try? MountTable.parse(
            bytes, format: format, malformedLines: .skip { skipped.append($0) }, inputName: inputName)) ?? []
    return (entries, skipped)
}

/// A file read that skips malformed lines, with the error of each skipped line.
func readSkippingMalformed(
    _ path: FilePath, format: MountTable.Format = .mountinfo
) throws(UnionMountError) -> (entries: [MountEntry], skipped: [UnionMountError]) {
    var skipped: [UnionMountError] = []
    let entries = try MountTable.entries(
        source: .file(path, format: format), malformedLines: .skip { skipped.append($0) })
    return (entries, skipped)
}
