import Foundation
import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Shared support for the aufs sysfs and report tests

/// `Tests/UnionMountTests/Fixtures/aufs`: one folder per captured host shape.
enum AufsFixtures {
    static let root: FilePath = fixturesDirectory.appending("aufs")

    /// `<host>/mountinfo`.
    static func mountinfo(_ host: String) -> FilePath { root.appending(host).appending("mountinfo") }

    /// The sysfs tree of a fixture host, `<host>/sys/fs/aufs`.
    static func sysfs(_ host: String) -> AufsSysfs { AufsSysfs(root: sysfsRoot(host)) }

    static func sysfsRoot(_ host: String) -> FilePath {
        root.appending(host).appending("sys").appending("fs").appending("aufs")
    }

    /// The entry of a fixture host's mountinfo at `mountPoint`.
    static func entry(_ host: String, at mountPoint: FilePath) throws -> MountEntry {
        try #require(try MountTable.entries(source: .file(mountinfo(host))).first { $0.mountPoint == mountPoint })
    }

    static let dockerSI = "9c1b2e7f40a35d18"
    static let dockerContainer = "a42d519714d616e9411dbceec4b52808bd6b1ee53e6f6497a281d655357d8b71"
    static let dockerLayers = [
        "4fbec69b941195fd56f8212a5000e304129451d82efca94ff0e0fb2d5355472e",
        "77ea7eee3d80b1a38f83906dd3048e2689457eb90e18a7d12f839c5ae37106a2",
        "95cf1a2e1698fe3ca1fcc3f653119146b271d0b62e487ec264441e886a11bd06",
        "a0e70458d19e37e14d6388030a017c587283e2fb6ef10c0744cad0294c47e8f8",
    ]
    static let dockerMountPoint = FilePath("/var/lib/docker/aufs/mnt/" + dockerContainer)

    /// What `br0`…`br6`/`brid0`…`brid6` of the Docker-shaped fixture say.
    static let dockerBranches: [AufsSysfs.Branch] = {
        let diff = "/var/lib/docker/aufs/diff/"
        var branches = [
            AufsSysfs.Branch(index: 0, path: FilePath(diff + dockerContainer), permission: .readWrite, id: 1),
            AufsSysfs.Branch(
                index: 1, path: FilePath(diff + dockerContainer + "-init"), permission: .readOnly,
                attributes: ["wh"], id: 2),
        ]
        for (offset, (layer, id)) in zip(dockerLayers, [3, 5, 8, 9]).enumerated() {
            branches.append(
                AufsSysfs.Branch(
                    index: 2 + offset, path: FilePath(diff + layer), permission: .readOnly, attributes: ["wh"], id: id))
        }
        branches.append(
            AufsSysfs.Branch(
                index: 6, path: FilePath(diff + "base image"), permission: .readOnly, attributes: ["wh"], id: 10))
        return branches
    }()

    static let vanishedSI = "5e1f0d2a7c3b4009"
    /// What the fixture whose `br3` vanished says: the list ends at `br2` although `br4` exists.
    static let vanishedBranches: [AufsSysfs.Branch] = [
        AufsSysfs.Branch(index: 0, path: "/srv/rw", permission: .readWrite, attributes: ["nolwh"], id: 4),
        AufsSysfs.Branch(index: 1, path: "/srv/a=b\\c\ttab", permission: .readOnly, id: 6),
        AufsSysfs.Branch(
            index: 2, path: "/srv/real", permission: .realReadOnly, attributes: ["coo_reg", "wh"], id: 7),
    ]
}

/// A thread-safe log of the files a scripted reader was asked for.
final class ReadLog: @unchecked Sendable {
    private let lock = NSLock()
    private var files: [String] = []

    func record(_ file: FilePath) -> Int {
        lock.withLock {
            files.append(file.lastComponent?.string ?? "")
            return files.count
        }
    }

    var all: [String] { lock.withLock { files } }
    func count(_ name: String) -> Int { lock.withLock { files.filter { $0 == name }.count } }
}

/// A sysfs whose files are answered by `script` (file name, how many times it was read before) instead of the
/// file system; `nil` from the script means `ENOENT`.
private func scriptedSysfs(
    log: ReadLog = ReadLog(), busyRetries: Int = 20, sleeps: ReadLog = ReadLog(),
    _ script: @escaping @Sendable (String, Int) -> Result<[UInt8], AufsSysfs.FileReadError>?
) -> AufsSysfs {
    AufsSysfs(
        root: "/sys/fs/aufs", busyRetries: busyRetries, busyRetryInterval: .milliseconds(3),
        reader: { file in
            _ = log.record(file)
            let name = file.lastComponent?.string ?? ""
            let previous = log.count(name) - 1
            return script(name, previous)
                ?? .failure(AufsSysfs.FileReadError(systemCall: "open", errno: .noSuchFileOrDirectory))
        },
        sleeper: { _ in _ = sleeps.record("sleep") })
}

private func contents(_ text: String) -> Result<[UInt8], AufsSysfs.FileReadError> { .success(Array(text.utf8)) }

private func failure(_ errno: Errno, _ call: String = "read") -> Result<[UInt8], AufsSysfs.FileReadError> {
    .failure(AufsSysfs.FileReadError(systemCall: call, errno: errno))
}

// MARK: - Tests

@Suite("aufs sysfs")
struct AufsSysfsTests {
    /// A `brs=0` list of a million bytes of `:`-joined pieces without a permission is refused quickly: a piece
    /// that cannot complete the pending branch is never rescanned (this was quadratic, found by fuzzing).
    @Test func longBranchListWithoutPermissionsIsLinear() throws {
        let list = Array(("x=a" + String(repeating: ":a", count: 500_000)).utf8)
        let clock = ContinuousClock()
        let started = clock.now
        #expect(throws: UnionMountError.self) { try AufsSysfs.optionBranchList(list[...]) }
        #expect(clock.now - started < .seconds(5))
        let valid = Array((String(repeating: "/l:", count: 1000) + "/last=ro").utf8)
        let branches = try AufsSysfs.optionBranchList(valid[...])
        #expect(branches.count == 1)
        #expect(branches[0].path.bytes.count == 1000 * 3 + 5)
    }

    // MARK: Fixtures

    @Test("Docker-shaped host: seven branches, ids with gaps, an escaped space, the xino path")
    func dockerHost() throws {
        let state = try AufsFixtures.sysfs("docker").branches(si: AufsFixtures.dockerSI)
        #expect(state.branches == AufsFixtures.dockerBranches)
        #expect(state.xinoPath == FilePath("/dev/shm/aufs.xino"))
    }

    @Test("a vanished br3 ends the list at br2, even though br4 exists; an empty xi_path is no xino")
    func vanishedBranch() throws {
        let state = try AufsFixtures.sysfs("vanished").branches(si: AufsFixtures.vanishedSI)
        #expect(state.branches == AufsFixtures.vanishedBranches)
        #expect(state.xinoPath == nil)
    }

    @Test("brs=0 host: no br0, so no branches from sysfs, but xi_path is read")
    func brsZeroHostSysfs() throws {
        let state = try AufsFixtures.sysfs("brs0").branches(si: "1f0e2d3c4b5a6978")
        #expect(state.branches.isEmpty)
        #expect(state.xinoPath == FilePath("/day1/.aufs.xino"))
    }

    @Test("a superblock without a sysfs directory has no branches and no xino")
    func missingSuperblock() throws {
        let state = try AufsFixtures.sysfs("docker").branches(si: "0123456789abcdef")
        #expect(state.branches.isEmpty)
        #expect(state.xinoPath == nil)
        let noAufs = try AufsSysfs(root: "/nonexistent/sys/fs/aufs").branches(si: "1")
        #expect(noAufs.branches.isEmpty)
    }

    @Test("garbage in br0 is malformed input naming the file")
    func garbageBranch() throws {
        let error = try #require(thrown { try AufsFixtures.sysfs("hostile").branches(si: "badb0000000000a1") })
        #expect(error.code == .malformedInput)
        #expect(error.input?.hasSuffix("si_badb0000000000a1/br0") == true)
        #expect(error.message.contains("this is not a branch"))
    }

    @Test("a brid that is not a number is malformed input naming the file")
    func garbageBranchID() throws {
        let error = try #require(thrown { try AufsFixtures.sysfs("hostile").branches(si: "badb0000000000a2") })
        #expect(error.code == .malformedInput)
        #expect(error.input?.hasSuffix("si_badb0000000000a2/brid0") == true)
    }

    @Test("a backslash that starts no octal escape is malformed")
    func badEscape() throws {
        let error = try #require(thrown { try AufsFixtures.sysfs("hostile").branches(si: "badb0000000000a4") })
        #expect(error.code == .malformedInput)
        #expect(error.input?.hasSuffix("si_badb0000000000a4/br0") == true)
    }

    @Test(
        "a superblock id that is not 1-16 lowercase hex digits is refused before any file is read",
        arguments: ["../../etc", "", "9C1B2E7F40A35D18", "9c1b/../x", "0x1f", "12345678901234567", " 1f", "1f\n", "é"])
    func refusedSuperblockID(si: String) throws {
        let log = ReadLog()
        let sysfs = scriptedSysfs(log: log) { _, _ in contents("/x=rw\n") }
        let error = try #require(thrown { try sysfs.branches(si: si) })
        #expect(error.code == .malformedInput)
        #expect(error.input == "si=" + si)
        #expect(log.all.isEmpty)
    }

    @Test("the files read, in order: brid, br, brid again per branch, then xi_path")
    func readOrder() throws {
        let log = ReadLog()
        let sysfs = scriptedSysfs(log: log) { name, _ in
            switch name {
            case "br0": contents("/a=rw\n")
            case "brid0": contents("1\n")
            case "xi_path": contents("/a/.aufs.xino\n")
            default: nil
            }
        }
        let state = try sysfs.branches(si: "abc")
        #expect(state.branches == [AufsSysfs.Branch(index: 0, path: "/a", permission: .readWrite, id: 1)])
        #expect(log.all == ["brid0", "br0", "brid0", "brid1", "xi_path"])
    }

    // MARK: Races

    @Test("EBUSY is retried with a pause and then succeeds")
    func busyThenReady() throws {
        let sleeps = ReadLog()
        let sysfs = scriptedSysfs(sleeps: sleeps) { name, previous in
            switch name {
            case "br0": previous < 2 ? failure(.resourceBusy) : contents("/a=ro+wh\n")
            case "brid0": contents("7\n")
            case "xi_path": previous < 1 ? failure(.resourceBusy) : contents("")
            default: nil
            }
        }
        let state = try sysfs.branches(si: "1")
        let expected = AufsSysfs.Branch(index: 0, path: "/a", permission: .readOnly, attributes: ["wh"], id: 7)
        #expect(state.branches == [expected])
        #expect(state.xinoPath == nil)
        #expect(sleeps.all.count == 3)
    }

    @Test("EBUSY through every retry is a busy error with the errno and the file")
    func busyForever() throws {
        let log = ReadLog()
        let sleeps = ReadLog()
        let sysfs = scriptedSysfs(log: log, busyRetries: 4, sleeps: sleeps) { name, _ in
            name == "brid0" ? failure(.resourceBusy) : nil
        }
        let error = try #require(thrown { try sysfs.branches(si: "1") })
        #expect(error.code == .busy)
        #expect(error.errno == .resourceBusy)
        #expect(error.systemCall == "read")
        #expect(error.input == "/sys/fs/aufs/si_1/brid0")
        #expect(log.count("brid0") == 5)
        #expect(sleeps.all.count == 4)
    }

    @Test("busy retries are bounded by busyRetries, zero included")
    func noRetries() throws {
        let log = ReadLog()
        let sysfs = scriptedSysfs(log: log, busyRetries: 0) { _, _ in failure(.resourceBusy) }
        #expect(thrown { try sysfs.branches(si: "1") }?.code == .busy)
        #expect(log.all == ["brid0"])
    }

    @Test("another errno is a system call error")
    func otherErrno() throws {
        let sysfs = scriptedSysfs { name, _ in name == "br0" ? failure(.permissionDenied, "open") : contents("1\n") }
        let error = try #require(thrown { try sysfs.branches(si: "1") })
        #expect(error.code == .systemCallFailed)
        #expect(error.errno == .permissionDenied)
        #expect(error.systemCall == "open")
        #expect(error.input == "/sys/fs/aufs/si_1/br0")
    }

    @Test("ENOENT from read(2) (branch deleted after open) also ends the list")
    func enoentOnRead() throws {
        let sysfs = scriptedSysfs { name, _ in
            switch name {
            case "br0": contents("/a=rw\n")
            case "br1": failure(.noSuchFileOrDirectory, "read")
            case "brid0": contents("1\n")
            case "brid1": contents("2\n")
            default: nil
            }
        }
        #expect(try sysfs.branches(si: "1").branches.map(\.id) == [1])
    }

    @Test("renumbering between brid reads makes the list be read again")
    func renumberedDuringRead() throws {
        // First pass: brid1 reads 2, then 3 (branch 2 was deleted and 3 moved up). Second pass is stable.
        let sysfs = scriptedSysfs { name, previous in
            switch name {
            case "br0": contents("/top=rw\n")
            case "brid0": contents("1\n")
            case "br1": contents("/third=ro\n")
            case "brid1": previous == 0 ? contents("2\n") : contents("3\n")
            default: nil
            }
        }
        let state = try sysfs.branches(si: "1")
        #expect(state.branches.map(\.id) == [1, 3])
        #expect(state.branches.map(\.path) == ["/top", "/third"])
    }

    @Test("a list that keeps changing is reported busy after five passes")
    func alwaysChanging() throws {
        let sysfs = scriptedSysfs { name, previous in
            switch name {
            case "br0": contents("/top=rw\n")
            case "brid0": contents("\(previous + 1)\n")
            default: nil
            }
        }
        let error = try #require(thrown { try sysfs.branches(si: "1") })
        #expect(error.code == .busy)
        #expect(error.message.contains("changed during 5 reads"))
    }

    @Test("the same duplicate id on two passes is malformed, not a race")
    func duplicateIDs() throws {
        let sysfs = scriptedSysfs { name, _ in
            switch name {
            case "br0", "br1": contents("/x=ro\n")
            case "brid0", "brid1": contents("4\n")
            default: nil
            }
        }
        let error = try #require(thrown { try sysfs.branches(si: "1") })
        #expect(error.code == .malformedInput)
        #expect(error.message.contains("branch id 4 appears twice"))
    }

    @Test("a file larger than a page of 64 KiB is malformed")
    func oversized() throws {
        let sysfs = scriptedSysfs { name, _ in
            name == "brid0" ? .success([UInt8](repeating: UInt8(ascii: "1"), count: 65 * 1024)) : nil
        }
        #expect(thrown { try sysfs.branches(si: "1") }?.code == .malformedInput)
    }

    // MARK: File reading

    @Test("the default reader reads real files, reports ENOENT and caps the size")
    func defaultReader() throws {
        let scratch = try Scratch("sysfs")
        let small = scratch.path.appending("small")
        try writeFile(small, "/a=rw\n")
        #expect(try AufsSysfs.readFile(small).get() == Array("/a=rw\n".utf8))
        let big = scratch.path.appending("big")
        try writeFile(big, String(repeating: "x", count: 200_000))
        #expect(try AufsSysfs.readFile(big).get().count == AufsSysfs.maximumFileSize + 1)
        let missing = AufsSysfs.readFile(scratch.path.appending("missing"))
        #expect(missing == .failure(AufsSysfs.FileReadError(systemCall: "open", errno: .noSuchFileOrDirectory)))
        let directory = AufsSysfs.readFile(scratch.path)
        #expect(directory == .failure(AufsSysfs.FileReadError(systemCall: "read", errno: .isDirectory)))
    }

    @Test("a FIFO planted as br0 does not hang the reader")
    func fifo() throws {
        let scratch = try Scratch("sysfs")
        let directory = try scratch.directory("si_1")
        #expect(directory.appending("br0").withPlatformString { mkfifo($0, 0o644) } == 0)
        try writeFile(directory.appending("brid0"), "1\n")
        // O_NONBLOCK: the open succeeds and read(2) finds no writer, i.e. an empty file, which is malformed.
        let error = try #require(thrown { try AufsSysfs(root: scratch.path).branches(si: "1") })
        #expect(error.code == .malformedInput)
    }

    // MARK: Line syntax

    @Test(
        "br<N> lines that parse",
        arguments: [
            ("/a=rw\n", "/a", AufsBranch.Permission.readWrite, [String]()),
            ("/a=rw", "/a", .readWrite, []),
            ("/x=y=ro+wh\n", "/x=y", .readOnly, ["wh"]),
            ("/sp\\040ace\\011tab\\134back\\177del=rr\n", "/sp ace\ttab\\back\u{7f}del", .realReadOnly, []),
            ("/a=rw+nolwh+moo\n", "/a", .readWrite, ["nolwh", "moo"]),
            ("/a=ro+icexsec+icexsys+wh\n", "/a", .readOnly, ["icexsec", "icexsys", "wh"]),
            ("/a=ro+newattr_2\n", "/a", .readOnly, ["newattr_2"]),
            ("/a:b,c=ro\n", "/a:b,c", .readOnly, []),
            ("relative=ro\n", "relative", .readOnly, []),
        ])
    func goodLines(line: String, path: String, permission: AufsBranch.Permission, attributes: [String]) throws {
        let parsed = try AufsSysfs.sysfsBranch(Array(line.utf8), file: "br0")
        #expect(parsed.path == FilePath(path))
        #expect(parsed.permission == permission)
        #expect(parsed.attributes == attributes)
    }

    @Test("a path with bytes that are not UTF-8 is kept byte for byte")
    func nonUTF8Path() throws {
        let parsed = try AufsSysfs.sysfsBranch(Array("/l\\377x\u{1}=ro\n".utf8), file: "br0")
        #expect(parsed.path.bytes == [UInt8(ascii: "/"), UInt8(ascii: "l"), 0xFF, UInt8(ascii: "x"), 0x01])
    }

    @Test(
        "br<N> lines that are malformed",
        arguments: [
            "", "\n", "/a\n", "=rw\n", "/a=\n", "/a=xx\n", "/a=RW\n", "/a=rw+\n", "/a=ro++wh\n", "/a=ro+WH\n",
            "/a=ro wh\n", "/a\\=ro\n", "/a\\04=ro\n", "/a\\400=ro\n", "/a\\000=ro\n", "/a=rw\n/b=ro\n",
            "/a=rw\n\n", "/a\u{0}b=rw\n",
        ])
    func badLines(line: String) throws {
        let error = try #require(thrown { try AufsSysfs.sysfsBranch(Array(line.utf8), file: "/s/br0") })
        #expect(error.code == .malformedInput)
        #expect(error.input == "/s/br0")
    }

    @Test("brid<N> syntax", arguments: [("1\n", 1), ("10", 10), ("32767\n", 32767)])
    func goodIDs(text: String, id: Int) throws {
        #expect(try AufsSysfs.id(Array(text.utf8), "brid0") == id)
    }

    @Test("brid<N> garbage", arguments: ["", "\n", "x\n", "1x\n", "-1\n", "+1\n", " 1\n", "1 \n", "0x10\n", "1\n\n"])
    func badIDs(text: String) throws {
        #expect(thrown { try AufsSysfs.id(Array(text.utf8), "brid0") }?.code == .malformedInput)
    }

    @Test("xi_path: escaped path decoded; empty means none; garbage malformed")
    func xinoPath() throws {
        func xino(_ text: String) throws(UnionMountError) -> FilePath? {
            try scriptedSysfs { name, _ in name == "xi_path" ? contents(text) : nil }.branches(si: "1").xinoPath
        }
        #expect(try xino("/dev/shm/aufs.xino\n") == "/dev/shm/aufs.xino")
        #expect(try xino("/x\\040y/.aufs.xino\n") == "/x y/.aufs.xino")
        #expect(try xino("") == nil)
        #expect(try xino("\n") == nil)
        #expect(thrown { try xino("/a\n/b\n") }?.code == .malformedInput)
        #expect(thrown { try xino("/a\\9\n") }?.code == .malformedInput)
    }

    // MARK: brs=0

    @Test("brs=0: the br: list at the end of the mount options")
    func brsZeroOptions() throws {
        let entry = try AufsFixtures.entry("brs0", at: "/u")
        #expect(
            try AufsSysfs.branches(inMountOptionsOf: entry) == [
                AufsSysfs.Branch(index: 0, path: "/day1", permission: .readWrite, id: nil),
                AufsSysfs.Branch(index: 1, path: "/base dir", permission: .readOnly, attributes: ["wh"], id: nil),
            ])
    }

    private func optionBranches(_ options: String) throws(UnionMountError) -> [AufsSysfs.Branch] {
        let line = "85 22 0:60 / /u rw,relatime - aufs none \(options)\n"
        let entry = try MountTable.parse(Array(line.utf8))[0]
        return try AufsSysfs.branches(inMountOptionsOf: entry)
    }

    @Test("brs=0: a comma, a colon or an equals sign in a renamed branch path survives")
    func brsZeroAwkwardPaths() throws {
        let branches = try optionBranches("rw,si=1f,br:/with,comma=rw:/co:lon=ro+wh:/e=q=rr:/tab\\011\\134=ro")
        #expect(branches.map(\.path) == ["/with,comma", "/co:lon", "/e=q", "/tab\t\\"])
        #expect(branches.map(\.permission) == [.readWrite, .readOnly, .realReadOnly, .readOnly])
        #expect(branches.map(\.index) == [0, 1, 2, 3])
    }

    @Test("brs=0: br= is accepted like br:, and no list means no branches")
    func brsZeroSpellings() throws {
        #expect(try optionBranches("rw,si=1f,br=/a=rw").map(\.path) == ["/a"])
        #expect(try optionBranches("rw,si=1f,dio").isEmpty)
        #expect(try optionBranches("rw,si=1f,xbr:/a=rw").isEmpty)
    }

    @Test(
        "brs=0: lists that do not parse are malformed",
        arguments: ["br:", "br:/x=zz", "br:/a=rw:", "br:/a=rw:/b", "br:=rw", "br:/a\\000b=rw"])
    func brsZeroMalformed(list: String) throws {
        #expect(thrown { try optionBranches("rw,si=1f," + list) }?.code == .malformedInput)
    }
}
