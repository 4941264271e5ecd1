import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A `SET_STRING` value is its bytes, whether the planner kept a layer's path, a string, or bytes of its own.
@Suite struct FsconfigValueTests {
    static let raw: [UInt8] = [0x2F, 0x6C, 0xFF, 0x2C]

    @Test func everyStorageReadsAsTheSameBytes() {
        let values = [
            FsconfigValue(path: "/layers/l1"), FsconfigValue("/layers/l1"), FsconfigValue(Array("/layers/l1".utf8)),
            "/layers/l1",
        ]
        for value in values {
            #expect(value == values[0])
            #expect(value.hashValue == values[0].hashValue)
            #expect(value.bytes == Array("/layers/l1".utf8))
            #expect(Array(value) == value.bytes)
            #expect(value.count == 10)
            #expect(value[1] == UInt8(ascii: "l"))
            #expect(value.withNulTerminatedBytes { strlen($0.assumingMemoryBound(to: CChar.self)) } == 10)
        }
        #expect(Set(values).count == 1)
        #expect(FsconfigValue(path: "/layers/l1") != FsconfigValue(path: "/layers/l2"))
        #expect(FsconfigValue("") == FsconfigValue([UInt8]()))
    }

    @Test func aPathOfAnyBytesIsKeptExactly() {
        let value = FsconfigValue(path: FilePath(bytes: Self.raw))
        #expect(value.bytes == Self.raw)
        #expect(value == FsconfigValue(Self.raw))
        #expect(value.description == "/l\\xFF,")
        #expect(
            value.withNulTerminatedBytes {
                Array(UnsafeBufferPointer(start: $0.assumingMemoryBound(to: UInt8.self), count: 5))
            } == Self.raw + [0])
    }

    @Test func plannedLayerStepsKeepTheSpecsPaths() throws {
        let spec = OverlaySpec(lowerDirectories: ["/a", "/b"], upperDirectory: "/u,1", workDirectory: "/w")
        let plan = try Mounter(features: MountPlannerTests.kernel()).plan(.overlay(spec), at: "/m")
        let values = plan.steps.compactMap { step -> (String, FsconfigValue)? in
            guard case .setString(let key, let value) = step else { return nil }
            return (key, value)
        }
        for (key, value) in values where key == "lowerdir+" || key == "workdir" {
            guard case .path = value.storage else {
                Issue.record("\(key) holds a copy: \(value.storage)")
                continue
            }
        }
        // An upper path that needs escaping gets its escaped bytes.
        #expect(values.first { $0.0 == "upperdir" }?.1 == FsconfigValue("/u\\,1"))
    }
}
