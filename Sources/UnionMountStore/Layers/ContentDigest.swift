import UnionMount

/// A 128-bit non-cryptographic digest of a byte stream, for telling file contents apart in a ``TreeManifest``.
///
/// Two independent 64-bit lanes read the input in little-endian 8-byte words: one multiplies after an exclusive
/// or (FNV-style, with a rotation), the other adds a multiplied word and rotates; the tail and the length are
/// folded in and each lane is finished with a 64-bit avalanche (xor-shift-multiply). Not for security: it only
/// has to make accidental collisions between files of one tree vanishingly unlikely.
struct ContentDigest {
    private var first: UInt64 = 0xCBF2_9CE4_8422_2325
    private var second: UInt64 = 0x9E37_79B9_7F4A_7C15
    private var length: UInt64 = 0
    private var pending: [UInt8] = []

    private static let primeA: UInt64 = 0x0000_0100_0000_01B3
    private static let primeB: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let primeC: UInt64 = 0x1656_67B1_9E37_79F9

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        length &+= UInt64(bytes.count)
        var index = 0
        if !pending.isEmpty {
            while pending.count < 8 && index < bytes.count {
                pending.append(bytes[index])
                index += 1
            }
            guard pending.count == 8 else { return }
            mix(pending.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            pending.removeAll(keepingCapacity: true)
        }
        while index + 8 <= bytes.count {
            mix(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)))
            index += 8
        }
        pending.append(contentsOf: bytes[index...])
    }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    private mutating func mix(_ word: UInt64) {
        first = ((first ^ word) &* Self.primeA).rotatedLeft(by: 29)
        second = (second &+ word &* Self.primeB).rotatedLeft(by: 31) &* Self.primeC
    }

    /// The digest as 32 lowercase hexadecimal digits.
    func finish() -> String {
        var copy = self
        var tail: UInt64 = 0
        for (offset, byte) in pending.enumerated() { tail |= UInt64(byte) << (8 * UInt64(offset)) }
        copy.mix(tail ^ (UInt64(pending.count) << 56))
        copy.mix(length)
        let high = Self.avalanche(copy.first ^ copy.second.rotatedLeft(by: 17))
        let low = Self.avalanche(copy.second &+ copy.first.rotatedLeft(by: 43))
        return Self.hex(high) + Self.hex(low)
    }

    private static func avalanche(_ value: UInt64) -> UInt64 {
        var mixed = value
        mixed = (mixed ^ (mixed >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        mixed = (mixed ^ (mixed >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return mixed ^ (mixed >> 33)
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

extension UInt64 {
    fileprivate func rotatedLeft(by count: UInt64) -> UInt64 { (self << count) | (self >> (64 - count)) }
}
