import SystemPackage
import Testing

@testable import UnionMount

private func parse(_ text: String) throws(UnionMountError) -> AufsSpec {
    try AufsSpec(optionString: Array(text.utf8))
}

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

// MARK: - Building

@Suite("aufs option string: building")
struct AufsOptionStringBuildingTests {
    @Test func classicDockerLayout() throws {
        let diff = "/var/lib/docker/aufs/diff/"
        let container = "4c1f3b2a9d8e7f60a1b2c3d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f7081"
        let layers = [
            "9e07c3a1b2d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f708192a3b4c5d6e7",
            "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809",
            "b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4",
            "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "deadbeefcafebabe0123456789abcdef0123456789abcdefdeadbeefcafebabe",
        ]
        let spec = AufsSpec(
            branches: [AufsBranch(FilePath(diff + container), .readWrite)]
                + ([container + "-init"] + layers).map {
                    AufsBranch(FilePath(diff + $0), .readOnly, attributes: [.whiteout])
                },
            options: AufsOptions(
                externalInodeNumbers: .path("/dev/shm/aufs.xino"), directIO: true,
                directoryPermissionFromTopOnly: true))
        let expected =
            "br:/var/lib/docker/aufs/diff/4c1f3b2a9d8e7f60a1b2c3d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f7081=rw"
            + ":/var/lib/docker/aufs/diff/4c1f3b2a9d8e7f60a1b2c3d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f7081-init=ro+wh"
            + ":/var/lib/docker/aufs/diff/9e07c3a1b2d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f708192a3b4c5d6e7=ro+wh"
            + ":/var/lib/docker/aufs/diff/1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809=ro+wh"
            + ":/var/lib/docker/aufs/diff/b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4=ro+wh"
            + ":/var/lib/docker/aufs/diff/0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0=ro+wh"
            + ":/var/lib/docker/aufs/diff/deadbeefcafebabe0123456789abcdef0123456789abcdefdeadbeefcafebabe=ro+wh"
            + ",dio,xino=/dev/shm/aufs.xino,dirperm1"
        #expect(text(try spec.optionString()) == expected)
        #expect(try parse(expected) == spec)
    }

    @Test func branchElement() {
        #expect(text(AufsBranch("/a", .readWrite).optionBytes) == "/a=rw")
        #expect(text(AufsBranch("/a", .readWrite, attributes: [.noLinkedWhiteout]).optionBytes) == "/a=rw+nolwh")
        #expect(
            text(AufsBranch("rel/b", .realReadOnly, attributes: [.whiteout, .copyUpOnOpenAll]).optionBytes)
                == "rel/b=rr+wh+coo_all")
        let odd = FilePath(bytes: Array("/x".utf8) + [0xFF, 0x20, 0x2B])
        #expect(AufsBranch(odd).optionBytes == Array("/x".utf8) + [0xFF, 0x20, 0x2B] + Array("=ro".utf8))
    }

    @Test func everyTypedOptionOn() throws {
        let options = AufsOptions(
            externalInodeNumbers: .path("/x/aufs.xino"), truncateXino: true, userDirectBranchAccess: .notify,
            directIO: true, directoryPermissionFromTopOnly: true, pseudoLinks: false, showWhiteouts: true,
            createPolicy: .topDownMostFreeSpace(lowWatermark: 1_048_576, seconds: 60), copyUpPolicy: .bottomUpParent,
            opaqueDirectories: .always, directoryWhiteoutThreshold: 5, readdirCacheSeconds: 30,
            readdirBlockSize: 4096, readdirHashSize: 64, sumFreeSpace: true, warnPermission: false, verbose: true,
            directoryRename: true,
            additional: [.init("acl"), .init("context", "system_u:object_r:container_file_t:s0")])
        #expect(
            options.optionStrings == [
                "dio", "xino=/x/aufs.xino", "trunc_xino", "dirperm1", "udba=notify", "noplink", "shwh",
                "create=tdmfs:1048576:60", "cpup=bup", "diropq=a", "dirwh=5", "rdcache=30", "rdblk=4096",
                "rdhash=64", "sum", "nowarn_perm", "verbose", "dirren", "acl",
                "context=system_u:object_r:container_file_t:s0",
            ])
        let spec = AufsSpec(branches: [AufsBranch("/top", .readWrite)], options: options)
        #expect(try parse(text(try spec.optionString())) == spec)
    }

    @Test func everyTypedOptionOff() {
        let options = AufsOptions(
            externalInodeNumbers: .disabled, truncateXino: false,
            userDirectBranchAccess: AufsOptions.UserDirectBranchAccess.none,
            directIO: false, directoryPermissionFromTopOnly: false, pseudoLinks: true, showWhiteouts: false,
            createPolicy: .mostFreeSpace(seconds: 60), copyUpPolicy: .topDownParent, opaqueDirectories: .whenWhiteouted,
            readdirBlockSize: 0, sumFreeSpace: false, warnPermission: true, verbose: false, directoryRename: false)
        #expect(
            options.optionStrings == [
                "nodio", "noxino", "notrunc_xino", "nodirperm1", "udba=none", "plink", "noshwh", "create=mfs:60",
                "cpup=tdp", "diropq=w", "rdblk=0", "nosum", "warn_perm", "noverbose", "nodirren",
            ])
        #expect(AufsOptions().optionStrings.isEmpty)
    }

    @Test(
        arguments: [
            (AufsOptions.CreatePolicy.topDownParent, "tdp"),
            (.roundRobin, "rr"),
            (.mostFreeSpace(seconds: nil), "mfs"),
            (.mostFreeSpace(seconds: 60), "mfs:60"),
            (.topDownMostFreeSpace(lowWatermark: 100, seconds: nil), "tdmfs:100"),
            (.topDownMostFreeSpace(lowWatermark: 100, seconds: 5), "tdmfs:100:5"),
            (.mostFreeSpaceRoundRobin(lowWatermark: 7, seconds: nil), "mfsrr:7"),
            (.mostFreeSpaceRoundRobin(lowWatermark: 7, seconds: 0), "mfsrr:7:0"),
            (.parentMostFreeSpace(seconds: nil), "pmfs"),
            (.parentMostFreeSpace(seconds: 3600), "pmfs:3600"),
            (.parentMostFreeSpaceRoundRobin(lowWatermark: 9, seconds: nil), "pmfsrr:9"),
            (.parentMostFreeSpaceRoundRobin(lowWatermark: 9, seconds: 30), "pmfsrr:9:30"),
        ])
    func createPolicySpelling(policy: AufsOptions.CreatePolicy, spelled: String) throws {
        #expect(AufsOptions(createPolicy: policy).optionStrings == ["create=" + spelled])
        #expect(try parse("br:/a,create=" + spelled).options.createPolicy == policy)
    }

    @Test func nonUTF8XinoPathSurvives() throws {
        let xino = FilePath(bytes: Array("/tmp/x".utf8) + [0xC3, 0x28, 0x3A, 0x3D])
        let spec = AufsSpec(branches: [AufsBranch("/a", .readWrite)], options: .init(externalInodeNumbers: .path(xino)))
        let data = try spec.optionString()
        #expect(data == Array("br:/a=rw,xino=/tmp/x".utf8) + [0xC3, 0x28, 0x3A, 0x3D])
        #expect(spec.options.optionStrings == ["xino=/tmp/x\\xC3(:="])
        #expect(try AufsSpec(optionString: data) == spec)
    }

    @Test func optionStringValidatesFirst() {
        let error = thrown { _ = try AufsSpec(branches: []).optionString() }
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "branches")
    }
}

// MARK: - Parsing

@Suite("aufs option string: parsing")
struct AufsOptionStringParsingTests {
    @Test func classicDirs() throws {
        let spec = try parse("dirs=./A:./B")
        #expect(spec.branches == [AufsBranch("./A", .readWrite), AufsBranch("./B", .readOnly)])
        #expect(spec.options == AufsOptions())
    }

    @Test func dirsWithColonIsNotABranchList() throws {
        let spec = try parse("br:/a,dirs:/b")
        #expect(spec.branches == [AufsBranch("/a", .readWrite)])
        #expect(spec.options.additional == [.init("dirs:/b")])
    }

    @Test func brColonAndEqualsAreTheSame() throws {
        #expect(try parse("br:/a=rw:/b=ro+wh") == parse("br=/a=rw:/b=ro+wh"))
    }

    @Test func severalListsAccumulate() throws {
        let spec = try parse("br:/a:/b,br=/c,dirs=/d=rr")
        #expect(
            spec.branches == [
                AufsBranch("/a", .readWrite), AufsBranch("/b"), AufsBranch("/c"), AufsBranch("/d", .realReadOnly),
            ])
        // The default permission follows the index across lists: only the very first branch is rw.
        #expect(try parse("br:/a=ro,br:/b").branches == [AufsBranch("/a"), AufsBranch("/b")])
    }

    @Test func laterEmptyElementEndsTheList() throws {
        #expect(try parse("br:/a=rw::/b=ro,dio").branches == [AufsBranch("/a", .readWrite)])
        #expect(try parse("br:/a=rw::/b=ro,dio").options.directIO == true)
        #expect(try parse("br:/a=rw:").branches == [AufsBranch("/a", .readWrite)])
    }

    @Test func permissionForms() throws {
        let spec = try parse("br:/top:/empty=:/plain=ro:/real=rr+wh+icex:/w=rw+nolwh+moo")
        #expect(
            spec.branches == [
                AufsBranch("/top", .readWrite), AufsBranch("/empty", .readOnly), AufsBranch("/plain", .readOnly),
                AufsBranch("/real", .realReadOnly, attributes: [.whiteout, .ignoreCopyErrorsAll]),
                AufsBranch("/w", .readWrite, attributes: [.noLinkedWhiteout, .moveUpOnOpen]),
            ])
        // The path ends at the first '='; '+' belongs to the path before it.
        #expect(try parse("br:/a+b=ro+wh").branches == [AufsBranch("/a+b", .readOnly, attributes: [.whiteout])])
    }

    @Test func branchVerbsApplyInOrder() throws {
        let spec = try parse("br:/a=rw,append:/b=ro+wh,prepend:/c,add:1:/d=rr,ins:0x1:/e,del:/b,mod:/a=ro+wh")
        #expect(
            spec.branches == [
                AufsBranch("/c", .readWrite), AufsBranch("/e", .readOnly), AufsBranch("/d", .realReadOnly),
                AufsBranch("/a", .readOnly, attributes: [.whiteout]),
            ])
        #expect(try parse("append=/x,append:/y").branches == [AufsBranch("/x"), AufsBranch("/y")])
        #expect(try parse("add:0:/x").branches == [AufsBranch("/x", .readWrite)])
    }

    @Test func aliases() throws {
        let spec = try parse(
            "br:/a,create_policy=round-robin,copyup=bottom-up-parent,diropq=whiteouted,udba=fsnotify,v")
        #expect(spec.options.createPolicy == .roundRobin)
        #expect(spec.options.copyUpPolicy == .bottomUpParent)
        #expect(spec.options.opaqueDirectories == .whenWhiteouted)
        #expect(spec.options.userDirectBranchAccess == .notify)
        #expect(spec.options.verbose == true)
        #expect(try parse("br:/a,copyup_policy=bottom-up").options.copyUpPolicy == .bottomUp)
        #expect(try parse("br:/a,cpup=top-down-parent").options.copyUpPolicy == .topDownParent)
        #expect(try parse("br:/a,diropq=always").options.opaqueDirectories == .always)
        #expect(try parse("br:/a,create=top-down-parent").options.createPolicy == .topDownParent)
        #expect(try parse("br:/a,create=most-free-space").options.createPolicy == .mostFreeSpace(seconds: nil))
        #expect(try parse("br:/a,create=most-free-space:30").options.createPolicy == .mostFreeSpace(seconds: 30))
        #expect(try parse("br:/a,udba=reval").options.userDirectBranchAccess == .reval)
    }

    @Test(arguments: ["quiet", "q", "silent", "noverbose"])
    func quietAliases(alias: String) throws {
        #expect(try parse("br:/a,verbose," + alias).options.verbose == false)
    }

    @Test func lastRepeatedOptionWins() throws {
        let options = try parse("br:/a,dio,nodio,xino=/x,noxino,rdcache=5,rdcache=7").options
        #expect(options.directIO == false)
        #expect(options.externalInodeNumbers == .disabled)
        #expect(options.readdirCacheSeconds == 7)
    }

    @Test func procMountsTextReplays() throws {
        // §3.2, brs=0: branches last, si= first; `\040` already unescaped.
        let spec = try parse("rw,relatime,si=9c1b2e7f40a35d18,noplink,br:/day1=rw:/base dir=ro")
        #expect(spec.branches == [AufsBranch("/day1", .readWrite), AufsBranch("/base dir", .readOnly)])
        #expect(spec.options.pseudoLinks == false)
        #expect(spec.options.additional == [.init("rw"), .init("relatime")])
    }

    @Test func kernelNumbers() throws {
        let options = try parse("br:/a,dirwh=0x10,rdcache=010,rdblk=def,rdhash=def").options
        #expect(options.directoryWhiteoutThreshold == 16)
        #expect(options.readdirCacheSeconds == 8)
        #expect(options.readdirBlockSize == 512)
        #expect(options.readdirHashSize == 32)
        #expect(try parse("br:/a,rdblk=+4096,rdhash=0").options.readdirBlockSize == 4096)
    }

    @Test func syntaxOnlyOutOfRangeIsLeftToValidate() throws {
        let spec = try parse("br:/a=rw+wh,rdcache=4000")
        #expect(spec.options.readdirCacheSeconds == 4000)
        #expect(thrown { try spec.validate() }?.code == .invalidSpec)
    }

    @Test func truncXinoForms() throws {
        #expect(try parse("br:/a,trunc_xino").options.truncateXino == true)
        #expect(try parse("br:/a,notrunc_xino").options.truncateXino == false)
        let spec = try parse("br:/a,trunc_xino=/a")
        #expect(spec.options.truncateXino == nil)
        #expect(spec.options.additional == [.init("trunc_xino", "/a")])
    }

    @Test func unknownKeysKeptInOrder() throws {
        let spec = try parse("br:/a,acl,context=system_u:object_r:x_t:s0,wsum,empty=")
        #expect(
            spec.options.additional == [
                .init("acl"), .init("context", "system_u:object_r:x_t:s0"), .init("wsum"), .init("empty", ""),
            ])
    }

    @Test func emptyElementsAreSkipped() throws {
        let spec = try parse(",br:/a,,dio,=junk,")
        #expect(spec.branches == [AufsBranch("/a", .readWrite)])
        #expect(spec.options == AufsOptions(directIO: true))
        #expect(try parse("") == AufsSpec(branches: []))
    }

    @Test func nonUTF8BranchPaths() throws {
        let data = Array("br:/l".utf8) + [0xFE, 0x80] + Array("=ro+wh".utf8)
        let spec = try AufsSpec(optionString: data)
        #expect(
            spec.branches == [AufsBranch(FilePath(bytes: Array("/l".utf8) + [0xFE, 0x80]), attributes: [.whiteout])])
    }

    @Test(
        arguments: [
            "br:/a\u{0},dio", "br", "br=", "dirs=", "br::/a", "br:=rw", "br:/a=+wh", "br:/a,xino", "br:/a,xino=",
            "br:/a,noxino=1", "br:/a,dio=1", "br:/a,v=1", "br:/a,udba=sometimes", "br:/a,udba", "br:/a,create=mfs:abc",
            "br:/a,create=tdmfs", "br:/a,create=bogus", "br:/a,create=rr:5", "br:/a,cpup=sideways", "br:/a,diropq=x",
            "br:/a,rdcache=ten", "br:/a,dirwh=99999999999999999999", "br:/a,rdblk=", "br:/a,rdhash=0x",
            "br:/a,rdcache=08", "br:/a,add:x:/b", "br:/a,add:5:/b", "br:/a,add:-1:/b", "br:/a,add:/b",
            "br:/a,del:/nope", "br:/a,del", "br:/a,mod:/a", "br:/a,mod:/zz=ro", "br:/a,si", "append:",
        ])
    func malformed(data: String) {
        let error = thrown { _ = try parse(data) }
        #expect(error?.code == .malformedInput)
        #expect(error?.input != nil)
    }

    @Test func unknownPermissionNamesTheBranch() {
        let error = thrown { _ = try parse("br:/a=rw:/b=xx,dio") }
        #expect(error?.code == .malformedInput)
        #expect(error?.input == "/b=xx")
        #expect(error?.message.contains("xx") == true)
    }

    @Test func unknownAttributeNamesTheBranch() {
        let error = thrown { _ = try parse("br:/a=rw:/b=ro+wh+bogus") }
        #expect(error?.code == .malformedInput)
        #expect(error?.input == "/b=ro+wh+bogus")
    }

    @Test func nonUTF8KeyIsMalformed() {
        let error = thrown { _ = try AufsSpec(optionString: Array("br:/a,".utf8) + [0xFF] + Array("=1".utf8)) }
        #expect(error?.code == .malformedInput)
        let valueError = thrown { _ = try AufsSpec(optionString: Array("br:/a,k=".utf8) + [0xFF]) }
        #expect(valueError?.code == .malformedInput)
    }
}

// MARK: - Validation

@Suite("aufs spec validation")
struct AufsSpecValidationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var spec: AufsSpec
        var input: String
        var testDescription: String { name }
    }

    private static func spec(_ branches: [AufsBranch]) -> AufsSpec { AufsSpec(branches: branches) }
    private static let good = [AufsBranch("/top", .readWrite), AufsBranch("/low", .readOnly, attributes: [.whiteout])]
    private static func spec(_ options: AufsOptions) -> AufsSpec { AufsSpec(branches: good, options: options) }
    private static func raw(_ key: String, _ value: String? = nil) -> AufsSpec {
        spec(AufsOptions(additional: [.init(key, value)]))
    }

    static let refused: [Case] = [
        Case(name: "no branches", spec: spec([]), input: "branches"),
        Case(
            name: "empty path", spec: spec([AufsBranch("/top", .readWrite), AufsBranch("")]),
            input: "branches[1].path"),
        Case(name: "comma in path", spec: spec([AufsBranch("/a,b")]), input: "branches[0].path"),
        Case(name: "colon in path", spec: spec([AufsBranch("/top"), AufsBranch("/a:b")]), input: "branches[1].path"),
        Case(name: "equals in path", spec: spec([AufsBranch("/a=b")]), input: "branches[0].path"),
        Case(
            name: "wh on rw", spec: spec([AufsBranch("/a", .readWrite, attributes: [.whiteout])]),
            input: "branches[0].attributes[0]"),
        Case(
            name: "nolwh on ro",
            spec: spec([AufsBranch("/a", .readWrite), AufsBranch("/b", attributes: [.whiteout, .noLinkedWhiteout])]),
            input: "branches[1].attributes[1]"),
        Case(
            name: "moo on rr",
            spec: spec([AufsBranch("/a", .readWrite), AufsBranch("/b", .realReadOnly, attributes: [.moveUpOnOpen])]),
            input: "branches[1].attributes[0]"),
        Case(
            name: "coo_reg with coo_all",
            spec: spec([
                AufsBranch("/a", .readWrite),
                AufsBranch("/b", attributes: [.copyUpOnOpenRegular, .copyUpOnOpenAll]),
            ]),
            input: "branches[1].attributes[1]"),
        Case(
            name: "coo_all with moo",
            spec: spec([AufsBranch("/a", .readWrite, attributes: [.copyUpOnOpenAll, .fhsm, .moveUpOnOpen])]),
            input: "branches[0].attributes[2]"),
        Case(
            name: "xino with comma", spec: spec(AufsOptions(externalInodeNumbers: .path("/tmp/a,b"))),
            input: "options.externalInodeNumbers"),
        Case(
            name: "empty xino", spec: spec(AufsOptions(externalInodeNumbers: .path(""))),
            input: "options.externalInodeNumbers"),
        Case(
            name: "rdcache 3601", spec: spec(AufsOptions(readdirCacheSeconds: 3601)),
            input: "options.readdirCacheSeconds"),
        Case(
            name: "rdcache -1", spec: spec(AufsOptions(readdirCacheSeconds: -1)), input: "options.readdirCacheSeconds"),
        Case(
            name: "dirwh -1", spec: spec(AufsOptions(directoryWhiteoutThreshold: -1)),
            input: "options.directoryWhiteoutThreshold"),
        Case(
            name: "dirwh above Int32", spec: spec(AufsOptions(directoryWhiteoutThreshold: Int(Int32.max) + 1)),
            input: "options.directoryWhiteoutThreshold"),
        Case(name: "rdblk 1", spec: spec(AufsOptions(readdirBlockSize: 1)), input: "options.readdirBlockSize"),
        Case(name: "rdblk 254", spec: spec(AufsOptions(readdirBlockSize: 254)), input: "options.readdirBlockSize"),
        Case(name: "rdblk -1", spec: spec(AufsOptions(readdirBlockSize: -1)), input: "options.readdirBlockSize"),
        Case(name: "rdhash -1", spec: spec(AufsOptions(readdirHashSize: -1)), input: "options.readdirHashSize"),
        Case(
            name: "mfs 3601 s", spec: spec(AufsOptions(createPolicy: .mostFreeSpace(seconds: 3601))),
            input: "options.createPolicy"),
        Case(
            name: "negative watermark",
            spec: spec(AufsOptions(createPolicy: .topDownMostFreeSpace(lowWatermark: -1, seconds: nil))),
            input: "options.createPolicy"),
        Case(name: "raw key with comma", spec: raw("a,b"), input: "options.additional[0]"),
        Case(name: "raw value with comma", spec: raw("k", "v,w"), input: "options.additional[0]"),
        Case(name: "raw empty key", spec: raw(""), input: "options.additional[0]"),
        Case(name: "raw key with equals", spec: raw("k=v"), input: "options.additional[0]"),
        Case(name: "raw key with NUL", spec: raw("k\u{0}"), input: "options.additional[0]"),
        Case(name: "raw value with NUL", spec: raw("k", "v\u{0}"), input: "options.additional[0]"),
        Case(name: "raw br", spec: raw("br", "/x"), input: "options.additional[0]"),
        Case(name: "raw br colon form", spec: raw("br:/x"), input: "options.additional[0]"),
        Case(name: "raw dirs", spec: raw("dirs", "/x"), input: "options.additional[0]"),
        Case(name: "raw add", spec: raw("add", "1:/x"), input: "options.additional[0]"),
        Case(name: "raw ins", spec: raw("ins:1:/x"), input: "options.additional[0]"),
        Case(name: "raw append", spec: raw("append", "/x"), input: "options.additional[0]"),
        Case(name: "raw append colon form", spec: raw("append:/x"), input: "options.additional[0]"),
        Case(name: "raw prepend", spec: raw("prepend", "/x"), input: "options.additional[0]"),
        Case(name: "raw del", spec: raw("del", "/low"), input: "options.additional[0]"),
        Case(name: "raw mod", spec: raw("mod:/low=rw"), input: "options.additional[0]"),
        Case(name: "raw typed flag", spec: raw("dio"), input: "options.additional[0]"),
        Case(name: "raw typed alias", spec: raw("quiet"), input: "options.additional[0]"),
        Case(name: "raw typed value", spec: raw("xino", "/tmp/x"), input: "options.additional[0]"),
        Case(name: "raw trunc_xino flag", spec: raw("trunc_xino"), input: "options.additional[0]"),
        Case(name: "raw si", spec: raw("si", "9c1b"), input: "options.additional[0]"),
        Case(
            name: "second raw option",
            spec: spec(AufsOptions(additional: [.init("acl"), .init("append", "/x")])),
            input: "options.additional[1]"),
    ]

    @Test(arguments: refused)
    func refuses(_ refused: Case) {
        let error = thrown { try refused.spec.validate() }
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == refused.input)
    }

    @Test func duplicateNamesBothIndices() {
        let spec = AufsSpec(branches: [
            AufsBranch("/a", .readWrite), AufsBranch("/b"), AufsBranch("/c"), AufsBranch("/b/"),
        ])
        let error = thrown { try spec.validate() }
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "branches[3].path")
        #expect(error?.message.contains("branch 3") == true)
        #expect(error?.message.contains("branch 1") == true)
    }

    static let accepted: [Case] = [
        Case(name: "rdblk 0", spec: spec(AufsOptions(readdirBlockSize: 0)), input: ""),
        Case(
            name: "rdblk 255 (aufs refuses only 0 < n < NAME_MAX)", spec: spec(AufsOptions(readdirBlockSize: 255)),
            input: ""),
        Case(name: "rdblk 256", spec: spec(AufsOptions(readdirBlockSize: 256)), input: ""),
        Case(name: "rdcache 0", spec: spec(AufsOptions(readdirCacheSeconds: 0)), input: ""),
        Case(name: "rdcache 3600", spec: spec(AufsOptions(readdirCacheSeconds: 3600)), input: ""),
        Case(name: "dirwh 0", spec: spec(AufsOptions(directoryWhiteoutThreshold: 0)), input: ""),
        Case(name: "rdhash 0", spec: spec(AufsOptions(readdirHashSize: 0)), input: ""),
        Case(name: "mfs 3600 s", spec: spec(AufsOptions(createPolicy: .mostFreeSpace(seconds: 3600))), input: ""),
        Case(
            name: "more than 127 branches",
            spec: AufsSpec(
                branches: [AufsBranch("/top", .readWrite)] + (1..<200).map { AufsBranch(FilePath("/l/\($0)")) }),
            input: ""),
        Case(
            name: "unpin (aufs drops it)", spec: spec([AufsBranch("/a", .readWrite, attributes: [.unpin])]), input: ""),
        Case(
            name: "rr+wh and rw+nolwh+moo",
            spec: spec([
                AufsBranch("/a", .readWrite, attributes: [.noLinkedWhiteout, .moveUpOnOpen]),
                AufsBranch("/b", .realReadOnly, attributes: [.whiteout, .copyUpOnOpenRegular, .ignoreCopyErrorsAll]),
            ]),
            input: ""),
        Case(name: "relative branch", spec: spec([AufsBranch("./A", .readWrite), AufsBranch("B")]), input: ""),
        Case(name: "non-UTF-8 branch", spec: spec([AufsBranch(FilePath(bytes: [0x2F, 0xFF, 0x20]))]), input: ""),
        Case(
            name: "xino with colon and equals", spec: spec(AufsOptions(externalInodeNumbers: .path("/t/a:b=c"))),
            input: ""),
        Case(name: "raw trunc_xino=<branch>", spec: raw("trunc_xino", "/low"), input: ""),
        Case(name: "raw unknown keys", spec: raw("context", "a:b=c"), input: ""),
        Case(name: "raw dirs: (not a branch option)", spec: raw("dirs:/x"), input: ""),
    ]

    @Test(arguments: accepted)
    func accepts(_ accepted: Case) {
        #expect(thrown { try accepted.spec.validate() } == nil)
    }
}

// MARK: - Round trip

/// Generates specs that are valid by construction, with awkward bytes wherever aufs allows them.
private struct AufsSpecGenerator {
    var random: SplitMix64

    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }
    mutating func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0..<values.count, using: &random)] }

    /// A path component: no `/`, NUL, `,`, `:`, `=`; sometimes invalid UTF-8.
    mutating func component() -> [UInt8] {
        let plain = Array("abcxyzABC019 ._-+@#~\\'\"".utf8)
        return (0..<Int.random(in: 1...12, using: &random)).flatMap { _ -> [UInt8] in
            if chance(8) { return [UInt8.random(in: 0x80...0xFF, using: &random)] }
            if chance(5) { return Array("é".utf8) }
            return [pick(plain)]
        }
    }

    mutating func branchPath(_ index: Int) -> FilePath {
        var bytes: [UInt8] = chance(80) ? [UInt8(ascii: "/")] : []
        for _ in 0..<Int.random(in: 0...3, using: &random) { bytes += component() + [UInt8(ascii: "/")] }
        bytes += Array("b\(index)".utf8)  // unique
        return FilePath(bytes: bytes)
    }

    mutating func branch(_ index: Int) -> AufsBranch {
        let permission = pick(AufsBranch.Permission.allCases)
        var attributes: [AufsBranch.Attribute] = []
        let free: [AufsBranch.Attribute] = [
            .unpin, .fhsm, .ignoreCopyErrorsAll, .ignoreCopyErrorsSecurity, .ignoreCopyErrorsSystem,
            .ignoreCopyErrorsTrusted, .ignoreCopyErrorsUser, .ignoreCopyErrorsOther,
        ]
        for _ in 0..<Int.random(in: 0...2, using: &random) { attributes.append(pick(free)) }
        if permission == .readWrite {
            if chance(30) { attributes.append(.noLinkedWhiteout) }
            if chance(40) { attributes.append(pick([.copyUpOnOpenRegular, .copyUpOnOpenAll, .moveUpOnOpen])) }
        } else {
            if chance(50) { attributes.append(.whiteout) }
            if chance(30) { attributes.append(pick([.copyUpOnOpenRegular, .copyUpOnOpenAll])) }
        }
        attributes.shuffle(using: &random)
        return AufsBranch(branchPath(index), permission, attributes: attributes)
    }

    mutating func maybe<T>(_ make: (inout Self) -> T) -> T? { chance(50) ? make(&self) : nil }

    mutating func options() -> AufsOptions {
        var options = AufsOptions()
        options.externalInodeNumbers = maybe { generator in
            if generator.chance(30) { return .disabled }
            let bytes = [UInt8(ascii: "/")] + generator.component() + Array(":=x".utf8) + generator.component()
            return .path(FilePath(bytes: bytes))
        }
        options.truncateXino = maybe { $0.chance(50) }
        options.userDirectBranchAccess = maybe { $0.pick(AufsOptions.UserDirectBranchAccess.allCases) }
        options.directIO = maybe { $0.chance(50) }
        options.directoryPermissionFromTopOnly = maybe { $0.chance(50) }
        options.pseudoLinks = maybe { $0.chance(50) }
        options.showWhiteouts = maybe { $0.chance(50) }
        options.createPolicy = maybe { generator in
            let seconds: Int? = generator.chance(50) ? Int.random(in: 0...3600, using: &generator.random) : nil
            let watermark = Int.random(in: 0...(1 << 40), using: &generator.random)
            return generator.pick([
                .topDownParent, .roundRobin, .mostFreeSpace(seconds: seconds),
                .topDownMostFreeSpace(lowWatermark: watermark, seconds: seconds),
                .mostFreeSpaceRoundRobin(lowWatermark: watermark, seconds: seconds),
                .parentMostFreeSpace(seconds: seconds),
                .parentMostFreeSpaceRoundRobin(lowWatermark: watermark, seconds: seconds),
            ])
        }
        options.copyUpPolicy = maybe { $0.pick(AufsOptions.CopyUpPolicy.allCases) }
        options.opaqueDirectories = maybe { $0.pick(AufsOptions.OpaqueDirectories.allCases) }
        options.directoryWhiteoutThreshold = maybe { Int.random(in: 0...1000, using: &$0.random) }
        options.readdirCacheSeconds = maybe { Int.random(in: 0...3600, using: &$0.random) }
        options.readdirBlockSize = maybe { $0.chance(20) ? 0 : Int.random(in: 255...65536, using: &$0.random) }
        options.readdirHashSize = maybe { Int.random(in: 0...4096, using: &$0.random) }
        options.sumFreeSpace = maybe { $0.chance(50) }
        options.warnPermission = maybe { $0.chance(50) }
        options.verbose = maybe { $0.chance(50) }
        options.directoryRename = maybe { $0.chance(50) }
        let known = ["acl", "noacl", "wsum", "relatime", "nodlgt", "trunc_xib", "notrunc_xib", "rw", "context"]
        for _ in 0..<Int.random(in: 0...3, using: &random) {
            let key =
                chance(50)
                ? pick(known)
                : "x_" + String((0..<Int.random(in: 1...6, using: &random)).map { _ in pick(Array("abz_9")) })
            let value: String? =
                chance(40)
                ? nil : String((0..<Int.random(in: 0...10, using: &random)).map { _ in pick(Array("a:=Zé /+")) })
            options.additional.append(.init(key, value))
        }
        if chance(10) { options.additional.append(.init("trunc_xino", "/some/branch")) }
        return options
    }

    mutating func spec() -> AufsSpec {
        AufsSpec(branches: (0..<Int.random(in: 1...12, using: &random)).map { branch($0) }, options: options())
    }
}

@Suite("aufs option string: round trip")
struct AufsOptionStringRoundTripTests {
    @Test(arguments: [0x5EED_0001 as UInt64, 0xA0F5, 42])
    func validSpecsRoundTrip(seed: UInt64) throws {
        var generator = AufsSpecGenerator(random: SplitMix64(seed: seed))
        for iteration in 0..<200 {
            let spec = generator.spec()
            #expect(thrown { try spec.validate() } == nil, "iteration \(iteration)")
            let data = try spec.optionString()
            let parsed = try AufsSpec(optionString: data)
            #expect(parsed == spec, "iteration \(iteration): \(data.readable)")
            if parsed != spec { return }
        }
    }
}

@Suite("aufs option string: fuzzing")
struct AufsOptionStringFuzzTests {
    /// Random mount data made of grammar tokens: the parser either reads it or throws `malformedInput`, never
    /// crashes; whatever it reads and validates builds back into data that parses to the same spec.
    @Test func randomDataNeverCrashes() throws {
        let tokens: [[UInt8]] =
            [
                "br", "dirs", "br:", "dirs=", ":", "=", ",", "/a", "/b", "rel", "rw", "ro", "rr", "+", "wh", "nolwh",
                "moo", "coo_reg", "coo_all", "append:", "prepend:", "add:", "ins=", "del:", "mod:", "0", "1", "0x",
                "dio", "nodio", "xino", "noxino", "create", "mfs", "tdmfs", "pmfsrr", "60", "-1", "si", "v", "q",
                "rdblk", "rdhash", "def", "dirwh", "udba", "notify", "acl", "trunc_xino",
            ].map { Array($0.utf8) } + [[0xFF], [0xC3, 0xA9], [0x20]]
        var random = SplitMix64(seed: 0xF022)
        var parsedCount = 0
        for _ in 0..<3000 {
            var data: [UInt8] = []
            for _ in 0..<Int.random(in: 0...14, using: &random) {
                data += tokens[Int.random(in: 0..<tokens.count, using: &random)]
            }
            let spec: AufsSpec
            do {
                spec = try AufsSpec(optionString: data)
            } catch {
                #expect(error.code == .malformedInput, "\(data.readable)")
                continue
            }
            parsedCount += 1
            guard (try? spec.validate()) != nil else { continue }
            #expect(try AufsSpec(optionString: spec.optionString()) == spec, "\(data.readable)")
        }
        #expect(parsedCount > 100)
    }
}
