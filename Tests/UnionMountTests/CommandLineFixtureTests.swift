import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Running the example executables

/// The example executables, found in the build products directory: the parent of the `….xctest` bundle this
/// process runs from (`.build/debug/`), which `swift build --build-tests` fills with every executable too.
enum Examples {
    static let directory: FilePath = {
        if let override = ProcessInfo.processInfo.environment["UNIONMOUNT_EXAMPLES_DIR"] { return FilePath(override) }
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        var path = FilePath(executable)
        if !path.isAbsolute { path = FilePath(FileManager.default.currentDirectoryPath).pushing(path) }
        var candidate = path
        while let last = candidate.lastComponent {
            candidate.removeLastComponent()
            if last.string.hasSuffix(".xctest") { return candidate }
        }
        path.removeLastComponent()
        return path
    }()

    /// The path of the executable `name`; the test fails (rather than skips) when it was not built.
    static func path(_ name: String) throws -> String {
        let path = directory.appending(name).string
        try #require(FileManager.default.isExecutableFile(atPath: path), "\(path) not built (build with --build-tests)")
        return path
    }
}

/// What a finished process left.
struct ProcessResult: CustomStringConvertible {
    var status: Int32
    var stdout: Data
    var stderr: Data

    var output: String { String(decoding: stdout, as: UTF8.self) }
    var errorOutput: String { String(decoding: stderr, as: UTF8.self) }

    var description: String { "exit \(status)\nstdout:\n\(output)\nstderr:\n\(errorOutput)" }

    /// stdout as JSON (`JSONSerialization`: arrays, dictionaries, `NSNumber`s).
    func json() throws -> Any { try JSONSerialization.jsonObject(with: stdout) }

    /// stdout decoded as `type`.
    func decode<Value: Decodable>(_ type: Value.Type) throws -> Value { try JSONDecoder().decode(type, from: stdout) }
}

/// Collects the bytes of one pipe on a thread of its own.
final class PipeReader: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            let bytes = handle.readDataToEndOfFile()
            lock.withLock { data = bytes }
            done.signal()
        }
    }

    func result() -> Data {
        done.wait()
        return lock.withLock { data }
    }
}

/// Runs `executable` with `arguments` and returns its exit status and output. Both pipes are drained while the
/// process runs (stderr on a thread of its own), and only then is the process waited for, so a child that
/// writes more than a pipe holds cannot deadlock against the test.
func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let (output, errors) = (Pipe(), Pipe())
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let errorReader = PipeReader(errors.fileHandleForReading)
    let stdout = output.fileHandleForReading.readDataToEndOfFile()
    let stderr = errorReader.result()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: stdout, stderr: stderr)
}

/// Runs `unionmount` with `arguments`.
func unionmount(_ arguments: String...) throws -> ProcessResult {
    try runProcess(try Examples.path("unionmount"), arguments)
}

/// The keys of the mount object (`list --json`, `inspect --json`) and of its branches.
enum JSONContract {
    static let mountKeys: Set<String> = [
        "mountID", "parentID", "mountPoint", "fsType", "source", "readOnly", "branches", "workdir", "options", "aufs",
    ]
    static let branchKeys: Set<String> = [
        "index", "path", "role", "permission", "attributes", "id", "exists", "idmapped",
    ]
    static let treeKeys: Set<String> = ["path", "type", "branch", "branchPath"]

    /// Checks one mount object's keys and its branches' keys; more keys may be added, none may be missing.
    static func expectMountObject(_ value: Any?, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let object = try #require(value as? [String: Any], sourceLocation: sourceLocation)
        #expect(mountKeys.isSubset(of: Set(object.keys)), sourceLocation: sourceLocation)
        let branches = try #require(object["branches"] as? [[String: Any]], sourceLocation: sourceLocation)
        for branch in branches {
            #expect(branchKeys.isSubset(of: Set(branch.keys)), sourceLocation: sourceLocation)
        }
    }

    /// Checks `tree --json` output: an array of `{path, type, branch, branchPath}` with relative paths.
    static func expectTreeArray(_ value: Any?, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let entries = try #require(value as? [[String: Any]], sourceLocation: sourceLocation)
        for entry in entries {
            #expect(treeKeys.isSubset(of: Set(entry.keys)), sourceLocation: sourceLocation)
            if let path = entry["path"] as? String { #expect(!path.hasPrefix("/"), sourceLocation: sourceLocation) }
            let type = entry["type"] as? String
            #expect(["file", "directory", "symlink", "other"].contains(type), sourceLocation: sourceLocation)
        }
    }
}

// MARK: - Fixture runs (no privileges, nothing mounted)

/// `unionmount` and `union-mounts` on fixture mount tables and sysfs trees, plan-only mounts, unmounted trees,
/// help, usage errors and failures.
@Suite struct CommandLineFixtureTests {
    static let fixtures: FilePath = {
        var path = FilePath(#filePath)
        path.removeLastComponent()
        return path.appending("Fixtures")
    }()

    static func aufsHost(_ host: String) -> (mountinfo: String, sysfs: String) {
        let root = fixtures.appending("aufs").appending(host)
        return (root.appending("mountinfo").string, root.appending("sys/fs/aufs").string)
    }

    @Test(
        "every subcommand answers --help with exit 0",
        arguments: [
            [], ["demo"], ["mount"], ["umount"], ["list"], ["inspect"], ["tree"], ["probe"],
        ])
    func help(_ subcommand: [String]) throws {
        let result = try runProcess(try Examples.path("unionmount"), subcommand + ["--help"])
        #expect(result.status == 0, "\(result)")
        #expect(result.output.contains("USAGE: unionmount"), "\(result)")
    }

    @Test(
        "list --json on the aufs fixture hosts decodes to the library's reports",
        arguments: ["docker", "brs0", "vanished"])
    func listAufsFixtures(_ host: String) throws {
        let (mountinfo, sysfs) = Self.aufsHost(host)
        let result = try unionmount("list", "--mountinfo", mountinfo, "--aufs-sysfs", sysfs, "--json")
        #expect(result.status == 0, "\(result)")
        #expect(!result.output.contains(#"\/"#))
        let array = try #require(try result.json() as? [Any])
        #expect(array.count == 1)
        for object in array { try JSONContract.expectMountObject(object) }
        let expected = try MountTable.reports(
            source: .file(FilePath(mountinfo)), aufsSysfs: AufsSysfs(root: FilePath(sysfs)))
        #expect(try result.decode([UnionMountReport].self) == expected)
        let first = try #require(array.first as? [String: Any])
        #expect(first["fsType"] as? String == "aufs")
        #expect((first["aufs"] as? [String: Any])?["si"] as? String == expected.first?.aufs?.si)

        let text = try unionmount("list", "--mountinfo", mountinfo, "--aufs-sysfs", sysfs)
        #expect(text.status == 0)
        #expect(text.output.contains(expected.first?.mountPoint.string ?? "?"))
    }

    @Test("list --json on the docker host: seven branches, rw on top, ro+wh below, with branch ids")
    func listDocker() throws {
        let (mountinfo, sysfs) = Self.aufsHost("docker")
        let result = try unionmount("list", "--mountinfo", mountinfo, "--aufs-sysfs", sysfs, "--json")
        let mounts = try #require(try result.json() as? [[String: Any]])
        let branches = try #require(mounts.first?["branches"] as? [[String: Any]])
        #expect(branches.count == 7)
        #expect(branches.first?["role"] as? String == "upper")
        #expect(branches.first?["permission"] as? String == "rw")
        #expect(branches.dropFirst().allSatisfy { $0["permission"] as? String == "ro" })
        #expect(branches.dropFirst().allSatisfy { $0["attributes"] as? [String] == ["wh"] })
        #expect(branches.allSatisfy { $0["id"] is Int })
        #expect(branches.map { $0["index"] as? Int } == Array(0..<7))
    }

    @Test("list --json on overlay mountinfo fixtures; --type filters")
    func listOverlayFixtures() throws {
        let mountinfo = Self.fixtures.appending("mountinfo/overlay-samples.mountinfo").string
        let result = try unionmount("list", "--mountinfo", mountinfo, "--json")
        #expect(result.status == 0, "\(result)")
        let array = try #require(try result.json() as? [Any])
        for object in array { try JSONContract.expectMountObject(object) }
        let expected = try MountTable.reports(source: .file(FilePath(mountinfo)))
        #expect(!expected.isEmpty)
        #expect(try result.decode([UnionMountReport].self) == expected)
        #expect(expected.allSatisfy { $0.fsType == "overlay" })

        let overlays = try unionmount("list", "--mountinfo", mountinfo, "--type", "overlay", "--json")
        #expect(try overlays.decode([UnionMountReport].self) == expected)
        let aufs = try unionmount("list", "--mountinfo", mountinfo, "--type", "aufs", "--json")
        #expect(aufs.status == 0)
        #expect(try aufs.decode([UnionMountReport].self).isEmpty)
        let text = try unionmount("list", "--mountinfo", mountinfo)
        #expect(text.output.contains("lower  ro"))
        #expect(text.output.contains("/srv/ovl/t/sp ace"))
    }

    @Test("inspect --json on a fixture: one mount object; a mount point that is no union fails with exit 1")
    func inspectFixture() throws {
        let (mountinfo, sysfs) = Self.aufsHost("docker")
        let target = "/var/lib/docker/aufs/mnt/a42d519714d616e9411dbceec4b52808bd6b1ee53e6f6497a281d655357d8b71"
        let result = try unionmount("inspect", target, "--mountinfo", mountinfo, "--aufs-sysfs", sysfs, "--json")
        #expect(result.status == 0, "\(result)")
        try JSONContract.expectMountObject(try result.json())
        let expected = try MountTable.report(
            at: FilePath(target), source: .file(FilePath(mountinfo)), aufsSysfs: AufsSysfs(root: FilePath(sysfs)))
        #expect(try result.decode(UnionMountReport.self) == expected)

        let text = try unionmount("inspect", target, "--mountinfo", mountinfo, "--aufs-sysfs", sysfs)
        #expect(text.output.hasPrefix(target))
        #expect(text.output.contains("ro+wh"))

        let root = try unionmount("inspect", "/", "--mountinfo", mountinfo, "--json")
        #expect(root.status == 1)
        #expect(root.stdout.isEmpty)
        #expect(root.errorOutput.contains("no union filesystem is mounted at /"))
    }

    @Test("tree of an unmounted aufs branch list: whiteouts, opaque dirs and aufs' own names are honoured")
    func treeAufsBranches() throws {
        let trees = try BranchTrees(count: 2, name: "clitree")
        try trees.file(0, "top")
        try trees.file(0, ".wh.gone")
        try trees.file(0, ".wh..wh.aufs")
        try trees.file(0, "dir/.wh..wh..opq")
        try trees.file(0, "dir/new")
        try trees.file(1, "gone")
        try trees.file(1, "dir/old")
        try trees.file(1, "bottom")
        let branches = ["--branch", "\(trees.branches[0])=rw", "--branch", "\(trees.branches[1])=ro+wh"]
        let result = try runProcess(try Examples.path("unionmount"), ["tree"] + branches + ["--json"])
        #expect(result.status == 0, "\(result)")
        try JSONContract.expectTreeArray(try result.json())
        let entries = try result.decode([MergedEntry].self)
        #expect(entries == (try MergedView.entries(branches: trees.branches, format: .aufs)))
        #expect(entries.map(\.path.string) == ["bottom", "dir", "dir/new", "top"])
        #expect(entries.map(\.branch) == [1, 0, 0, 0])
        let objects = try #require(try result.json() as? [[String: Any]])
        #expect(objects.first?["branchPath"] as? String == trees.branches[1].string)
        #expect(objects.map { $0["type"] as? String } == ["file", "directory", "file", "file"])

        let text = try runProcess(try Examples.path("unionmount"), ["tree"] + branches)
        #expect(
            text.output.split(separator: "\n").map { $0.split(separator: " ").first.map(String.init) } == [
                "bottom", "dir/", "dir/new", "top",
            ])
    }

    @Test("tree of an unmounted overlay layer list (--upper, --lower); --userxattr picks user.overlay.*")
    func treeOverlayLayers() throws {
        let trees = try BranchTrees(count: 3, name: "clitree")
        try trees.file(0, "etc/hosts", "upper")
        try trees.file(1, "etc/hosts", "lower")
        try trees.file(1, "etc/passwd")
        try trees.file(2, "bin/sh")
        #expect(symlink("bin", trees.path(1, "sbin").string) == 0)
        var arguments = ["tree", "--upper", trees.branches[0].string]
        for lower in trees.branches.dropFirst() { arguments += ["--lower", lower.string] }
        let result = try runProcess(try Examples.path("unionmount"), arguments + ["--json"])
        #expect(result.status == 0, "\(result)")
        try JSONContract.expectTreeArray(try result.json())
        let entries = try result.decode([MergedEntry].self)
        #expect(entries.map(\.path.string) == ["bin", "bin/sh", "etc", "etc/hosts", "etc/passwd", "sbin"])
        #expect(entries.map(\.branch) == [2, 2, 0, 0, 1, 1])
        #expect(entries.map(\.type) == [.directory, .file, .directory, .file, .file, .symlink])
        let user = try runProcess(try Examples.path("unionmount"), arguments + ["--userxattr", "--json"])
        #expect(try user.decode([MergedEntry].self) == entries)
    }

    @Test("mount --dry-run --json prints the library's plan and mounts nothing")
    func mountDryRun() throws {
        let trees = try BranchTrees(count: 4, name: "clidry")
        let target = try trees.scratch.directory("target")
        let result = try unionmount(
            "mount", "--lower", trees.branches[0].string, "--lower", trees.branches[1].string, "--upper",
            trees.branches[2].string, "--work", trees.branches[3].string, "-o", "index=off", "-o", "redirect_dir=off",
            "--dry-run", "--json", target.string)
        #expect(result.status == 0, "\(result)")
        #expect(!result.output.contains(#"\/"#))
        let object = try #require(try result.json() as? [String: Any])
        #expect(object["strategy"] is String)
        let steps = try #require(object["steps"] as? [[String: Any]])
        #expect(steps.allSatisfy { $0["syscall"] is String })
        var options = OverlayOptions()
        options.index = false
        options.redirectDirectory = .off
        let spec = OverlaySpec(
            lowerDirectories: Array(trees.branches[0...1]), upperDirectory: trees.branches[2],
            workDirectory: trees.branches[3], options: options)
        #expect(try result.decode(MountPlan.self) == (try Mounter().plan(.overlay(spec), at: target)))
        #expect(!MountTable.isMountPoint(target))

        let forced = try unionmount(
            "mount", "--lower", trees.branches[0].string, "--lower", trees.branches[1].string, "--strategy", "mount",
            "--dry-run", "--json", target.string)
        let plan = try forced.decode(MountPlan.self)
        #expect(plan.strategy == .legacy)
        #expect(plan.steps.count == 1)

        let text = try unionmount("mount", "--lower", "/a", "--lower", "/b", "--dry-run", target.string)
        #expect(text.status == 0, "\(text)")
        #expect(text.output.hasPrefix("strategy: "))
    }

    @Test("mount --uid-map/--gid-map --dry-run --json: the idmapped plan; bad maps and mixes exit 64")
    func mountIDMappedDryRun() throws {
        let trees = try BranchTrees(count: 4, name: "cliidmap")
        let target = try trees.scratch.directory("target")
        let layers = [
            "--lower", trees.branches[0].string, "--lower", trees.branches[1].string, "--upper",
            trees.branches[2].string, "--work", trees.branches[3].string,
        ]
        let result = try runProcess(
            try Examples.path("unionmount"),
            ["mount"] + layers + ["--uid-map", "0:100000:65536", "--dry-run", "--json", target.string])
        let features = KernelFeatures.current
        guard features.idmappedLayers else {
            #expect(result.status == 1, "\(result)")
            #expect(result.errorOutput.contains("idmapped"), "\(result)")
            return
        }
        #expect(result.status == 0, "\(result)")
        let plan = try result.decode(MountPlan.self)
        #expect(plan.idMappedLayers == (features.detachedLayerTrees ? .detachedTrees : .attachedTrees))
        let range = IDRange(inside: 0, outside: 100000, count: 65536)
        #expect(plan.steps.first == .createUserNamespace(uids: [range], gids: [range]))
        #expect(plan.steps.filter { $0 == .setIDMap }.count == 2)
        #expect(plan.steps.contains(.openTree(path: trees.branches[1])))
        guard case .overlay(let spec) = plan.spec else { return }
        #expect(spec.idMapping == .ranges(uids: [range], gids: [range]))
        #expect(!MountTable.isMountPoint(target))
        let text = try runProcess(
            try Examples.path("unionmount"),
            ["mount"] + layers + ["--userns", "/proc/self/ns/user", "--dry-run", target.string])
        #expect(text.output.contains("idmapped layers: "), "\(text)")
        #expect(text.output.contains("open_tree \(trees.branches[0].string) OPEN_TREE_CLONE"), "\(text)")
        for bad in [
            ["--uid-map", "0:100000"], ["--uid-map", "0:1:0"], ["--gid-map", "0:1:1"],
            ["--uid-map", "0:100000:10", "--uid-map", "5:200000:10"],
            ["--userns", "/proc/self/ns/user", "--uid-map", "0:1:1"],
        ] {
            let refused = try runProcess(
                try Examples.path("unionmount"), ["mount"] + layers + bad + ["--dry-run", target.string])
            #expect(refused.status == 64, "\(bad): \(refused)")
        }
    }

    @Test("mount -o with a quoted SELinux label: one context option, split nowhere inside the quotes")
    func mountQuotedLabelDryRun() throws {
        let trees = try BranchTrees(count: 2, name: "cliquote")
        let target = try trees.scratch.directory("target")
        for strategy in ["new-mount-api", "mount"] {
            let result = try unionmount(
                "mount", "--lower", trees.branches[0].string, "--lower", trees.branches[1].string,
                "-o", "context=\(QuotedOptionTests.quoted)", "--strategy", strategy, "--dry-run", "--json",
                target.string)
            #expect(result.status == 0, "\(result)")
            let plan = try result.decode(MountPlan.self)
            let spec = OverlaySpec(
                lowerDirectories: Array(trees.branches[0...1]),
                options: OverlayOptions(additional: [OverlayOptions.RawOption("context", QuotedOptionTests.quoted)]))
            let expected = try Mounter().plan(
                .overlay(spec), at: target, strategy: MountStrategy(rawValue: strategy))
            #expect(plan == expected)
        }
    }

    @Test("mount --branch --dry-run --json: the aufs plan, br: list first")
    func mountAufsDryRun() throws {
        let result = try unionmount(
            "mount", "--branch", "/rw", "--branch", "/ro1=ro+wh", "--branch", "/ro2=rr", "-o", "dio", "--dry-run",
            "--json", "/mnt/union")
        #expect(result.status == 0, "\(result)")
        let plan = try result.decode(MountPlan.self)
        #expect(plan.strategy == .aufs)
        let object = try #require(try result.json() as? [String: Any])
        let steps = try #require(object["steps"] as? [[String: Any]])
        #expect(steps.first?["syscall"] as? String == "mount")
        #expect(steps.first?["fstype"] as? String == "aufs")
        #expect(steps.first?["data"] as? String == "br:/rw=rw:/ro1=ro+wh:/ro2=rr,dio")
        let typed = try unionmount("mount", "--type", "aufs", "--branch", "/rw", "--dry-run", "--json", "/mnt/union")
        #expect(try typed.decode(MountPlan.self).strategy == .aufs)
    }

    @Test("probe --json: the kernel features object")
    func probe() throws {
        let result = try unionmount("probe", "--json")
        #expect(result.status == 0, "\(result)")
        let object = try #require(try result.json() as? [String: Any])
        for key in ["overlay", "aufs", "newMountAPI", "pageSize", "maximumLayers", "userNamespaces"] {
            #expect(object[key] != nil, "\(key)")
        }
        #expect(try result.decode(KernelFeatures.self) == KernelFeatures.current)
        let text = try unionmount("probe")
        #expect(text.output.contains("overlay"))
    }

    @Test(
        "bad usage exits 64 with the message on stderr",
        arguments: [
            ["mount", "/x"],
            ["mount", "--lower", "/a"],
            ["mount", "--bogus", "/x"],
            ["mount", "--lower", "/a", "--branch", "/b", "/x"],
            ["mount", "--type", "ext4", "--lower", "/a", "/x"],
            ["mount", "--type", "overlay", "--branch", "/a", "/x"],
            ["mount", "--lower", "/a", "-o", "lowerdir=/b", "/x"],
            ["mount", "--lower", "/a", "-o", "redirect_dir=sideways", "/x"],
            ["mount", "--branch", "/a=zz", "/x"],
            ["mount", "--lower", "/a", "--strategy", "telepathy", "/x"],
            ["umount"],
            ["umount", "/x", "--retries", "many"],
            ["list", "--type", "ext4"],
            ["inspect"],
            ["tree"],
            ["tree", "/x", "--lower", "/a"],
            ["tree", "--branch", "/a", "--upper", "/b"],
            ["tree", "--branch", "/a:b"],
            ["frobnicate"],
        ])
    func usageErrors(_ arguments: [String]) throws {
        let result = try runProcess(try Examples.path("unionmount"), arguments)
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.errorOutput.contains("Error:"), "\(result)")
    }

    @Test("a failed operation exits 1 with the library's typed error on stderr")
    func failures() throws {
        let missing = try unionmount("list", "--mountinfo", "/nonexistent/mountinfo", "--json")
        #expect(missing.status == 1)
        #expect(missing.stdout.isEmpty)
        #expect(missing.errorOutput.hasPrefix("unionmount: "))
        #expect(missing.errorOutput.contains("ENOENT"))

        let (mountinfo, sysfs) = Self.aufsHost("hostile")
        let hostile = try unionmount("list", "--mountinfo", mountinfo, "--aufs-sysfs", sysfs, "--json")
        #expect(hostile.status == 1)
        #expect(hostile.errorOutput.contains("si=../../etc"))

        // The docker fixture's branches do not exist on this machine: the tree cannot be read.
        let (dockerInfo, dockerSysfs) = Self.aufsHost("docker")
        let tree = try unionmount(
            "tree", "/var/lib/docker/aufs/mnt/a42d519714d616e9411dbceec4b52808bd6b1ee53e6f6497a281d655357d8b71",
            "--mountinfo", dockerInfo, "--aufs-sysfs", dockerSysfs, "--json")
        #expect(tree.status == 1)
        #expect(tree.errorOutput.contains("cannot read branch 0"))

        let invalid = try unionmount("mount", "--lower", "/only-one", "--dry-run", "/x")
        #expect(invalid.status == 1)
        #expect(invalid.errorOutput.contains("at least 2 lower layers"))
    }

    @Test("union-mounts --json on a fixture mount table is the library's list; usage errors exit 64")
    func unionMountsExample() throws {
        let mountinfo = Self.fixtures.appending("mountinfo/overlay-samples.mountinfo").string
        let executable = try Examples.path("union-mounts")
        let result = try runProcess(executable, ["--json", "--mountinfo", mountinfo])
        #expect(result.status == 0, "\(result)")
        #expect(
            try result.decode([UnionMountReport].self) == (try MountTable.reports(source: .file(FilePath(mountinfo)))))
        let text = try runProcess(executable, ["--mountinfo", mountinfo])
        #expect(text.output.contains("overlay /srv/ovl/t/m"))
        #expect(try runProcess(executable, ["--bogus"]).status == 64)
        #expect(try runProcess(executable, ["--mountinfo", "/nonexistent"]).status == 1)
        #expect(try runProcess(try Examples.path("assemble-rootfs"), []).status == 64)
    }
}
