import Foundation
import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

/// A path as `seq_show_option` prints an option value: `,`, space, tab, newline and `\` as `\ooo`.
private func shown(_ bytes: [UInt8]) -> String {
    var out = ""
    for byte in bytes {
        switch byte {
        case UInt8(ascii: ","), UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\\"):
            out += "\\" + String(byte, radix: 8).leftPadded3
        default:
            out += String(decoding: [byte], as: UTF8.self)
        }
    }
    return out
}

private func shown(_ path: FilePath) -> String { shown(path.bytes) }

/// A mount point as mountinfo prints it: space, tab, newline and `\` as `\ooo`.
private func mangled(_ path: FilePath) -> String {
    var out = ""
    for byte in path.bytes {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\\"):
            out += "\\" + String(byte, radix: 8).leftPadded3
        default:
            out += String(decoding: [byte], as: UTF8.self)
        }
    }
    return out
}

extension String {
    fileprivate var leftPadded3: String { String(repeating: "0", count: max(0, 3 - count)) + self }
}

/// The one entry of a one-line mountinfo text.
private func mountinfoEntry(_ line: String) throws -> MountEntry {
    try #require(try MountTable.parse(Array((line + "\n").utf8)).first)
}

/// A sysfs with no aufs superblocks at all.
private let emptySysfs = AufsSysfs(root: "/nonexistent/sys/fs/aufs")

private func branch(
    _ index: Int, _ path: FilePath, _ role: BranchState.Role, _ permission: AufsBranch.Permission,
    _ attributes: [String] = [], id: Int? = nil, exists: Bool
) -> BranchState {
    BranchState(
        index: index, path: path, role: role, permission: permission, attributes: attributes, id: id, exists: exists)
}

@Suite("union mount report")
struct UnionMountReportTests {
    // MARK: aufs fixtures

    static let dockerReport: UnionMountReport = {
        let roles: [BranchState.Role] = [.upper, .lower, .lower, .lower, .lower, .lower, .lower]
        let branches = zip(AufsFixtures.dockerBranches, roles).map { branch, role in
            BranchState(
                index: branch.index, path: branch.path, role: role, permission: branch.permission,
                attributes: branch.attributes, id: branch.id, exists: false)
        }
        return UnionMountReport(
            mountID: 412, parentID: 22, mountPoint: AufsFixtures.dockerMountPoint, fsType: "aufs", source: "none",
            readOnly: false, branches: branches, workdir: nil, options: ["dio", "dirperm1"],
            aufs: .init(si: AufsFixtures.dockerSI, xinoPath: "/dev/shm/aufs.xino"))
    }()

    @Test("Docker-shaped aufs host: the exact report")
    func dockerHost() throws {
        let entry = try AufsFixtures.entry("docker", at: AufsFixtures.dockerMountPoint)
        let report = try #require(try UnionMountReport(entry: entry, aufsSysfs: AufsFixtures.sysfs("docker")))
        #expect(report == Self.dockerReport)
        // Spot checks of what the expectation is built from.
        #expect(report.branches.map(\.id) == [1, 2, 3, 5, 8, 9, 10])
        #expect(report.branches.last?.path == "/var/lib/docker/aufs/diff/base image")
        #expect(report.branches[1].attributes == ["wh"])
    }

    @Test("Docker-shaped aufs host: list finds exactly the aufs mount")
    func dockerList() throws {
        let reports = try MountTable.reports(
            source: .file(AufsFixtures.mountinfo("docker")), aufsSysfs: AufsFixtures.sysfs("docker"))
        #expect(reports == [Self.dockerReport])
        #expect(
            try MountTable.reports(
                source: .file(AufsFixtures.mountinfo("docker")), aufsSysfs: AufsFixtures.sysfs("docker"),
                types: ["overlay"]
            ).isEmpty)
    }

    @Test("Docker-shaped aufs host: inspect normalizes the path lexically")
    func dockerInspect() throws {
        let container = AufsFixtures.dockerContainer
        for path in [
            AufsFixtures.dockerMountPoint, FilePath("/var/lib/docker/aufs/mnt/\(container)/"),
            FilePath("/var/lib/docker/./aufs/diff/../mnt/\(container)"),
        ] {
            #expect(
                try MountTable.report(
                    at: path, source: .file(AufsFixtures.mountinfo("docker")), aufsSysfs: AufsFixtures.sysfs("docker"))
                    == Self.dockerReport)
        }
        #expect(
            try MountTable.report(
                at: "/dev/shm", source: .file(AufsFixtures.mountinfo("docker")), aufsSysfs: AufsFixtures.sysfs("docker")
            )
                == nil)
        #expect(
            try MountTable.report(
                at: "/var/lib/docker", source: .file(AufsFixtures.mountinfo("docker")),
                aufsSysfs: AufsFixtures.sysfs("docker"))
                == nil)
    }

    @Test("brs=0 host: the branches from the br: option, no ids; xino from sysfs")
    func brsZeroHost() throws {
        let entry = try AufsFixtures.entry("brs0", at: "/u")
        let report = try UnionMountReport(entry: entry, aufsSysfs: AufsFixtures.sysfs("brs0"))
        #expect(
            report
                == UnionMountReport(
                    mountID: 85, parentID: 22, mountPoint: "/u", fsType: "aufs", source: "none", readOnly: false,
                    branches: [
                        branch(0, "/day1", .upper, .readWrite, exists: false),
                        branch(1, "/base dir", .lower, .readOnly, ["wh"], exists: false),
                    ],
                    workdir: nil, options: ["noplink"],
                    aufs: .init(si: "1f0e2d3c4b5a6978", xinoPath: "/day1/.aufs.xino")))
    }

    @Test("br3 vanished mid-read: the report ends at br2; ro superblock; escaped mount point")
    func vanishedHost() throws {
        let entry = try AufsFixtures.entry("vanished", at: "/srv/union mnt")
        let report = try UnionMountReport(entry: entry, aufsSysfs: AufsFixtures.sysfs("vanished"))
        #expect(
            report
                == UnionMountReport(
                    mountID: 97, parentID: 22, mountPoint: "/srv/union mnt", fsType: "aufs", source: "none",
                    readOnly: true,
                    branches: [
                        branch(0, "/srv/rw", .upper, .readWrite, ["nolwh"], id: 4, exists: false),
                        branch(1, "/srv/a=b\\c\ttab", .lower, .readOnly, id: 6, exists: false),
                        branch(2, "/srv/real", .lower, .realReadOnly, ["coo_reg", "wh"], id: 7, exists: false),
                    ],
                    workdir: nil, options: ["udba=notify", "create=rr"],
                    aufs: .init(si: AufsFixtures.vanishedSI, xinoPath: nil)))
    }

    @Test(
        "hostile aufs entries are refused as malformed input",
        arguments: [
            ("/h/dotdot", "si=../../etc"), ("/h/garbage-br", "si_badb0000000000a1/br0"),
            ("/h/garbage-brid", "si_badb0000000000a2/brid0"), ("/h/no-si", "aufs none rw,dio"),
            ("/h/uppercase", "si=9C1B2E7F40A35D18"), ("/h/bad-list", "br:/x=zz"),
            ("/h/bad-escape", "si_badb0000000000a4/br0"),
        ])
    func hostile(mountPoint: String, input: String) throws {
        let entry = try AufsFixtures.entry("hostile", at: FilePath(mountPoint))
        let sysfs = AufsFixtures.sysfs("hostile")
        let error = try #require(thrown { try UnionMountReport(entry: entry, aufsSysfs: sysfs) })
        #expect(error.code == .malformedInput)
        #expect(error.input?.hasSuffix(input) == true, "\(error)")
    }

    @Test("hostile host: list stops at the first refused entry")
    func hostileList() throws {
        let mountinfo = AufsFixtures.mountinfo("hostile")
        let sysfs = AufsFixtures.sysfs("hostile")
        let error = try #require(thrown { try MountTable.reports(source: .file(mountinfo), aufsSysfs: sysfs) })
        #expect(error.input == "si=../../etc")
    }

    // MARK: aufs against real directories

    @Test("aufs: exists follows stat(2) of each branch path; rw is upper, ro and rr are lower")
    func aufsExists() throws {
        let scratch = try Scratch("report")
        let rw = try scratch.directory("rw")
        let spaced = try scratch.directory("sp ace")
        let target = try scratch.directory("target")
        let file = scratch.path.appending("file")
        try writeFile(file, "x")
        let link = scratch.path.appending("link")
        #expect(target.withPlatformString { to in link.withPlatformString { symlink(to, $0) } } == 0)
        let missing = scratch.path.appending("missing")

        let directory = try scratch.directory("sys/si_abc")
        let lines = [
            "\(rw)=rw", "\(file)=ro", "\(link)=ro+wh", "\(scratch.path)/sp\\040ace=rr", "\(missing)=ro",
        ]
        for (index, line) in lines.enumerated() {
            try writeFile(directory.appending("br\(index)"), line + "\n")
            try writeFile(directory.appending("brid\(index)"), "\(index + 1)\n")
        }
        try writeFile(directory.appending("xi_path"), "\(rw)/.aufs.xino\n")

        let entry = MountEntry(
            mountID: 5, parentID: 1, mountPoint: "/m", mountOptions: ["rw", "relatime"], filesystemType: "aufs",
            source: "none", superOptions: ["rw", "si=abc", "dio"])
        let report = try UnionMountReport(entry: entry, aufsSysfs: AufsSysfs(root: scratch.path.appending("sys")))
        #expect(
            report
                == UnionMountReport(
                    mountID: 5, parentID: 1, mountPoint: "/m", fsType: "aufs", source: "none", readOnly: false,
                    branches: [
                        branch(0, rw, .upper, .readWrite, id: 1, exists: true),
                        branch(1, file, .lower, .readOnly, id: 2, exists: false),
                        branch(2, link, .lower, .readOnly, ["wh"], id: 3, exists: true),
                        branch(3, spaced, .lower, .realReadOnly, id: 4, exists: true),
                        branch(4, missing, .lower, .readOnly, id: 5, exists: false),
                    ],
                    workdir: nil, options: ["dio"], aufs: .init(si: "abc", xinoPath: rw.appending(".aufs.xino"))))
    }

    @Test("aufs from /proc/mounts without sysfs: generic flags dropped, xino= taken as the xino path")
    func aufsProcMounts() throws {
        let text = "none /u aufs rw,relatime,si=1f,xino=/tmp/x\\040y.xino,noplink,br:/a=rw:/b=ro+wh 0 0\n"
        let entry = try #require(try MountTable.parse(Array(text.utf8), format: .mounts).first)
        let report = try UnionMountReport(entry: entry, aufsSysfs: emptySysfs)
        #expect(
            report
                == UnionMountReport(
                    mountID: -1, parentID: -1, mountPoint: "/u", fsType: "aufs", source: "none", readOnly: false,
                    branches: [
                        branch(0, "/a", .upper, .readWrite, exists: false),
                        branch(1, "/b", .lower, .readOnly, ["wh"], exists: false),
                    ],
                    workdir: nil, options: ["xino=/tmp/x y.xino", "noplink"],
                    aufs: .init(si: "1f", xinoPath: "/tmp/x y.xino")))
    }

    @Test("aufs with neither sysfs branches nor a br: list: no branches")
    func aufsNoBranches() throws {
        let entry = try mountinfoEntry("7 1 0:9 / /u rw - aufs none rw,si=1f,acl")
        let report = try #require(try UnionMountReport(entry: entry, aufsSysfs: emptySysfs))
        #expect(report.branches.isEmpty)
        #expect(report.options == ["acl"])
        #expect(report.aufs == .init(si: "1f", xinoPath: nil))
    }

    // MARK: overlay

    /// The layer directories of the overlay samples in kernel-interfaces.md §1.5, made for real.
    struct OverlayDirectories {
        let scratch: Scratch
        let space: FilePath
        let comma: FilePath
        let colon: FilePath
        let upper: FilePath
        let work: FilePath

        init() throws {
            scratch = try Scratch("report")
            space = try scratch.directory("sp ace")
            comma = try scratch.directory("com,ma")
            colon = try scratch.directory("co:lon")
            upper = try scratch.directory("up per,x:y")
            work = try scratch.directory("w")
        }
    }

    @Test("overlay, legacy lowerdir= with escapes: upper first, then lowers; kernel-added options kept")
    func overlayLegacy() throws {
        let dirs = try OverlayDirectories()
        let lowerdir = [dirs.space, dirs.comma, dirs.colon].map { OverlayEscaping.escape($0.bytes) }
            .joined(separator: [UInt8(ascii: ":")])
        let line =
            "73 63 0:40 / \(mangled(dirs.scratch.path))/m rw,relatime - overlay overlay rw,"
            + "lowerdir=\(shown(Array(lowerdir))),upperdir=\(shown(OverlayEscaping.escape(dirs.upper.bytes))),"
            + "workdir=\(shown(dirs.work)),uuid=on"
        let report = try UnionMountReport(entry: try mountinfoEntry(line), aufsSysfs: emptySysfs)
        #expect(
            report
                == UnionMountReport(
                    mountID: 73, parentID: 63, mountPoint: dirs.scratch.path.appending("m"), fsType: "overlay",
                    source: "overlay", readOnly: false,
                    branches: [
                        branch(0, dirs.upper, .upper, .readWrite, exists: true),
                        branch(1, dirs.space, .lower, .readOnly, exists: true),
                        branch(2, dirs.comma, .lower, .readOnly, exists: true),
                        branch(3, dirs.colon, .lower, .readOnly, exists: true),
                    ],
                    workdir: dirs.work, options: ["uuid=on"], aufs: nil))
    }

    @Test("overlay, lowerdir+= raw layers: the same report as the legacy string")
    func overlayAppend() throws {
        let dirs = try OverlayDirectories()
        let line =
            "73 63 0:40 / /srv/m rw,relatime - overlay none rw,lowerdir+=\(shown(dirs.space)),"
            + "lowerdir+=\(shown(dirs.comma)),lowerdir+=\(shown(dirs.colon)),"
            + "upperdir=\(shown(OverlayEscaping.escape(dirs.upper.bytes))),workdir=\(shown(dirs.work))"
        let report = try #require(try UnionMountReport(entry: try mountinfoEntry(line), aufsSysfs: emptySysfs))
        #expect(report.branches.map(\.path) == [dirs.upper, dirs.space, dirs.comma, dirs.colon])
        #expect(report.branches.map(\.role) == [.upper, .lower, .lower, .lower])
        #expect(report.branches.map(\.permission) == [.readWrite, .readOnly, .readOnly, .readOnly])
        #expect(report.branches.map(\.index) == [0, 1, 2, 3])
        #expect(report.branches.allSatisfy { $0.exists && $0.id == nil && $0.attributes.isEmpty })
        #expect(report.workdir == dirs.work)
        #expect(report.options.isEmpty)
        #expect(report.source == "none")
    }

    @Test("overlay without upper, with data-only layers: read-only, roles lower and data, index from 0")
    func overlayDataOnly() throws {
        let scratch = try Scratch("report")
        let l1 = try scratch.directory("l1")
        let l2 = try scratch.directory("l2")
        let d1 = try scratch.directory("d1")
        let d2 = scratch.path.appending("d2")  // never created
        let expected = UnionMountReport(
            mountID: 68, parentID: 63, mountPoint: "/srv/ovl/t/m", fsType: "overlay", source: "demo", readOnly: true,
            branches: [
                branch(0, l1, .lower, .readOnly, exists: true),
                branch(1, l2, .lower, .readOnly, exists: true),
                branch(2, d1, .data, .readOnly, exists: true),
                branch(3, d2, .data, .readOnly, exists: false),
            ],
            workdir: nil, options: ["redirect_dir=on"], aufs: nil)
        let appended =
            "68 63 0:40 / /srv/ovl/t/m rw,relatime - overlay demo ro,lowerdir+=\(l1),lowerdir+=\(l2),"
            + "datadir+=\(d1),datadir+=\(d2),redirect_dir=on"
        let legacy =
            "68 63 0:40 / /srv/ovl/t/m rw,relatime - overlay demo ro,lowerdir=\(l1):\(l2)::\(d1)::\(d2),"
            + "redirect_dir=on"
        #expect(try UnionMountReport(entry: try mountinfoEntry(appended), aufsSysfs: emptySysfs) == expected)
        #expect(try UnionMountReport(entry: try mountinfoEntry(legacy), aufsSysfs: emptySysfs) == expected)
    }

    @Test("overlay: exists is false for a missing layer, a file and a relative path; true through a symlink")
    func overlayExists() throws {
        let scratch = try Scratch("report")
        let upper = try scratch.directory("u")
        let target = try scratch.directory("target")
        let link = scratch.path.appending("link")
        #expect(target.withPlatformString { to in link.withPlatformString { symlink(to, $0) } } == 0)
        let file = scratch.path.appending("file")
        try writeFile(file, "x")
        // `.` is a directory relative to any working directory, but not the mounter's, necessarily.
        let line =
            "9 1 0:40 / /m rw - overlay overlay rw,lowerdir=\(link):\(file):\(scratch.path)/missing:.,"
            + "upperdir=\(upper),workdir=rel/w"
        let report = try #require(try UnionMountReport(entry: try mountinfoEntry(line), aufsSysfs: emptySysfs))
        #expect(report.branches.map(\.path) == [upper, link, file, scratch.path.appending("missing"), "."])
        #expect(report.branches.map(\.exists) == [true, true, false, false, false])
        #expect(report.workdir == "rel/w")
    }

    @Test("overlay: options keep mount-table order across user and kernel-added options")
    func overlayOptionOrder() throws {
        let line =
            "41432 41365 0:13139 / /srv/ovl/r/m2 rw,relatime shared:5 - overlay overlay rw,lowerdir=/nonexistent/l,"
            + "upperdir=/nonexistent/u2,workdir=/nonexistent/w2,redirect_dir=nofollow,uuid=on,userxattr"
        let entry = try mountinfoEntry(line)
        let layout = try #require(entry.overlayLayout)
        #expect(layout.otherOptions == ["userxattr"])
        #expect(layout.kernelAddedOptions == ["redirect_dir=nofollow", "uuid=on"])
        let report = try #require(try UnionMountReport(entry: entry, aufsSysfs: emptySysfs))
        #expect(report.options == ["redirect_dir=nofollow", "uuid=on", "userxattr"])
        #expect(report.branches.map(\.exists) == [false, false])
    }

    @Test("overlay from /proc/mounts: no ids, generic flags left out of options")
    func overlayProcMounts() throws {
        let text = "overlay /m overlay rw,nosuid,relatime,lowerdir=/l,upperdir=/u,workdir=/w,index=on,xino=off 0 0\n"
        let entry = try #require(try MountTable.parse(Array(text.utf8), format: .mounts).first)
        #expect(
            try UnionMountReport(entry: entry, aufsSysfs: emptySysfs)
                == UnionMountReport(
                    mountID: -1, parentID: -1, mountPoint: "/m", fsType: "overlay", source: "overlay", readOnly: false,
                    branches: [
                        branch(0, "/u", .upper, .readWrite, exists: false),
                        branch(1, "/l", .lower, .readOnly, exists: false),
                    ],
                    workdir: "/w", options: ["index=on", "xino=off"], aufs: nil))
    }

    // MARK: fuse-overlayfs

    @Test("fuse-overlayfs from mountinfo: the kernel shows no layers, only FUSE's options")
    func fuseMountinfo() throws {
        let line =
            "120 22 0:80 / /run/fo rw,nosuid,nodev,relatime - fuse.fuse-overlayfs fuse-overlayfs "
            + "rw,user_id=0,group_id=0,default_permissions,allow_other"
        #expect(
            try UnionMountReport(entry: try mountinfoEntry(line), aufsSysfs: emptySysfs)
                == UnionMountReport(
                    mountID: 120, parentID: 22, mountPoint: "/run/fo", fsType: "fuse.fuse-overlayfs",
                    source: "fuse-overlayfs", readOnly: false, branches: [], workdir: nil,
                    options: ["user_id=0", "group_id=0", "default_permissions", "allow_other"], aufs: nil))
    }

    @Test("fuse-overlayfs from an fstab-shaped file: layers with real directories")
    func fuseFstab() throws {
        let scratch = try Scratch("report")
        let l1 = try scratch.directory("l1")
        let l2 = scratch.path.appending("l2")
        let upper = try scratch.directory("u")
        let work = try scratch.directory("w")
        let text =
            "fuse-overlayfs /m fuse.fuse-overlayfs lowerdir=\(l1):\(l2),upperdir=\(upper),workdir=\(work),"
            + "squash_to_root,noauto 0 0\n"
        let entry = try #require(try MountTable.parse(Array(text.utf8), format: .mounts).first)
        #expect(
            try UnionMountReport(entry: entry, aufsSysfs: emptySysfs)
                == UnionMountReport(
                    mountID: -1, parentID: -1, mountPoint: "/m", fsType: "fuse.fuse-overlayfs",
                    source: "fuse-overlayfs", readOnly: false,
                    branches: [
                        branch(0, upper, .upper, .readWrite, exists: true),
                        branch(1, l1, .lower, .readOnly, exists: true),
                        branch(2, l2, .lower, .readOnly, exists: false),
                    ],
                    workdir: work, options: ["squash_to_root", "noauto"], aufs: nil))
    }

    // MARK: Other types, list and inspect

    @Test(
        "non-union types give no report",
        arguments: ["ext4", "tmpfs", "overlayfs", "overlay2", "fuse.sshfs", "fuse.fuse-overlayfs2", "aufs2", "fuse"])
    func nonUnion(type: String) throws {
        let entry = try mountinfoEntry("5 1 0:9 / /m rw - \(type) src rw,si=../../etc,lowerdir=/l")
        #expect(try UnionMountReport(entry: entry, aufsSysfs: emptySysfs) == nil)
        #expect(UnionFilesystemKind(entry) == nil)
    }

    /// A table with each union type and two others, aufs' branches in its options.
    private static let mixedTable = """
        22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
        30 22 0:40 / /o rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
        31 22 0:41 / /a rw,relatime - aufs none rw,si=2a,br:/b=rw
        32 22 0:42 / /t rw,nosuid - tmpfs tmpfs rw
        33 22 0:43 / /f rw,nosuid,nodev,relatime - fuse.fuse-overlayfs fuse-overlayfs rw,user_id=0,group_id=0

        """

    @Test("list: every union type in file order, filtered by type")
    func listTypes() throws {
        let scratch = try Scratch("report")
        let mountinfo = scratch.path.appending("mountinfo")
        try writeFile(mountinfo, Self.mixedTable)
        func mountPoints(_ types: Set<String>?) throws(UnionMountError) -> [FilePath] {
            try MountTable.reports(source: .file(mountinfo), aufsSysfs: emptySysfs, types: types).map(\.mountPoint)
        }
        #expect(try mountPoints(nil) == ["/o", "/a", "/f"])
        #expect(try mountPoints(MountTable.unionFilesystemTypes) == ["/o", "/a", "/f"])
        #expect(try mountPoints(["overlay"]) == ["/o"])
        #expect(try mountPoints(["aufs", "fuse.fuse-overlayfs"]) == ["/a", "/f"])
        #expect(try mountPoints(["ext4", "tmpfs"]).isEmpty)
        #expect(try mountPoints([]).isEmpty)
        #expect(MountTable.unionFilesystemTypes == ["overlay", "aufs", "fuse.fuse-overlayfs"])
    }

    @Test("list: a mountinfo that cannot be read is a system call error")
    func listMissingTable() throws {
        let error = try #require(thrown { try MountTable.reports(source: .file("/nonexistent/mountinfo")) })
        #expect(error.code == .systemCallFailed)
        #expect(error.errno == .noSuchFileOrDirectory)
    }

    @Test("list of this process's real mount table does not throw and only reports union types")
    func listLive() throws {
        let reports = try MountTable.reports()
        #expect(reports.allSatisfy { MountTable.unionFilesystemTypes.contains($0.fsType) })
    }

    @Test("inspect: the topmost of stacked mounts, found by parent, whatever the file order")
    func inspectStacked() throws {
        let scratch = try Scratch("report")
        let lower = "100 22 0:90 / /stack rw - overlay overlay rw,lowerdir=/l\n"
        let upper = "101 100 0:91 / /stack rw - aufs none rw,si=1f,br:/b=rw\n"
        let child = "102 101 0:92 / /stack/sub rw - overlay overlay rw,lowerdir=/l2\n"
        let tmpfs = "103 101 0:93 / /stack rw - tmpfs tmpfs rw\n"
        let mountinfo = scratch.path.appending("mountinfo")
        func inspect(_ text: String, _ path: FilePath = "/stack") throws(UnionMountError) -> UnionMountReport? {
            do {
                try writeFile(mountinfo, text)
            } catch {
                Issue.record(error)
            }
            return try MountTable.report(at: path, source: .file(mountinfo), aufsSysfs: emptySysfs)
        }
        #expect(try inspect(lower + upper + child)?.mountID == 101)
        #expect(try inspect(upper + child + lower)?.mountID == 101)
        #expect(try inspect(lower)?.mountID == 100)
        #expect(try inspect(lower + upper + tmpfs) == nil)
        #expect(try inspect(lower + upper + child, "/stack/sub")?.mountID == 102)
        #expect(try inspect(lower + upper + child, "/stack/sub/..")?.mountID == 101)
        #expect(try inspect(lower + upper + child, "/nowhere") == nil)
        #expect(try inspect(lower + upper + child, "/") == nil)
    }

    @Test("inspect: a relative path is made absolute against the working directory")
    func inspectRelative() throws {
        let scratch = try Scratch("report")
        let mountPoint = absolute("relative-mount/m")
        let mountinfo = scratch.path.appending("mountinfo")
        try writeFile(mountinfo, "100 22 0:90 / \(mangled(mountPoint)) rw - overlay overlay rw,lowerdir=/l\n")
        let report = try MountTable.report(
            at: "relative-mount/./x/../m", source: .file(mountinfo), aufsSysfs: emptySysfs)
        #expect(report?.mountPoint == mountPoint)
    }

    // MARK: JSON contract

    private static func json(_ report: UnionMountReport) throws -> [String: Any] {
        let data = try JSONEncoder().encode(report)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private static let reportKeys: Set<String> = [
        "mountID", "parentID", "mountPoint", "fsType", "source", "readOnly", "branches", "workdir", "options", "aufs",
    ]
    private static let branchKeys: Set<String> = [
        "index", "path", "role", "permission", "attributes", "id", "exists", "idmapped",
    ]

    @Test("JSON of an aufs report: exactly the contract keys, workdir null, aufs {si, xinoPath}")
    func jsonAufs() throws {
        let object = try Self.json(Self.dockerReport)
        #expect(Set(object.keys) == Self.reportKeys)
        #expect(object["mountID"] as? Int == 412)
        #expect(object["parentID"] as? Int == 22)
        #expect(object["mountPoint"] as? String == AufsFixtures.dockerMountPoint.string)
        #expect(object["fsType"] as? String == "aufs")
        #expect(object["source"] as? String == "none")
        #expect(object["readOnly"] as? Bool == false)
        #expect(object["workdir"] is NSNull)
        #expect(object["options"] as? [String] == ["dio", "dirperm1"])
        let aufs = try #require(object["aufs"] as? [String: Any])
        #expect(Set(aufs.keys) == ["si", "xinoPath"])
        #expect(aufs["si"] as? String == AufsFixtures.dockerSI)
        #expect(aufs["xinoPath"] as? String == "/dev/shm/aufs.xino")
        let branches = try #require(object["branches"] as? [[String: Any]])
        #expect(branches.count == 7)
        for branch in branches { #expect(Set(branch.keys) == Self.branchKeys) }
        #expect(branches[0]["role"] as? String == "upper")
        #expect(branches[0]["permission"] as? String == "rw")
        #expect(branches[0]["id"] as? Int == 1)
        #expect(branches[6]["path"] as? String == "/var/lib/docker/aufs/diff/base image")
        #expect(branches[6]["attributes"] as? [String] == ["wh"])
        #expect(branches[6]["exists"] as? Bool == false)
        let roundTrip = try JSONDecoder().decode(UnionMountReport.self, from: JSONEncoder().encode(Self.dockerReport))
        #expect(roundTrip == Self.dockerReport)
    }

    @Test("JSON of an overlay report: aufs null, branch id null; an aufs report without xino has xinoPath null")
    func jsonOverlay() throws {
        let overlay = UnionMountReport(
            mountID: 1, parentID: 0, mountPoint: "/m", fsType: "overlay", source: "overlay", readOnly: true,
            branches: [
                branch(0, "/l", .lower, .readOnly, exists: false), branch(1, "/d", .data, .readOnly, exists: true),
            ],
            workdir: "/w", options: [], aufs: nil)
        let object = try Self.json(overlay)
        #expect(Set(object.keys) == Self.reportKeys)
        #expect(object["aufs"] is NSNull)
        #expect(object["workdir"] as? String == "/w")
        #expect(object["options"] as? [String] == [])
        let branches = try #require(object["branches"] as? [[String: Any]])
        for branch in branches {
            #expect(Set(branch.keys) == Self.branchKeys)
            #expect(branch["id"] is NSNull)
            #expect(branch["attributes"] as? [String] == [])
        }
        #expect(branches.map { $0["role"] as? String } == ["lower", "data"])
        #expect(try JSONDecoder().decode(UnionMountReport.self, from: JSONEncoder().encode(overlay)) == overlay)

        var aufs = Self.dockerReport
        aufs.aufs?.xinoPath = nil
        let aufsObject = try #require(try Self.json(aufs)["aufs"] as? [String: Any])
        #expect(Set(aufsObject.keys) == ["si", "xinoPath"])
        #expect(aufsObject["xinoPath"] is NSNull)
    }
}
