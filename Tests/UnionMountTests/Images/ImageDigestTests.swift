import Testing

@testable import UnionMount
@testable import UnionMountStore

@Suite struct ImageDigestTests {
    @Test("SHA-256 of known vectors, fed whole and in pieces")
    func knownVectors() {
        #expect(SHA256.digest(of: "abc".utf8).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.digest(of: [UInt8]()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let million = [UInt8](repeating: 0x61, count: 1_000_000)
        var pieces = SHA256()
        var offset = 0
        for size in [1, 63, 64, 65, 4096, 995_711] {
            million[offset..<offset + size].withUnsafeBytes { pieces.update($0) }
            offset += size
        }
        #expect(offset == million.count)
        #expect(
            ImageDigest(sha256: pieces.finish()).hex
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("digests parse strictly and name their input")
    func parsing() throws {
        let text = "sha256:" + String(repeating: "ab", count: 32)
        #expect(try ImageDigest(parsing: text, input: "x").description == text)
        for bad in [
            "", "sha256:", "sha256:" + String(repeating: "AB", count: 32),
            "sha256:" + String(repeating: "a", count: 63),
            "sha256:" + String(repeating: "a", count: 65), String(repeating: "a", count: 64),
            "sha256:" + String(repeating: "g", count: 64), "sha256:../../etc/passwd",
        ] {
            let error = #expect(throws: UnionMountError.self) { try ImageDigest(parsing: bad, input: "layers[3]") }
            #expect(error?.code == .malformedInput)
            #expect(error?.input == "layers[3]")
        }
        let other = #expect(throws: UnionMountError.self) {
            try ImageDigest(parsing: "sha512:" + String(repeating: "a", count: 128), input: "config")
        }
        #expect(other?.code == .unsupported)
    }

    @Test("chain ids: the bottom layer's is its diff id, then sha256 of \"<parent> <diff id>\"")
    func chainIDs() throws {
        let a = SHA256.digest(of: "layer a".utf8)
        let b = SHA256.digest(of: "layer b".utf8)
        #expect(ImageDigest.chainID(parent: nil, diffID: a) == a)
        let ab = ImageDigest.chainID(parent: a, diffID: b)
        #expect(ab == SHA256.digest(of: "\(a) \(b)".utf8))
        #expect(ab != ImageDigest.chainID(parent: b, diffID: a))
    }
}
