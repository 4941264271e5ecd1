import FuzzSupport
// Internal API: `MountTableParser.parseMountInfoLine`, the general line parser, and `MountEntry.fields`, for the
// differential check against the fast mountinfo line loop. Needs `-enable-testing`.
@testable import UnionMount

/// The libFuzzer target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    FuzzChecks.mountInfo(bytes)
    MountInfoDifferential.check(bytes)
    return 0
}

/// The program's `main` (SwiftPM links it as `main`; see `runLibFuzzer`).
@_cdecl("fuzz_mountinfo_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzz)
}

/// `MountInfo.parse` reads most lines with its fast path (the C block scanner and cheap checks) and hands the
/// others to the general line parser; both must find the same entries (the same field spans and numbers, not only
/// equal decoded values) and skip the same lines with the same messages. The reference here is the general parser
/// on every line.
enum MountInfoDifferential {
    static func check(_ bytes: [UInt8]) {
        let (entries, skipped) = MountInfo.parseSkippingMalformed(bytes)
        let storage = MountTableStorage(bytes)
        var expectedEntries: [MountEntry] = []
        var expectedSkipped: [(line: Int, reason: String)] = []
        storage.bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            var position = 0
            var lineNumber = 0
            while position < buffer.count {
                lineNumber += 1
                let end = buffer[position...].firstIndex(of: UInt8(ascii: "\n")) ?? buffer.count
                switch MountTableParser.parseMountInfoLine(base, start: position, end: end, storage: storage) {
                case .entry(let entry): expectedEntries.append(entry)
                case .ignored: break
                case .malformed(let reason): expectedSkipped.append((lineNumber, reason))
                }
                position = end + 1
            }
        }
        guard entries.count == expectedEntries.count else {
            FuzzChecks.fail(
                "mountinfo differential: \(entries.count) entries, the general parser finds \(expectedEntries.count)",
                bytes)
        }
        for (entry, expected) in zip(entries, expectedEntries) {
            guard entry.fields == expected.fields, entry.mountID == expected.mountID,
                entry.parentID == expected.parentID, entry.major == expected.major, entry.minor == expected.minor,
                entry == expected
            else {
                FuzzChecks.fail(
                    "mountinfo differential: \(entry) \(entry.fields), the general parser: \(expected) "
                        + "\(expected.fields)", bytes)
            }
        }
        guard skipped.count == expectedSkipped.count else {
            FuzzChecks.fail(
                "mountinfo differential: \(skipped.count) lines skipped, the general parser skips "
                    + "\(expectedSkipped.count)", bytes)
        }
        for (error, expected) in zip(skipped, expectedSkipped)
        where error.line != expected.line || !error.message.hasPrefix(expected.reason + ": ") {
            FuzzChecks.fail(
                "mountinfo differential: line \(error.line ?? -1) skipped as \(error.message), the general parser: "
                    + "line \(expected.line), \(expected.reason)", bytes)
        }
    }
}
