import SystemPackage
import Testing

@testable import UnionMount

/// SELinux labels with categories (`context="…:s0:c1,c2"`): one option with its commas, through every strategy.
@Suite struct QuotedOptionTests {
    static let label = "system_u:object_r:container_file_t:s0:c1,c2"
    static let quoted = "\"" + label + "\""

    static func spec(_ value: String = quoted, layers: [FilePath] = ["/a", "/b"]) -> OverlaySpec {
        OverlaySpec(
            lowerDirectories: layers,
            options: OverlayOptions(additional: [OverlayOptions.RawOption("context", value)]))
    }

    @Test func newMountAPIPassesTheLabelUnquoted() throws {
        let plan = try Mounter(features: MountPlannerTests.kernel()).plan(.overlay(Self.spec()), at: "/m")
        #expect(plan.strategy == .newMountAPI)
        let options = plan.steps.filter { if case .setString("context", _) = $0 { true } else { false } }
        #expect(options == [.setString(key: "context", value: FsconfigValue(Array(Self.label.utf8)))])
    }

    @Test func legacyMountKeepsTheQuotes() throws {
        let old = MountPlannerTests.kernel(newAPI: false, lowerdirPlus: false, fds: false)
        let plan = try Mounter(features: old).plan(.overlay(Self.spec()), at: "/m")
        #expect(plan.strategy == .legacy)
        guard case .mount(_, _, _, _, let data, nil) = plan.steps[0] else {
            Issue.record("no mount step")
            return
        }
        #expect(String(decoding: data, as: UTF8.self) == "lowerdir=/a:/b,context=\(Self.quoted)")
    }

    @Test func relativeMountKeepsTheQuotes() throws {
        let old = MountPlannerTests.kernel(newAPI: false, lowerdirPlus: false, fds: false)
        let plan = try Mounter(features: old).plan(
            .overlay(Self.spec(layers: MountPlannerTests.layers(100))), at: "/m")
        #expect(plan.strategy == .legacyRelative)
        guard case .mount(_, _, _, _, let data, _?) = plan.steps[0] else {
            Issue.record("no relative mount step")
            return
        }
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.hasSuffix(",context=\(Self.quoted)"))
        #expect(text.components(separatedBy: "context=").count == 2)
    }

    @Test func optionStringParsesTheQuotedValueAsOneKey() throws {
        let parsed = try OverlaySpec(legacyOptionString: Array("lowerdir=/a,context=\(Self.quoted),ro".utf8))
        #expect(parsed.options.additional.filter { $0.key == "context" }.map(\.value) == [Self.quoted])
        #expect(!parsed.options.additional.contains { $0.key.contains("c2") })
    }

    @Test(arguments: ["\"" + label, label + "\"", "\"a\"b\"", "\"a\",ro"])
    func badQuotesAreTypedErrorsNamingTheInput(value: String) {
        let error = #expect(throws: UnionMountError.self) {
            try Mounter(features: MountPlannerTests.kernel()).plan(.overlay(Self.spec(value)), at: "/m")
        }
        #expect(error?.input == "options.additional[0]")
    }

    @Test func quotesAreOnlyForLSMLabels() {
        let spec = OverlaySpec(
            lowerDirectories: ["/a", "/b"],
            options: OverlayOptions(additional: [OverlayOptions.RawOption("uuid", "\"a,b\"")]))
        #expect(throws: UnionMountError.self) {
            try Mounter(features: MountPlannerTests.kernel()).plan(.overlay(spec), at: "/m")
        }
    }

    /// SELinux prints the label in quotes before overlay's options (`show_sid`); a `"` in a layer path is raw.
    @Test func mountinfoKeepsAQuotedLabelAsOneSuperOption() throws {
        let line = "36 1 0:40 / /m rw,relatime - overlay overlay rw,context=\(Self.quoted),lowerdir=/a\"x:/b,xino=off\n"
        let entry = try #require(try MountTable.parse(Array(line.utf8)).first)
        #expect(entry.superOptions == ["rw", "context=\(Self.quoted)", "lowerdir=/a\"x:/b", "xino=off"])
        let report = try #require(try UnionMountReport(entry: entry))
        #expect(report.branches.map(\.path) == ["/a\"x", "/b"])
        #expect(report.options.contains("context=\(Self.quoted)"))
    }

    @Test func anUnclosedLabelQuoteRunsToTheEndOfTheField() throws {
        let line = "36 1 0:40 / /m rw - overlay overlay rw,context=\"a:b,c\n"
        let entry = try #require(try MountTable.parse(Array(line.utf8)).first)
        #expect(entry.superOptions == ["rw", "context=\"a:b,c"])
    }
}
