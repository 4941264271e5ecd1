import Foundation
import Testing

@testable import UnionMount
@testable import UnionMountStore

@Suite struct JSONReaderTests {
    func parse(_ text: String) throws -> JSONValue { try JSONReader.parse(Array(text.utf8), file: "t.json") }

    @Test("values of every kind, members in order, escapes decoded")
    func values() throws {
        let value = try parse(
            #" {"b": [1, -2.5e3, true, false, null], "a": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "": {}} "#)
        guard case .object(let members) = value else {
            Issue.record("not an object")
            return
        }
        #expect(members.map(\.key) == ["b", "a", ""])
        #expect(members[0].value == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(members[1].value == .string("x\"\\/\u{8}\u{c}\n\r\té😀"))
        #expect(members[0].value.serialized == Array(#"[1,-2.5e3,true,false,null]"#.utf8))
        #expect(try JSONReader.parse(value.serialized, file: "again") == value)
        #expect(JSONValue.number("12").integer == 12)
        #expect(JSONValue.number("1.0").integer == nil)
        #expect(JSONValue.number("1e2").integer == nil)
        #expect(JSONValue.number("99999999999999999999").integer == nil)
    }

    @Test(
        "what RFC 8259 refuses, and repeated keys, are malformed and say where",
        arguments: [
            ("", "(top level)"), ("{", "(top level)"), ("[1,]", "[1]"), ("{\"a\":1,}", "(top level)"),
            ("{'a': 1}", "(top level)"), ("[01]", "[0]"), ("[+1]", "[0]"), ("[1.]", "[0]"), ("[.5]", "[0]"),
            ("[1e]", "[0]"), ("[NaN]", "[0]"), ("[Infinity]", "[0]"), ("{\"a\": tru}", "a"), ("[\"\\x\"]", "[0]"),
            ("[\"\\ud800\"]", "[0]"), ("[\"\\udc00\"]", "[0]"), ("[\"\\ud800\\u0041\"]", "[0]"),
            ("[\"a\nb\"]", "[0]"), ("[\"\\u12\"]", "[0]"), ("{\"a\": 1} x", "(top level)"), ("// c\n1", "(top level)"),
            ("\u{FEFF}{}", "(top level)"), ("{\"a\": 1, \"a\": 2}", "a"),
            ("{\"m\": {\"d\": 1, \"\\u0064\": 2}}", "m.d"),
            ("{\"x.y\": [{\"k\": 1, \"k\": 1}]}", "[\"x.y\"][0].k"),
        ])
    func malformed(text: String, path: String) {
        let error = #expect(throws: UnionMountError.self) { try parse(text) }
        #expect(error?.code == .malformedInput)
        #expect(error?.input == "t.json: \(path)", "\(text.debugDescription): \(error?.message ?? "")")
        #expect(error?.message.hasPrefix("t.json: \(path): ") == true)
    }

    @Test("bytes that are not UTF-8 inside a string are refused; outside one they are not JSON")
    func notUTF8() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0xFF]] {
            let error = #expect(throws: UnionMountError.self) { try JSONReader.parse(bytes, file: "b") }
            #expect(error?.code == .malformedInput)
        }
    }

    @Test("nesting stops at the depth limit, below the stack's")
    func depth() throws {
        let ok =
            String(repeating: "[", count: JSONReader.maximumDepth)
            + String(repeating: "]", count: JSONReader.maximumDepth)
        _ = try parse(ok)
        let deep = String(repeating: "[", count: 100_000)
        let error = #expect(throws: UnionMountError.self) { try parse(deep) }
        #expect(error?.message.contains("nested deeper") == true)
    }

    /// Whatever this reader accepts, Foundation's JSONSerialization accepts too (it is the stricter of the two),
    /// and both read the same values.
    @Test("accepted documents are a subset of Foundation's, with the same values")
    func subsetOfFoundation() throws {
        for text in [
            #"{"a": [1, 2, {"b": null}], "c": "\u00e9", "d": -0.5, "e": 1E+2}"#, "[]", "{}", "\"x\"", "0", "-0",
            #"[" \/ "]"#,
        ] {
            let ours = try parse(text)
            let theirs = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            #expect(Self.same(ours, theirs), "\(text)")
        }
    }

    static func same(_ ours: JSONValue, _ theirs: Any) -> Bool {
        switch ours {
        case .null: return theirs is NSNull
        case .bool(let value): return (theirs as? Bool) == value
        case .number(let text): return (theirs as? NSNumber)?.doubleValue == Double(text)
        case .string(let text): return (theirs as? String) == text
        case .array(let elements):
            guard let array = theirs as? [Any], array.count == elements.count else { return false }
            return zip(elements, array).allSatisfy { same($0, $1) }
        case .object(let members):
            guard let object = theirs as? [String: Any], object.count == members.count else { return false }
            return members.allSatisfy { member in object[member.key].map { same(member.value, $0) } ?? false }
        }
    }
}
