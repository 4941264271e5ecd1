import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

/// Store records and ids are read from disk, so they are untrusted input: every malformed one is a typed error
/// naming the file (and line), never a crash.
@Suite struct StoreRecordTests {
    let file = FilePath("/store/layers/x/layer.conf")

    @Test func roundTrip() throws {
        let record = StoreRecord([("id", "base"), ("parent", "p-1.2_3"), ("depth", "2")])
        let parsed = try StoreRecord(parsing: record.bytes, file: file)
        #expect(parsed == record)
        #expect(parsed["parent"] == "p-1.2_3")
        #expect(try parsed.count("depth", in: file) == 2)
    }

    @Test(
        "malformed records are typed errors naming the file and line",
        arguments: [
            ("id=a\nno equals\n", 2), ("Id=a\n", 1), ("id=a\nid=b\n", 2), ("id=\u{7}\n", 1), ("id=a", nil),
            ("=a\n", 1), ("id=caf\u{E9}\n", 1),
        ] as [(String, Int?)])
    func malformed(text: String, line: Int?) throws {
        let error = thrown { try StoreRecord(parsing: Array(text.utf8), file: file) }
        #expect(error?.code == .malformedInput)
        #expect(error?.input == file.string)
        #expect(error?.line == line)
    }

    @Test(
        "counts must be plain non-negative integers", arguments: ["-1", "+1", "1e3", "", " 1", "99999999999999999999"])
    func badCounts(value: String) throws {
        let record = try StoreRecord(parsing: Array("count=\(value)\n".utf8), file: file)
        #expect(thrown { try record.count("count", in: file) }?.code == .malformedInput)
    }

    @Test func missingKeyIsNamed() throws {
        let record = try StoreRecord(parsing: Array("id=a\n".utf8), file: file)
        let error = thrown { try record.required("depth", in: file) }
        #expect(error?.code == .malformedInput)
        #expect(error?.message.contains("depth") == true)
    }

    @Test(
        "ids that could reach a path or an option are refused",
        arguments: [
            "", ".", "..", "../x", "a/b", "-a", ".hidden", "a b", "a,upperdir=/x", "a:b", "a\u{0}b", "é",
            String(repeating: "a", count: 129),
        ])
    func badIdentifiers(id: String) {
        #expect(thrown { try StoreIdentifier.validate(id, input: "layer id") }?.code == .invalidArgument)
    }

    @Test(arguments: ["a", "base", "0", "sha256.abc-def_1", String(repeating: "z", count: 128)])
    func goodIdentifiers(id: String) throws {
        try StoreIdentifier.validate(id, input: "layer id")
    }

    @Test func randomIdentifiersAreValidAndDistinct() throws {
        let ids = (0..<100).map { _ in StoreIdentifier.random() }
        #expect(Set(ids).count == 100)
        for id in ids { try StoreIdentifier.validate(id, input: "id") }
        #expect(ids.allSatisfy { $0.utf8.count == 32 })
    }
}
