import SystemPackage
import UnionMount

/// Layer and container names in a ``LayerStore``.
///
/// An id is 1 to 128 bytes of ASCII letters, digits, `_`, `-` and `.`, starting with a letter or a digit: it is
/// used as a directory name, so `/`, `..`, NUL and anything a mount option could misread can never reach a path.
public enum StoreIdentifier {
    /// The longest id accepted, in bytes.
    public static let maximumLength = 128

    /// Throws `UnionMountError.Code.invalidArgument` naming `input` when `id` is not a valid id.
    public static func validate(_ id: String, input: String) throws(UnionMountError) {
        let bytes = id.utf8
        guard !bytes.isEmpty, bytes.count <= maximumLength else {
            throw UnionMountError.invalidArgument(
                "\(input) must be 1 to \(maximumLength) bytes long (got \(bytes.count))", input: input)
        }
        func alphanumeric(_ byte: UInt8) -> Bool {
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
        }
        guard alphanumeric(bytes.first!),
            bytes.allSatisfy({
                alphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".")
            })
        else {
            throw UnionMountError.invalidArgument(
                "\(input) \(Array(bytes).readable.debugDescription) may hold only letters, digits, '_', '-' and '.', "
                    + "and must start with a letter or digit",
                input: input)
        }
    }

    /// Throws `UnionMountError.Code.malformedInput` naming `file` when `id`, read back from that store record's
    /// `key`, is not a valid id: the store wrote only valid ids, so a bad one means the file was damaged or
    /// edited, not that the caller passed a bad argument.
    static func validate(_ id: String, key: String, recordedIn file: FilePath) throws(UnionMountError) {
        do {
            try validate(id, input: key)
        } catch {
            throw UnionMountError.malformed("\(key): \(error.message)", input: file.readable)
        }
    }

    /// A new random id: 32 lowercase hex digits (128 bits from the system's random source).
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next()
        let low = generator.next()
        func hex(_ value: UInt64) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
        return hex(high) + hex(low)
    }
}
