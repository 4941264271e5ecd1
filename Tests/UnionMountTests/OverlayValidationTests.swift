import SystemPackage
import Testing

@testable import UnionMount

/// The error `spec.validate()` throws, or `nil` when the spec is valid.
private func validationError(_ spec: OverlaySpec) -> UnionMountError? {
    do {
        try spec.validate()
        return nil
    } catch {
        return error
    }
}

/// A valid writable spec to start each rule's test from.
private func writable(
    lower: [FilePath] = ["/l0", "/l1"], data: [FilePath] = [], upper: FilePath? = "/c/upper",
    work: FilePath? = "/c/work", options: OverlayOptions = OverlayOptions()
) -> OverlaySpec {
    OverlaySpec(
        lowerDirectories: lower, dataDirectories: data, upperDirectory: upper, workDirectory: work, options: options)
}

@Suite("OverlayValidation")
struct OverlayValidationTests {
    // MARK: - Valid specs

    @Test func validSpecsPass() throws {
        try writable().validate()
        try OverlaySpec(lowerDirectories: ["/a", "/b"]).validate()
        try writable(lower: ["/l"], data: ["/d0", "/d1"], options: OverlayOptions(metacopy: true)).validate()
        // A lone lower plus a data-only layer is a read-only composefs-style mount; the kernel counts both.
        try OverlaySpec(lowerDirectories: ["/erofs"], dataDirectories: ["/objects"]).validate()
        try writable(lower: [FilePath(bytes: [0x2F, 0xFF, 0x0A, 0x2C, 0x3A, 0x5C])]).validate()
    }

    @Test func relativePathsAreAllowed() throws {
        try writable(lower: ["layers/a", "./b", "../c"], upper: "upper", work: "work").validate()
        try OverlaySpec(lowerDirectories: ["a", "b"]).validate()
    }

    // MARK: - Layer counts

    @Test func noLowerLayerIsRefused() {
        let error = validationError(OverlaySpec(lowerDirectories: []))
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "lowerDirectories")
    }

    @Test func dataLayersNeedALowerLayer() {
        let error = validationError(OverlaySpec(lowerDirectories: [], dataDirectories: ["/d0", "/d1"]))
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "dataDirectories[0]")
    }

    @Test func oneLowerWithoutUpperIsRefused() {
        let error = validationError(OverlaySpec(lowerDirectories: ["/only"]))
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "lowerDirectories")
        #expect(error?.message == "at least 2 lower layers are needed without an upper directory")
        #expect(validationError(writable(lower: ["/only"])) == nil)
    }

    @Test func moreThanFiveHundredLayersIsRefusedWithTheCount() {
        func layers(_ prefix: String, _ count: Int) -> [FilePath] { (0..<count).map { FilePath("/\(prefix)\($0)") } }

        #expect(validationError(writable(lower: layers("l", 500))) == nil)
        #expect(validationError(writable(lower: layers("l", 300), data: layers("d", 200))) == nil)

        let lowerOnly = validationError(writable(lower: layers("l", 501)))
        #expect(lowerOnly?.code == .invalidSpec)
        #expect(lowerOnly?.input == "lowerDirectories[500]")
        #expect(lowerOnly?.message.contains("501") == true)

        let mixed = validationError(writable(lower: layers("l", 300), data: layers("d", 205)))
        #expect(mixed?.code == .invalidSpec)
        #expect(mixed?.input == "dataDirectories[200]")
        #expect(mixed?.message.contains("505") == true)
    }

    // MARK: - Paths

    @Test func emptyPathsAreRefused() {
        let cases: [(OverlaySpec, String)] = [
            (writable(lower: ["/a", FilePath("")]), "lowerDirectories[1]"),
            (writable(lower: ["/a"], data: ["/d", FilePath("")]), "dataDirectories[1]"),
            (writable(upper: FilePath("")), "upperDirectory"),
            (writable(work: FilePath("")), "workDirectory"),
        ]
        for (spec, field) in cases {
            let error = validationError(spec)
            #expect(error?.code == .invalidSpec, "\(field)")
            #expect(error?.input == field)
        }
    }

    @Test func upperWithoutWorkIsRefused() {
        let error = validationError(writable(work: nil))
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "workDirectory")
        #expect(error?.message.contains("needs a work directory") == true)
    }

    @Test func workWithoutUpperIsRefused() {
        let error = validationError(writable(upper: nil))
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "workDirectory")
        #expect(error?.message.contains("only used with an upper directory") == true)
    }

    @Test func directoryGivenTwiceIsRefusedNamingBoth() {
        let cases: [(OverlaySpec, later: String, earlier: String)] = [
            (writable(lower: ["/a", "/b", "/c", "/a"]), "lowerDirectories[3]", "lowerDirectories[0]"),
            (writable(lower: ["/a", "/b"], data: ["/b"]), "dataDirectories[0]", "lowerDirectories[1]"),
            (writable(lower: ["/a", "/c/upper"]), "upperDirectory", "lowerDirectories[1]"),
            (writable(data: ["/c/work"]), "workDirectory", "dataDirectories[0]"),
            (writable(upper: "/same", work: "/same"), "workDirectory", "upperDirectory"),
            // FilePath drops a trailing slash, so these are equal bytes too.
            (writable(lower: ["/a/", "/a"]), "lowerDirectories[1]", "lowerDirectories[0]"),
        ]
        for (spec, later, earlier) in cases {
            let error = validationError(spec)
            #expect(error?.code == .invalidSpec, "\(later)")
            #expect(error?.input == later)
            #expect(error?.message.contains(later) == true, "\(error?.message ?? "")")
            #expect(error?.message.contains(earlier) == true, "\(error?.message ?? "")")
        }
        // Different bytes are different directories here (the kernel may still see the same one).
        #expect(validationError(writable(lower: ["/a", "/./a", "a"])) == nil)
    }

    @Test func workInsideUpperIsRefused() {
        let error = validationError(writable(upper: "/c/upper", work: "/c/upper/work"))
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "workDirectory")
        #expect(error?.message.contains("separate subtrees") == true)

        let relative = validationError(writable(upper: "u", work: "u/w"))
        #expect(relative?.input == "workDirectory")

        let root = validationError(writable(upper: "/", work: "/w"))
        #expect(root?.input == "workDirectory")
    }

    @Test func upperInsideWorkIsRefused() {
        let error = validationError(writable(upper: "/c/work/upper", work: "/c/work"))
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "upperDirectory")
    }

    @Test func nestingIsByPathComponents() throws {
        try writable(upper: "/a", work: "/ab").validate()
        try writable(upper: "/ab", work: "/a").validate()
        try writable(upper: "/x/a", work: "/x/a-work").validate()
        // A rooted and a relative path are not compared.
        try writable(upper: "/u", work: "u/w").validate()
    }

    // MARK: - Source and raw options

    @Test func nulInSourceIsRefused() {
        var spec = writable()
        spec.source = "over\u{0}lay"
        let error = validationError(spec)
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "source")
    }

    @Test func badRawOptionsAreRefused() {
        let cases: [(OverlayOptions.RawOption, String)] = [
            (.init(""), "empty"),
            (.init("", "v"), "empty"),
            (.init("con\u{0}text", "x"), "NUL"),
            (.init("context", "a\u{0}b"), "NUL"),
            (.init("a,upperdir", "/etc"), "','"),
            (.init("context", "x,upperdir=/etc"), "','"),
            (.init("key=x", "y"), "'='"),
            (.init("ke\\y"), "'\\'"),
            (.init("context", "x\\"), "unpaired"),
            (.init("context", "x\\\\\\"), "unpaired"),
        ]
        for (option, reason) in cases {
            let spec = writable(options: OverlayOptions(additional: [.init("ro"), option]))
            let error = validationError(spec)
            #expect(error?.code == .invalidSpec, "\(option)")
            #expect(error?.input == "options.additional[1]", "\(option)")
            #expect(error?.message.contains(reason) == true, "\(option): \(error?.message ?? "no error")")
        }
        // Paired backslashes, '=' and ':' in a value are fine.
        let fine = writable(options: OverlayOptions(additional: [.init("k", "a\\\\"), .init("ctx", "a=b:c\\d")]))
        #expect(validationError(fine) == nil)
    }

    @Test(arguments: [
        "lowerdir", "lowerdir+", "datadir+", "upperdir", "workdir", "default_permissions", "redirect_dir", "index",
        "nfs_export", "xino", "metacopy", "volatile", "userxattr", "uuid", "verity", "fsync", "override_creds",
        "nooverride_creds", "source",
    ])
    func rawOptionCannotUseAModelledKey(key: String) {
        for value in [nil, "/etc"] as [String?] {
            let spec = writable(options: OverlayOptions(additional: [.init(key, value)]))
            let error = validationError(spec)
            #expect(error?.code == .invalidSpec)
            #expect(error?.input == "options.additional[0]")
        }
    }

    // MARK: - Conflicting typed options

    @Test func nfsExportWithIndexOffIsRefused() {
        let error = validationError(writable(options: OverlayOptions(index: false, nfsExport: true)))
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "options.nfsExport")
        #expect(validationError(writable(options: OverlayOptions(index: true, nfsExport: true))) == nil)
        #expect(validationError(writable(options: OverlayOptions(index: false, nfsExport: false))) == nil)
    }

    @Test func nfsExportWithMetacopyIsRefused() {
        let error = validationError(writable(options: OverlayOptions(nfsExport: true, metacopy: true)))
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "options.nfsExport")
    }

    @Test func metacopyWithRedirectNofollowIsRefused() {
        let error = validationError(writable(options: OverlayOptions(redirectDirectory: .nofollow, metacopy: true)))
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "options.metacopy")
        let readOnly = OverlaySpec(
            lowerDirectories: ["/a", "/b"], options: OverlayOptions(redirectDirectory: .nofollow, metacopy: true))
        #expect(validationError(readOnly)?.input == "options.metacopy")
    }

    @Test func metacopyNeedsRedirectOnWithAnUpper() {
        for redirect in [OverlayOptions.RedirectDirectory.off, .follow] {
            let error = validationError(writable(options: OverlayOptions(redirectDirectory: redirect, metacopy: true)))
            #expect(error?.input == "options.metacopy", "\(redirect)")
            // Without an upper `follow` becomes `on`, and `off` depends on redirect_always_follow.
            let readOnly = OverlaySpec(
                lowerDirectories: ["/a", "/b"], options: OverlayOptions(redirectDirectory: redirect, metacopy: true))
            #expect(validationError(readOnly) == nil, "\(redirect)")
        }
        #expect(validationError(writable(options: OverlayOptions(redirectDirectory: .on, metacopy: true))) == nil)
        #expect(
            validationError(writable(options: OverlayOptions(redirectDirectory: .nofollow, metacopy: false)))
                == nil)
    }

    @Test func metacopyWithUserXattrIsRefused() {
        let error = validationError(writable(options: OverlayOptions(metacopy: true, userXattr: true)))
        #expect(error?.code == .invalidSpec)
        #expect(error?.input == "options.userXattr")
        #expect(validationError(writable(options: OverlayOptions(metacopy: true, userXattr: false))) == nil)
    }

    @Test func userXattrWithFollowingRedirectIsRefused() {
        for redirect in [OverlayOptions.RedirectDirectory.on, .follow] {
            let error = validationError(writable(options: OverlayOptions(redirectDirectory: redirect, userXattr: true)))
            #expect(error?.input == "options.userXattr", "\(redirect)")
        }
        #expect(
            validationError(writable(options: OverlayOptions(redirectDirectory: .nofollow, userXattr: true)))
                == nil)
    }

    @Test func volatileWithAnotherFsyncIsRefused() {
        for fsync in [OverlayOptions.Fsync.auto, .strict] {
            let error = validationError(writable(options: OverlayOptions(volatile: true, fsync: fsync)))
            #expect(error?.code == .invalidSpec)
            #expect(error?.input == "options.volatile")
        }
        #expect(validationError(writable(options: OverlayOptions(volatile: true, fsync: .volatile))) == nil)
        #expect(validationError(writable(options: OverlayOptions(volatile: false, fsync: .strict))) == nil)
    }

    // MARK: - Order of the checks

    @Test func structuralErrorsComeBeforeOptionErrors() {
        let spec = writable(
            lower: ["/a", "/a"], options: OverlayOptions(index: false, nfsExport: true, additional: [.init("")]))
        #expect(validationError(spec)?.input == "lowerDirectories[1]")
    }
}
