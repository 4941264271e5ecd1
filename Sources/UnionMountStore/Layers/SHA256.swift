import CLibCrypto
import UnionMount

/// SHA-256 of a byte stream, fed in pieces while the stream is read (image blobs, layer tars before and after
/// decompression): OpenSSL's libcrypto EVP digest (`EVP_DigestInit_ex`/`EVP_DigestUpdate`/`EVP_DigestFinal_ex`),
/// which uses the CPU's SHA extensions where it has them.
///
/// Why libcrypto, not swift-crypto: the same OpenSSL code is reached either way on Linux (swift-crypto
/// builds BoringSSL from source, minutes per clean build on two cores); a system library like libmount costs
/// nothing to build.
struct SHA256: ~Copyable {
    private let context: OpaquePointer

    /// A fresh digest.
    init() {
        // Only allocation can fail here; without memory nothing else would work either.
        guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            fatalError("libcrypto: EVP_DigestInit_ex(sha256) failed")
        }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    /// Adds bytes to the digest.
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        _ = EVP_DigestUpdate(context, base, bytes.count)
    }

    /// Adds bytes to the digest.
    mutating func update(_ bytes: some Sequence<UInt8>) {
        if bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) == nil {
            let copy = Array(bytes)
            copy.withUnsafeBytes { update($0) }
        }
    }

    /// The 32-byte digest of everything added; the digest is used up.
    consuming func finish() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = out.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context, $0.baseAddress, &length) }
        return out
    }

    /// The 32-byte digest of everything added, after which the digest starts again empty (for one held in a
    /// class, which cannot be consumed).
    mutating func finishAndRestart() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = out.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context, $0.baseAddress, &length) }
        _ = EVP_DigestInit_ex(context, EVP_sha256(), nil)
        return out
    }

    /// The SHA-256 of `bytes`, as an ``ImageDigest``.
    static func digest(of bytes: some Sequence<UInt8>) -> ImageDigest {
        var hasher = SHA256()
        hasher.update(bytes)
        return ImageDigest(sha256: hasher.finish())
    }
}
