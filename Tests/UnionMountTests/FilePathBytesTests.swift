import SystemPackage
import Testing

@testable import UnionMount

/// The one place the library reads swift-system's private `FilePath` layout (`Support/FilePath+Bytes.swift`):
/// its bytes must be exactly what `withPlatformString` hands out, for every kind of path.
@Suite struct FilePathBytesTests {
    static let paths: [FilePath] = [
        "", "/", "relative", "/a/b/c", FilePath(bytes: [0x2F, 0xFF, 0xFE, 0x2C, 0x3A, 0x5C]),
        FilePath("/" + String(repeating: "x", count: 4000)), "/with space/and\ttab",
    ]

    static func platformBytes(_ path: FilePath) -> [UInt8] {
        path.withPlatformString { cString in
            var bytes: [UInt8] = []
            var index = 0
            while cString[index] != 0 {
                bytes.append(UInt8(bitPattern: cString[index]))
                index += 1
            }
            return bytes + [0]
        }
    }

    @Test func swiftSystemHasTheLayoutTheFastPathReads() {
        // If this fails after a swift-system update, the library still works (through withPlatformString), but
        // planning gets slower; see Benchmarks/README.md.
        #expect(FilePathLayout.isArrayBuffer)
    }

    @Test(arguments: paths)
    func bytesInPlaceEqualThePlatformString(path: FilePath) {
        #expect(path.withNulTerminatedBytes { Array($0) } == Self.platformBytes(path))
        #expect(path.bytes + [0] == Self.platformBytes(path))
    }

    @Test func everyPathOfAnArrayInOrderUntilTheBodyStops() {
        var seen: [[UInt8]] = []
        var indices: [Int] = []
        let all = Self.paths.allNulTerminatedBytes { index, bytes in
            indices.append(index)
            seen.append(Array(bytes))
            return true
        }
        #expect(all)
        #expect(indices == Array(Self.paths.indices))
        #expect(seen == Self.paths.map(Self.platformBytes))
        var calls = 0
        let stopped = Self.paths.allNulTerminatedBytes { _, _ in
            calls += 1
            return calls < 3
        }
        #expect(!stopped)
        #expect(calls == 3)
    }
}
