import CUnionMountShim
import Foundation
import SystemPackage
import Testing

@testable import UnionMount

/// The C line scanner behind the mountinfo fast path has one implementation per instruction set (AVX-512,
/// AVX2, a byte loop), picked at run time. The machine running the tests uses only its best one in the parser,
/// so here every implementation the CPU can run scans the same inputs and must write the same records.
@Suite struct LineScannerTests {
    struct Records: Equatable {
        var lines: [[UInt64]] = []
        var spaces: [UInt32] = []
    }

    /// Every line and space record of `bytes`, by implementation `implementation`, resuming as the parser does.
    static func scan(
        _ bytes: [UInt8], implementation: Int32, lineCapacity: Int = 7, spaceCapacity: Int = 100_000
    ) -> Records {
        var records = Records()
        var spaces = [UInt32](repeating: 0, count: spaceCapacity + 64)
        var lines = [CUnionMount_line](repeating: CUnionMount_line(), count: lineCapacity + 65)
        var from = 0
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            while from < bytes.count {
                let count = CUnionMount_scan_lines(
                    base, from, bytes.count, &spaces, spaceCapacity, &lines, lineCapacity, implementation)
                if count == 0 { break }  // a line longer than one call holds: the parser's general path takes it
                var previousSpaces: UInt32 = 0
                for line in lines[..<count] {
                    let own = spaces[Int(previousSpaces)..<Int(line.spaces)].map { UInt32(from) + $0 }
                    records.lines.append([UInt64(from) + UInt64(line.end), line.digits, UInt64(own.count)])
                    records.spaces += own
                    previousSpaces = line.spaces
                }
                from += Int(lines[count - 1].end) + 1
            }
        }
        return records
    }

    static func inputs() throws -> [[UInt8]] {
        var inputs: [[UInt8]] = []
        let fixtures = fixturesDirectory.appending("mountinfo")
        for name in try FileManager.default.contentsOfDirectory(atPath: fixtures.string).sorted() {
            inputs.append(Array(try Data(contentsOf: URL(fileURLWithPath: fixtures.appending(name).string))))
        }
        // Random lines over an alphabet rich in the bytes the scanner classifies, of lengths around the block
        // sizes, with and without a final newline.
        var random = SplitMix64(seed: 42)
        let alphabet = Array("0123456789 \n:/abc\\\u{7F}".utf8) + [0x00, 0xFF, 0x80]
        for length in [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 1000, 5000] {
            for _ in 0..<6 {
                inputs.append((0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
            }
        }
        return inputs
    }

    @Test("AVX-512, AVX2 and the byte loop write the same records")
    func implementationsAgree() throws {
        for input in try Self.inputs() {
            let reference = Self.scan(input, implementation: 3)
            for implementation: Int32 in [0, 1, 2] {
                #expect(
                    Self.scan(input, implementation: implementation) == reference, "implementation \(implementation)")
            }
            // One line per call, and many, resume to the same records.
            #expect(Self.scan(input, implementation: 0, lineCapacity: 1) == reference)
            #expect(Self.scan(input, implementation: 0, lineCapacity: 1000) == reference)
        }
    }

    @Test("a batch stops when its space budget is reached; a line over the budget is left to the caller")
    func spaceBudget() {
        let line = Array((String(repeating: "a ", count: 200) + "\n").utf8)
        #expect(Self.scan(line + line, implementation: 0, spaceCapacity: 1_000).lines.count == 2)
        for implementation: Int32 in [0, 1, 2, 3] {
            #expect(Self.scan(line, implementation: implementation, spaceCapacity: 10).lines.isEmpty)
        }
    }

    @Test("the byte loop's records match a direct reading of the bytes")
    func byteLoopIsRight() throws {
        for input in try Self.inputs() {
            let records = Self.scan(input, implementation: 3, lineCapacity: 100_000, spaceCapacity: 100_000)
            var expectedEnds: [UInt64] = []
            var expectedSpaces: [UInt32] = []
            for (index, byte) in input.enumerated() {
                if byte == UInt8(ascii: "\n") { expectedEnds.append(UInt64(index)) }
                if byte == UInt8(ascii: " ") { expectedSpaces.append(UInt32(index)) }
            }
            if let last = input.last, last != UInt8(ascii: "\n") { expectedEnds.append(UInt64(input.count)) }
            #expect(records.lines.map { $0[0] } == expectedEnds)
            // Bit i of a line's mask: its byte i (i < 64, before the end of the input) is a digit or a space.
            var start = 0
            for line in records.lines {
                var mask: UInt64 = 0
                for i in 0..<64 where start + i < input.count {
                    let byte = input[start + i]
                    if byte == UInt8(ascii: " ") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                        mask |= 1 << UInt64(i)
                    }
                }
                #expect(line[1] == mask)
                start = Int(line[0]) + 1
            }
            #expect(records.spaces == expectedSpaces.filter { $0 < UInt32(records.lines.last.map { $0[0] } ?? 0) + 1 })
        }
    }
}
