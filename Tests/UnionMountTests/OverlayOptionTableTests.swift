import SystemPackage
import Testing

@testable import UnionMount

/// Each typed overlay option, set alone, reaches the fsconfig(2) calls, the mount(2) string, the parser and
/// fuse-overlayfs' word list (or its refusal), all through ``OverlayOptions/table``.
@Suite struct OverlayOptionTableTests {
    static let fields = OverlayOptions.table.map(\.field)

    static func options(setting field: String) throws -> OverlayOptions {
        var options = OverlayOptions()
        try #require(OverlayOptions.table.first { $0.field == field }).example(&options)
        return options
    }

    static func spec(_ options: OverlayOptions) -> OverlaySpec {
        OverlaySpec(lowerDirectories: ["/a"], upperDirectory: "/u", workDirectory: "/w", options: options)
    }

    /// A property added to `OverlayOptions` without a row would be emitted by nothing: this fails first.
    @Test func everyStoredOptionHasOneRow() {
        let properties = Mirror(reflecting: OverlayOptions()).children.compactMap(\.label).filter { $0 != "additional" }
        #expect(Set(properties) == Set(Self.fields))
        #expect(Self.fields.count == Set(Self.fields).count)
        let keys = OverlayOptions.table.flatMap(\.keys)
        #expect(keys.count == Set(keys).count)
    }

    /// `keyValues` skips the rows when every typed option is not given; that is only right if no row emits one.
    @Test func noRowEmitsAnOptionThatIsNotGiven() throws {
        let defaults = OverlayOptions()
        #expect(defaults.typedOptionsAreNotGiven)
        for row in OverlayOptions.table { #expect(row.emit(defaults) == nil, "\(row.field)") }
        for field in Self.fields { #expect(try !Self.options(setting: field).typedOptionsAreNotGiven, "\(field)") }
        let raw = OverlayOptions(additional: [OverlayOptions.RawOption("context", "x")])
        #expect(raw.typedOptionsAreNotGiven)
        #expect(raw.keyValues.map(\.key) == ["context"])
    }

    @Test(arguments: fields)
    func oneOptionReachesEveryStrategy(field: String) throws {
        let options = try Self.options(setting: field)
        let row = try #require(OverlayOptions.table.first { $0.field == field })
        #expect(!options.isEmpty)
        let emitted = try #require(options.keyValues.first)
        #expect(options.keyValues.count == 1)
        #expect(row.keys.contains(emitted.key))

        let modern = try Mounter(features: MountPlannerTests.kernel()).plan(.overlay(Self.spec(options)), at: "/m")
        let fsconfig: MountStep =
            emitted.value.map { .setString(key: emitted.key, value: FsconfigValue(Array($0.utf8))) }
            ?? .setFlag(key: emitted.key)
        #expect(modern.steps.contains(fsconfig), "\(modern.steps)")

        let old = MountPlannerTests.kernel(newAPI: false, lowerdirPlus: false, fds: false)
        if row.newMountAPIOnly {
            let error = try #require(throws: UnionMountError.self) {
                try Mounter(features: old).plan(.overlay(Self.spec(options)), at: "/m")
            }
            #expect(error.message.contains("\(emitted.key) needs the new mount API"))
            return
        }
        let legacy = try Mounter(features: old).plan(.overlay(Self.spec(options)), at: "/m")
        guard case .mount(_, _, _, _, let data, _) = try #require(legacy.steps.first) else {
            Issue.record("no mount(2) step: \(legacy.steps)")
            return
        }
        let word = emitted.key + (emitted.value.map { "=" + $0 } ?? "")
        #expect(String(decoding: data, as: UTF8.self).hasSuffix("," + word))
        #expect(try OverlaySpec(legacyOptionString: data) == Self.spec(options))
    }

    @Test(arguments: fields)
    func oneOptionReachesFuseOverlayfsOrIsRefusedNamingIt(field: String) throws {
        let options = try Self.options(setting: field)
        let row = try #require(OverlayOptions.table.first { $0.field == field })
        let mounter = Mounter(
            features: MountPlannerTests.kernel(fuse: true, fuseOverlayfsProgram: "/usr/bin/fuse-overlayfs"))
        switch row.fuse(options) {
        case .refused:
            let error = try #require(throws: UnionMountError.self) {
                try mounter.plan(.overlay(Self.spec(options)), at: "/m", strategy: .fuseOverlayfs)
            }
            #expect(error.code == .unsupported)
            #expect(error.input == "options.\(field)")
        case .word(let word):
            let plan = try mounter.plan(.overlay(Self.spec(options)), at: "/m", strategy: .fuseOverlayfs)
            guard case .spawn(_, let arguments) = try #require(plan.steps.first) else {
                Issue.record("no spawn step: \(plan.steps)")
                return
            }
            let text = arguments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
            #expect(text.contains(word), "\(text)")
        case .none:
            _ = try mounter.plan(.overlay(Self.spec(options)), at: "/m", strategy: .fuseOverlayfs)
        }
    }
}
