import SystemPackage
import Testing

@testable import UnionMount

/// The bytes of a string literal.
private func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

/// A path from raw bytes (may be non-UTF-8).
private func path(_ raw: [UInt8]) -> FilePath { FilePath(bytes: raw) }

/// The string form of option bytes, for readable failures.
private func text(_ raw: [UInt8]) -> String { raw.readable }

@Suite("OverlayOptionString")
struct OverlayOptionStringTests {
    // MARK: - Writing

    @Test func plainLayersUpperAndWork() throws {
        let spec = OverlaySpec(
            lowerDirectories: ["/l0", "/l1"], upperDirectory: "/u", workDirectory: "/w")
        #expect(text(try spec.legacyOptionString()) == "lowerdir=/l0:/l1,upperdir=/u,workdir=/w")
    }

    @Test func readOnlyOverlayHasNoUpperOrWork() throws {
        let spec = OverlaySpec(lowerDirectories: ["/a", "/b", "/c"])
        #expect(text(try spec.legacyOptionString()) == "lowerdir=/a:/b:/c")
    }

    @Test func hostileBytesAreEscapedExactly() throws {
        let lowers: [[UInt8]] = [
            bytes("/t/sp ace"), bytes("/t/ta\tb"), bytes("/t/new\nline"), bytes("/t/com,ma"), bytes("/t/co:lon"),
            bytes("/t/back\\slash"), bytes("/t/ha#sh"), bytes("/t/eq=ual"), [0x2F, 0x74, 0x2F, 0x80, 0xFF, 0xC3],
        ]
        let upper = bytes("/t/up per,x:y")
        let work = bytes("/t/w\\:,")
        let spec = OverlaySpec(
            lowerDirectories: lowers.map(path), upperDirectory: path(upper), workDirectory: path(work))
        var expected = bytes("lowerdir=/t/sp ace:/t/ta\tb:/t/new\nline:/t/com\\,ma:/t/co\\:lon:/t/back\\\\slash")
        expected += bytes(":/t/ha#sh:/t/eq=ual:/t/") + [0x80, 0xFF, 0xC3]
        expected += bytes(",upperdir=/t/up per\\,x\\:y,workdir=/t/w\\\\\\:\\,")
        let written = try spec.legacyOptionString()
        #expect(written == expected, "\(text(written))")
        #expect(try OverlaySpec(legacyOptionString: written) == spec)
    }

    @Test func dataLayersUseDoubleColons() throws {
        let spec = OverlaySpec(
            lowerDirectories: ["/l0", "/l1"], dataDirectories: ["/d0", "/d:1"], options: OverlayOptions(metacopy: true))
        let written = try spec.legacyOptionString()
        #expect(text(written) == "lowerdir=/l0:/l1::/d0::/d\\:1,metacopy=on")
        let parsed = try OverlaySpec(legacyOptionString: written)
        #expect(parsed.lowerDirectories == ["/l0", "/l1"])
        #expect(parsed.dataDirectories == ["/d0", "/d:1"])
        #expect(parsed == spec)
    }

    @Test func oneLowerAndOneDataLayerWithoutUpper() throws {
        let spec = OverlaySpec(lowerDirectories: ["/erofs"], dataDirectories: ["/objects"])
        #expect(text(try spec.legacyOptionString()) == "lowerdir=/erofs::/objects")
    }

    @Test func everyTypedOptionInOrder() throws {
        let options = OverlayOptions(
            defaultPermissions: true, redirectDirectory: .nofollow, index: true, nfsExport: true,
            inodeNumbers: .auto, metacopy: false, volatile: true, userXattr: true, uuid: .null, verity: .off,
            fsync: .volatile, overrideCredentials: true,
            additional: [.init("context", "\"system_u:object_r:x:s0\""), .init("lazytime")])
        let spec = OverlaySpec(
            lowerDirectories: ["/l"], upperDirectory: "/u", workDirectory: "/w", options: options)
        let expected =
            "lowerdir=/l,upperdir=/u,workdir=/w,default_permissions,redirect_dir=nofollow,index=on,"
            + "nfs_export=on,xino=auto,metacopy=off,volatile,userxattr,uuid=null,verity=off,fsync=volatile,"
            + "override_creds,context=\"system_u:object_r:x:s0\",lazytime"
        let written = try spec.legacyOptionString()
        #expect(text(written) == expected)
        #expect(try OverlaySpec(legacyOptionString: written) == spec)
    }

    @Test func nooverrideCredsAndOffValues() throws {
        let options = OverlayOptions(index: false, nfsExport: false, metacopy: false, overrideCredentials: false)
        let spec = OverlaySpec(lowerDirectories: ["/a", "/b"], options: options)
        let written = try spec.legacyOptionString()
        #expect(text(written) == "lowerdir=/a:/b,index=off,nfs_export=off,metacopy=off,nooverride_creds")
        #expect(try OverlaySpec(legacyOptionString: written) == spec)
    }

    @Test func everyEnumValueWritesAndParses() throws {
        func roundTrip(_ options: OverlayOptions, _ fragment: String) throws {
            let spec = OverlaySpec(lowerDirectories: ["/a", "/b"], options: options)
            let written = try spec.legacyOptionString()
            #expect(text(written) == "lowerdir=/a:/b,\(fragment)")
            #expect(try OverlaySpec(legacyOptionString: written) == spec)
        }
        for value in OverlayOptions.RedirectDirectory.allCases {
            try roundTrip(OverlayOptions(redirectDirectory: value), "redirect_dir=\(value.rawValue)")
        }
        for value in OverlayOptions.InodeNumbers.allCases {
            try roundTrip(OverlayOptions(inodeNumbers: value), "xino=\(value.rawValue)")
        }
        for value in OverlayOptions.UUIDMode.allCases {
            try roundTrip(OverlayOptions(uuid: value), "uuid=\(value.rawValue)")
        }
        for value in OverlayOptions.Verity.allCases {
            try roundTrip(OverlayOptions(verity: value), "verity=\(value.rawValue)")
        }
        for value in OverlayOptions.Fsync.allCases {
            try roundTrip(OverlayOptions(fsync: value), "fsync=\(value.rawValue)")
        }
    }

    @Test func injectedUpperdirStaysOneLowerLayer() throws {
        let spec = OverlaySpec(
            lowerDirectories: ["x,upperdir=/etc"], upperDirectory: "/u", workDirectory: "/w")
        let written = try spec.legacyOptionString()
        #expect(text(written) == "lowerdir=x\\,upperdir=/etc,upperdir=/u,workdir=/w")
        let parsed = try OverlaySpec(legacyOptionString: written)
        #expect(parsed.lowerDirectories == ["x,upperdir=/etc"])
        #expect(parsed.upperDirectory == "/u")

        let alone = try OverlaySpec(legacyOptionString: bytes("lowerdir=x\\,upperdir=/etc"))
        #expect(alone.lowerDirectories.count == 1)
        #expect(alone.lowerDirectories.first?.bytes == bytes("x,upperdir=/etc"))
        #expect(alone.upperDirectory == nil)
    }

    @Test func lowerPathCannotStartDataLayersOrANewLayer() throws {
        let spec = OverlaySpec(lowerDirectories: ["/a::/d", ":b", "c:"], upperDirectory: "/u", workDirectory: "/w")
        let written = try spec.legacyOptionString()
        #expect(text(written) == "lowerdir=/a\\:\\:/d:\\:b:c\\:,upperdir=/u,workdir=/w")
        let parsed = try OverlaySpec(legacyOptionString: written)
        #expect(parsed.lowerDirectories == ["/a::/d", ":b", "c:"])
        #expect(parsed.dataDirectories.isEmpty)
    }

    @Test func legacyOptionLimitIsOnePageMinusTheForcedNUL() {
        #expect(OverlaySpec.legacyOptionLimit == 4095)
    }

    @Test func lengthIsNotCheckedHere() throws {
        let long = String(repeating: "a", count: 3000)
        let spec = OverlaySpec(lowerDirectories: [FilePath("/" + long), FilePath("/b" + long)])
        #expect(try spec.legacyOptionString().count > OverlaySpec.legacyOptionLimit)
    }

    @Test func invalidSpecIsRefusedBeforeWriting() {
        let spec = OverlaySpec(lowerDirectories: ["/only"])
        let error = thrown { try spec.legacyOptionString() }
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "lowerDirectories")
    }

    @Test func commaFollowedByAnLSMOptionIsRefused() throws {
        for name in ["context=x", "fscontext=x", "defcontext=x", "rootcontext=x", "seclabel", "smackfsroot=x"] {
            let spec = OverlaySpec(
                lowerDirectories: ["/ok", FilePath("/l," + name)], upperDirectory: "/u", workDirectory: "/w")
            try spec.validate()
            let error = thrown { try spec.legacyOptionString() }
            #expect(error?.code == .invalidSpec, "\(name)")
            #expect(error?.input == "lowerDirectories[1]", "\(name)")
        }
        let upper = OverlaySpec(lowerDirectories: ["/l"], upperDirectory: "/u,context=a", workDirectory: "/w")
        #expect(thrown { try upper.legacyOptionString() }?.input == "upperDirectory")
        let harmless = OverlaySpec(lowerDirectories: ["/l,contextual", "/m,xcontext=1"])
        #expect(text(try harmless.legacyOptionString()) == "lowerdir=/l\\,contextual:/m\\,xcontext=1")
    }

    // MARK: - Relative to a base

    @Test func relativeToBase() throws {
        let spec = OverlaySpec(
            lowerDirectories: ["/srv/ovl", "/srv/ovl/l/b"], dataDirectories: ["/srv/ovl/d:x"],
            upperDirectory: "/srv/ovl/c/u", workDirectory: "/srv/ovl/c/w", options: OverlayOptions(metacopy: true))
        let written = try spec.legacyOptionString(relativeTo: "/srv/ovl")
        #expect(text(written) == "lowerdir=.:l/b::d\\:x,upperdir=c/u,workdir=c/w,metacopy=on")
        let parsed = try OverlaySpec(legacyOptionString: written)
        #expect(parsed.lowerDirectories == [".", "l/b"])
        #expect(parsed.dataDirectories == ["d:x"])
        #expect(parsed.upperDirectory == "c/u")
        #expect(parsed.workDirectory == "c/w")
    }

    @Test func relativeToRoot() throws {
        let spec = OverlaySpec(lowerDirectories: ["/a/b", "/c"])
        #expect(text(try spec.legacyOptionString(relativeTo: "/")) == "lowerdir=a/b:c")
    }

    @Test func relativeToARelativeBase() throws {
        let spec = OverlaySpec(lowerDirectories: ["layers/a", "layers/b/c"])
        #expect(text(try spec.legacyOptionString(relativeTo: "layers")) == "lowerdir=a:b/c")
    }

    @Test func pathOutsideBaseIsRefusedNamingTheField() {
        let prefixOnly = OverlaySpec(
            lowerDirectories: ["/srv/ovl/a"], upperDirectory: "/srv/ovlx/u", workDirectory: "/srv/ovl/w")
        let error = thrown { try prefixOnly.legacyOptionString(relativeTo: "/srv/ovl") }
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "upperDirectory")

        let relative = OverlaySpec(lowerDirectories: ["/srv/a", "srv/b"])
        #expect(thrown { try relative.legacyOptionString(relativeTo: "/srv") }?.input == "lowerDirectories[1]")

        let data = OverlaySpec(lowerDirectories: ["/srv/a"], dataDirectories: ["/opt/d"])
        #expect(thrown { try data.legacyOptionString(relativeTo: "/srv") }?.input == "dataDirectories[0]")

        let parent = OverlaySpec(lowerDirectories: ["/srv/a", "/srv"])
        #expect(thrown { try parent.legacyOptionString(relativeTo: "/srv/a") }?.input == "lowerDirectories[1]")

        let empty = OverlaySpec(lowerDirectories: ["/a", "/b"])
        #expect(thrown { try empty.legacyOptionString(relativeTo: FilePath("")) }?.input == "base")
    }

    // MARK: - Parsing

    @Test func lastLowerdirWins() throws {
        let parsed = try OverlaySpec(legacyOptionString: bytes("lowerdir=/a:/b::/d,lowerdir=/c:/e"))
        #expect(parsed.lowerDirectories == ["/c", "/e"])
        #expect(parsed.dataDirectories.isEmpty)
    }

    @Test func emptyLowerdirClearsLayers() throws {
        let parsed = try OverlaySpec(legacyOptionString: bytes("lowerdir=/a:/b,lowerdir="))
        #expect(parsed.lowerDirectories.isEmpty)
    }

    @Test func addedLayersAreRawAndKeepOrder() throws {
        let parsed = try OverlaySpec(
            legacyOptionString: bytes("lowerdir+=/a:b,lowerdir+=/c\\d,datadir+=/e::f,datadir+=/g,upperdir=/u\\:v"))
        #expect(parsed.lowerDirectories.map(\.bytes) == [bytes("/a:b"), bytes("/c\\d")])
        #expect(parsed.dataDirectories.map(\.bytes) == [bytes("/e::f"), bytes("/g")])
        #expect(parsed.upperDirectory == "/u:v")
    }

    @Test func unknownOptionsGoToAdditionalInOrder() throws {
        let parsed = try OverlaySpec(
            legacyOptionString: bytes("ro,lowerdir=/a:/b,context=\"u:r:t:s0\",x=1=2,,=skipped,flag,k=,a\\b=c\\d"))
        #expect(
            parsed.options.additional == [
                .init("ro"), .init("context", "\"u:r:t:s0\""), .init("x", "1=2"), .init("flag"), .init("k", ""),
                .init("a\\b", "c\\d"),
            ])
        #expect(parsed.lowerDirectories == ["/a", "/b"])
    }

    @Test func upperAndWorkAreUnescapedAndLastWins() throws {
        let parsed = try OverlaySpec(
            legacyOptionString: bytes("lowerdir=/l,upperdir=/x,upperdir=/u\\,p\\\\q,workdir=/w\\:1"))
        #expect(parsed.upperDirectory?.bytes == bytes("/u,p\\q"))
        #expect(parsed.workDirectory?.bytes == bytes("/w:1"))
    }

    @Test func parsedSpecHasDefaultSourceAndFlags() throws {
        let parsed = try OverlaySpec(
            legacyOptionString: bytes("lowerdir=/a:/b,default_permissions,volatile,userxattr,override_creds"))
        #expect(parsed.source == "overlay")
        #expect(parsed.options.defaultPermissions)
        #expect(parsed.options.volatile)
        #expect(parsed.options.userXattr == true)
        #expect(parsed.options.overrideCredentials == true)
    }

    @Test func userXattrFalseAndSourceAreNotInTheString() throws {
        let spec = OverlaySpec(
            lowerDirectories: ["/a", "/b"], options: OverlayOptions(userXattr: false), source: "my-overlay")
        let written = try spec.legacyOptionString()
        #expect(text(written) == "lowerdir=/a:/b")
        let parsed = try OverlaySpec(legacyOptionString: written)
        #expect(parsed.options.userXattr == nil)
        #expect(parsed.source == "overlay")
        var expected = spec
        expected.options.userXattr = nil
        expected.source = "overlay"
        #expect(parsed == expected)
    }

    @Test(arguments: [
        ("lowerdir=/a:::/b", "more than two unescaped ':'"),
        ("lowerdir=/a:", "ends with an unescaped ':'"),
        ("lowerdir=:/a", "starts with ':'"),
        ("lowerdir=/a::/d:/b", "a regular layer follows a data-only layer"),
        ("lowerdir=/a::/d::", "ends with an unescaped ':'"),
    ])
    func lowerdirThatDoesNotSplit(input: String, reason: String) {
        let error = thrown { try OverlaySpec(legacyOptionString: bytes(input)) }
        #expect(error?.code == .malformedInput)
        #expect(error?.input == "lowerdir")
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "no error")")
    }

    @Test(arguments: [
        ("lowerdir=/a:/b,redirect_dir=sometimes", "redirect_dir"),
        ("lowerdir=/a:/b,xino=yes", "xino"),
        ("lowerdir=/a:/b,uuid=", "uuid"),
        ("lowerdir=/a:/b,verity", "verity"),
        ("lowerdir=/a:/b,fsync=ordered", "fsync"),
        ("lowerdir=/a:/b,index=yes", "index"),
        ("lowerdir=/a:/b,nfs_export=ON", "nfs_export"),
        ("lowerdir=/a:/b,metacopy", "metacopy"),
        ("lowerdir=/a:/b,volatile=1", "volatile"),
        ("lowerdir=/a:/b,userxattr=on", "userxattr"),
        ("lowerdir=/a:/b,default_permissions=", "default_permissions"),
        ("lowerdir=/a:/b,override_creds=on", "override_creds"),
        ("lowerdir=/a:/b,nooverride_creds=1", "nooverride_creds"),
        ("lowerdir", "lowerdir"),
        ("lowerdir=/a,lowerdir+=/b", "lowerdir+"),
        ("lowerdir+=/b,lowerdir=/a", "lowerdir"),
        ("lowerdir=/a,datadir+=/b", "datadir+"),
        ("datadir+=/d,lowerdir+=/b", "lowerdir+"),
        ("lowerdir+=", "lowerdir+"),
        ("lowerdir+=/a,datadir+", "datadir+"),
        ("lowerdir=/a:/b,upperdir=,workdir=/w", "upperdir"),
        ("lowerdir=/a,upperdir=/u,workdir=\\", "workdir"),
        ("lowerdir=/a:\\", "lowerdir"),
    ])
    func badOptionIsMalformedNamingIt(input: String, option: String) {
        let error = thrown { try OverlaySpec(legacyOptionString: bytes(input)) }
        #expect(error?.code == .malformedInput, "\(input)")
        #expect(error?.input == option, "\(input): \(error?.message ?? "no error")")
    }

    @Test func badEnumValueMessageNamesTheValue() {
        let error = thrown { try OverlaySpec(legacyOptionString: bytes("lowerdir=/a:/b,redirect_dir=sometimes")) }
        #expect(error?.message.contains("'sometimes'") == true)
        #expect(error?.message.contains("nofollow") == true)
    }

    @Test func nulByteAndNonUTF8RawOptionAreMalformed() {
        let nul = thrown { try OverlaySpec(legacyOptionString: bytes("lowerdir=/a:/b") + [0] + bytes(",x")) }
        #expect(nul?.code == .malformedInput)
        #expect(nul?.input == "legacyOptionString")

        let key = thrown { try OverlaySpec(legacyOptionString: bytes("lowerdir=/a:/b,k") + [0xFF]) }
        #expect(key?.code == .malformedInput)
        let value = thrown { try OverlaySpec(legacyOptionString: bytes("lowerdir=/a:/b,k=") + [0xFF]) }
        #expect(value?.code == .malformedInput)
        #expect(value?.input == "k")
    }

    @Test func nonUTF8LayerPathsParse() throws {
        let raw: [UInt8] =
            bytes("lowerdir=/x") + [0xFE] + bytes(":/y\\:") + [0x80] + bytes(",upperdir=/") + [0xC0]
            + bytes(",workdir=/w")
        let parsed = try OverlaySpec(legacyOptionString: raw)
        #expect(parsed.lowerDirectories.map(\.bytes) == [bytes("/x") + [0xFE], bytes("/y:") + [0x80]])
        #expect(parsed.upperDirectory?.bytes == [0x2F, 0xC0])
    }

    // MARK: - Round trip property

    @Test func seededRoundTripOverHostileSpecs() throws {
        var random = SplitMix64(seed: 0x5EED_0F_0E7A_7AFF)
        var accepted = 0
        var attempts = 0
        while accepted < 600 {
            attempts += 1
            try #require(attempts < 5000, "the generator produces too few valid specs")
            let spec = OverlaySpecGenerator.spec(using: &random)
            guard (try? spec.validate()) != nil else { continue }
            accepted += 1
            let written = try spec.legacyOptionString()
            let parsed = try OverlaySpec(legacyOptionString: written)
            var expected = spec
            expected.source = "overlay"
            if expected.options.userXattr == false { expected.options.userXattr = nil }
            #expect(parsed == expected, "\(text(written))")
            #expect(try parsed.legacyOptionString() == written)
            // The writer never lets a layer escape its option: exactly one lowerdir, at most one upper/work.
            let keys = OverlayEscaping.splitOptions(written).map { OverlayEscaping.splitKeyValue($0).key }
            #expect(keys.filter { $0.elementsEqual(bytes("lowerdir")) }.count == 1)
            #expect(keys.filter { $0.elementsEqual(bytes("upperdir")) }.count == (spec.isWritable ? 1 : 0))
        }
    }

    @Test func seededRoundTripRelativeToBase() throws {
        var random = SplitMix64(seed: 42)
        var accepted = 0
        var attempts = 0
        while accepted < 300 {
            attempts += 1
            try #require(attempts < 3000, "the generator produces too few valid specs")
            let base = OverlaySpecGenerator.pathBytes(using: &random, rooted: true)
            var suffixes: [[UInt8]] = []
            func under(_ suffix: [UInt8]) -> FilePath {
                suffixes.append(suffix)
                return FilePath(bytes: base + [UInt8(ascii: "/")] + suffix)
            }
            let lowerCount = Int.random(in: 1...5, using: &random)
            let lower = (0..<lowerCount).map { _ in under(OverlaySpecGenerator.pathBytes(using: &random)) }
            let writable = Bool.random(using: &random)
            let upper = writable ? under(OverlaySpecGenerator.pathBytes(using: &random)) : nil
            let work = writable ? under(OverlaySpecGenerator.pathBytes(using: &random)) : nil
            let spec = OverlaySpec(lowerDirectories: lower, upperDirectory: upper, workDirectory: work)
            guard (try? spec.validate()) != nil else { continue }
            accepted += 1
            let written = try spec.legacyOptionString(relativeTo: FilePath(bytes: base))
            let parsed = try OverlaySpec(legacyOptionString: written)
            // Expected relative form computed independently: the suffix's non-empty components, or ".".
            let relative = suffixes.map { suffix -> FilePath in
                let parts = suffix.split(separator: UInt8(ascii: "/"))
                return parts.isEmpty ? "." : FilePath(bytes: Array(parts.joined(separator: [UInt8(ascii: "/")])))
            }
            #expect(parsed.lowerDirectories == Array(relative.prefix(lowerCount)), "\(text(written))")
            #expect(parsed.upperDirectory == (writable ? relative[lowerCount] : nil))
            #expect(parsed.workDirectory == (writable ? relative[lowerCount + 1] : nil))
            #expect(written.first != UInt8(ascii: "/"))
            #expect(!written.starts(with: bytes("lowerdir=/")))
        }
    }
}

/// Random overlay specs full of bytes that mean something to some parser: separators, escapes, quotes,
/// whitespace and non-UTF-8 bytes. The only letters are `a b l x y z`, so no LSM option name (`context=`,
/// `seclabel`, `smackfs…`) can form after a comma in a path.
private enum OverlaySpecGenerator {
    static let pathAlphabet: [UInt8] = Array(" \t\n,:\\#=/\".-'*+ablxyz0".utf8) + [0x80, 0xFF, 0xC3, 0xA9, 0x01]
    static let valueAlphabet: [String] = [" ", ":", "=", "\\", "\"", "a", "é", "#", "\t", "/", "0", "'", "+"]
    static let rawKeys = ["ro", "rw", "lazytime", "x-a.b", "k#1", "é", "quiet", "nouserxattr", "a:b"]

    static func pathBytes(using random: inout SplitMix64, rooted: Bool? = nil) -> [UInt8] {
        let length = Int.random(in: 1...20, using: &random)
        var result = (0..<length).map { _ in pathAlphabet.randomElement(using: &random)! }
        if rooted ?? Bool.random(using: &random) { result.insert(UInt8(ascii: "/"), at: 0) }
        return result
    }

    static func path(using random: inout SplitMix64) -> FilePath {
        FilePath(bytes: pathBytes(using: &random))
    }

    static func optional<T>(_ values: [T], using random: inout SplitMix64) -> T? {
        Int.random(in: 0...values.count, using: &random) == 0 ? nil : values.randomElement(using: &random)
    }

    static func rawValue(using random: inout SplitMix64) -> String? {
        guard Bool.random(using: &random) else { return nil }
        let length = Int.random(in: 0...8, using: &random)
        var value = (0..<length).map { _ in valueAlphabet.randomElement(using: &random)! }.joined()
        if value.reversed().prefix(while: { $0 == "\\" }).count % 2 == 1 { value += "a" }
        return value
    }

    static func options(using random: inout SplitMix64) -> OverlayOptions {
        var options = OverlayOptions()
        options.defaultPermissions = Bool.random(using: &random)
        options.redirectDirectory = optional(OverlayOptions.RedirectDirectory.allCases, using: &random)
        options.index = optional([true, false], using: &random)
        options.nfsExport = optional([true, false], using: &random)
        options.inodeNumbers = optional(OverlayOptions.InodeNumbers.allCases, using: &random)
        options.metacopy = optional([true, false], using: &random)
        options.volatile = Bool.random(using: &random)
        options.userXattr = optional([true, false], using: &random)
        options.uuid = optional(OverlayOptions.UUIDMode.allCases, using: &random)
        options.verity = optional(OverlayOptions.Verity.allCases, using: &random)
        options.fsync = optional(OverlayOptions.Fsync.allCases, using: &random)
        options.overrideCredentials = optional([true, false], using: &random)
        options.additional = (0..<Int.random(in: 0...3, using: &random)).map { _ in
            OverlayOptions.RawOption(rawKeys.randomElement(using: &random)!, rawValue(using: &random))
        }
        return options
    }

    static func spec(using random: inout SplitMix64) -> OverlaySpec {
        // Mostly small stacks, now and then a long one.
        let lowerCount =
            Int.random(in: 0..<10, using: &random) == 0
            ? Int.random(in: 20...80, using: &random) : Int.random(in: 1...5, using: &random)
        let dataCount = Int.random(in: 0..<3, using: &random) == 0 ? Int.random(in: 1...3, using: &random) : 0
        let writable = Int.random(in: 0..<3, using: &random) != 0
        return OverlaySpec(
            lowerDirectories: (0..<lowerCount).map { _ in path(using: &random) },
            dataDirectories: (0..<dataCount).map { _ in path(using: &random) },
            upperDirectory: writable ? path(using: &random) : nil,
            workDirectory: writable ? path(using: &random) : nil,
            options: options(using: &random),
            source: Bool.random(using: &random) ? "overlay" : "src,\(Int.random(in: 0...9, using: &random))")
    }
}
