import SystemPackage
import Testing

@testable import UnionMount

/// ``MountEntry`` as a value: decoded once into storage of its own, which no other entry shares, and the one
/// builder every parser uses decodes exactly as the reference decoder does.
struct MountEntryValueTests {
    static func line(_ index: Int) -> String {
        "\(index + 20) 1 0:\(index + 40) / /srv/mnt\\040\(index) rw,relatime shared:\(index) - tmpfs tmpfs "
            + "rw,size=\(index)k,inode64"
    }

    @Test("a kept entry holds its own bytes only, not the table's")
    func keptEntryDoesNotKeepTheTable() throws {
        let text = (0..<2000).map(Self.line).joined(separator: "\n")
        var kept: MountEntry
        do {
            let entries = try MountTable.parse(Array(text.utf8))
            #expect(entries.count == 2000)
            kept = entries[1234]
        }
        // The table was 150 KB; the entry's storage is its own, a few dozen bytes more than its fields.
        #expect(text.utf8.count > 100_000)
        #expect(Int(kept.storage.header.size) < Self.line(1234).utf8.count)
        var storage = kept.storage
        kept = MountEntry(mountPoint: "/", filesystemType: "none", source: "")
        #expect(isKnownUniquelyReferenced(&storage))
        _ = kept
    }

    @Test("fields are the decoded values, options are views that count and search")
    func fieldsAndOptions() throws {
        let entry = try #require(try MountTable.parse(Array(Self.line(7).utf8)).first)
        #expect(entry.mountID == 27 && entry.parentID == 1 && entry.major == 0 && entry.minor == 47)
        #expect(entry.mountPoint == "/srv/mnt 7")
        #expect(entry.root == "/")
        #expect(entry.optionalFields == [.shared(7)])
        #expect(entry.mountOptions == ["rw", "relatime"])
        #expect(entry.mountOptions.count == 2 && entry.mountOptions.contains("relatime"))
        #expect(!entry.mountOptions.contains("rel"))
        #expect(entry.superOptions.bytes(at: 1) == Array("size=7k".utf8))
        #expect(Array(entry.superOptions) == ["rw", "size=7k", "inode64"])
        #expect(entry.superOptions.description == "rw,size=7k,inode64")
        #expect(entry.description == Self.line(7))
        let again = try #require(try MountTable.parse(Array(entry.description.utf8)).first)
        #expect(again == entry && again.hashValue == entry.hashValue)
    }

    /// Fields from an alphabet of the bytes the decoder treats specially, at every length around the
    /// eight-byte steps of its scan.
    static func randomField(_ generator: inout SystemRandomNumberGenerator, length: Int) -> [UInt8] {
        let alphabet = Array("ab\\0137,\"=context".utf8)
        return (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
    }

    @Test("the builder decodes fields and option lists exactly as the reference decoder")
    func builderMatchesTheReference() {
        var generator = SystemRandomNumberGenerator()
        var builder = MountEntryBuilder()
        defer { builder.deallocate() }
        for round in 0..<3000 {
            let field = Self.randomField(&generator, length: round % 40)
            let list = round % 3 == 0 ? Array("context=\"".utf8) + field : field
            var expected: [[UInt8]] = []
            list.withUnsafeBufferPointer { buffer in
                MountTableEscaping.forEachOption(of: buffer) { expected.append(MountTableEscaping.decode($0)) }
            }
            field.withUnsafeBufferPointer { builder.escaped($0) }
            for _ in 0..<6 { builder.plain([]) }
            list.withUnsafeBufferPointer { builder.escapedList($0) }
            let storage = builder.finish()
            let options = MountEntry.Options(storage: storage, list: .superOptions)
            #expect(storage.withBytes(.root) { Array($0) } == MountTableEscaping.decode(field), "\(field.readable)")
            #expect(options.bytes == expected, "\(list.readable)")
        }
    }
}
