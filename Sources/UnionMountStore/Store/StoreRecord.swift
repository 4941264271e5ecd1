import SystemPackage
import UnionMount

/// A store record file: `key=value` lines, written by ``StoreFiles/writeAtomically(_:to:)``.
///
/// Records are read as untrusted input: keys are lowercase letters and `-`, values printable ASCII; anything
/// else, a repeated key or a missing one is `UnionMountError.Code.malformedInput` naming the file and line.
struct StoreRecord: Equatable {
    private(set) var fields: [(key: String, value: String)] = []

    init(_ fields: [(key: String, value: String)] = []) {
        for (key, value) in fields { self[key] = value }
    }

    static func == (lhs: StoreRecord, rhs: StoreRecord) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.key == $1.key && $0.value == $1.value }
    }

    subscript(key: String) -> String? {
        get { fields.first { $0.key == key }?.value }
        set {
            if let index = fields.firstIndex(where: { $0.key == key }) {
                if let newValue { fields[index].value = newValue } else { fields.remove(at: index) }
            } else if let newValue {
                fields.append((key, newValue))
            }
        }
    }

    /// The bytes of the file: one `key=value` line per field, in order.
    var bytes: [UInt8] { Array(fields.map { "\($0.key)=\($0.value)\n" }.joined().utf8) }

    /// Parses the bytes of `file` (named in errors).
    init(parsing bytes: [UInt8], file: FilePath) throws(UnionMountError) {
        var lineNumber = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.isEmpty { continue }
            guard let equals = line.firstIndex(of: UInt8(ascii: "=")) else {
                throw UnionMountError.malformed("a record line has no '='", input: file.readable, line: lineNumber)
            }
            let key = line[..<equals]
            let value = line[(equals + 1)...]
            guard !key.isEmpty, key.allSatisfy({ (0x61...0x7A).contains($0) || $0 == 0x2D }) else {
                throw UnionMountError.malformed(
                    "a record key is not lowercase letters and '-'", input: file.readable, line: lineNumber)
            }
            guard value.allSatisfy({ (0x20...0x7E).contains($0) }) else {
                throw UnionMountError.malformed(
                    "a record value is not printable ASCII", input: file.readable, line: lineNumber)
            }
            let name = String(decoding: key, as: UTF8.self)
            guard self[name] == nil else {
                throw UnionMountError.malformed(
                    "the key '\(name)' appears twice", input: file.readable, line: lineNumber)
            }
            fields.append((name, String(decoding: value, as: UTF8.self)))
        }
        guard bytes.isEmpty || bytes.last == UInt8(ascii: "\n") else {
            throw UnionMountError.malformed("the record is cut short (no final newline)", input: file.readable)
        }
    }

    /// Reads the record at `file`; nil when the file does not exist.
    static func read(_ file: FilePath) throws(UnionMountError) -> StoreRecord? {
        guard let bytes = try StoreFiles.read(file) else { return nil }
        return try StoreRecord(parsing: bytes, file: file)
    }

    /// Writes the record to `file` atomically; `durable` also syncs it to disk (see
    /// ``StoreFiles/writeAtomically(_:to:durable:)``).
    func write(to file: FilePath, durable: Bool = true) throws(UnionMountError) {
        try StoreFiles.writeAtomically(bytes, to: file, durable: durable)
    }

    /// The value of a key that must be present.
    func required(_ key: String, in file: FilePath) throws(UnionMountError) -> String {
        guard let value = self[key] else {
            throw UnionMountError.malformed("the record has no '\(key)'", input: file.readable)
        }
        return value
    }

    /// The value of a key that must be a non-negative integer, `default` when absent.
    func count(_ key: String, in file: FilePath, default defaultValue: Int? = nil) throws(UnionMountError) -> Int {
        guard let text = self[key] else {
            if let defaultValue { return defaultValue }
            throw UnionMountError.malformed("the record has no '\(key)'", input: file.readable)
        }
        guard let value = Int(text), value >= 0, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
            throw UnionMountError.malformed("'\(key)' is not a non-negative integer: \(text)", input: file.readable)
        }
        return value
    }
}
