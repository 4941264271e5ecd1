import SystemPackage
import Testing

@testable import UnionMount

@Suite("Overlay decoding")
struct OverlayDecodingTests {
    typealias Support = MountTableTestSupport

    private func layout(_ superOptions: String, type: String = "overlay") throws -> OverlayLayout {
        let entries = try MountTable.parse(
            Support.bytes("73 63 0:40 / /m rw,relatime - \(type) overlay \(superOptions)"))
        let entry = try #require(entries.first)
        return try #require(entry.overlayLayout)
    }

    // MARK: kernel-interfaces.md §1.5 samples

    @Test func legacyLowerdirWithEscapes() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("overlay-samples.mountinfo")))
        let layout = try #require(entries[0].overlayLayout)
        #expect(layout.driver == .overlay)
        #expect(layout.lowerDirectories == ["/srv/ovl/t/sp ace", "/srv/ovl/t/com,ma", "/srv/ovl/t/co:lon"])
        #expect(layout.dataDirectories.isEmpty)
        #expect(layout.upperDirectory == "/srv/ovl/t/up per,x:y")
        #expect(layout.workDirectory == "/srv/ovl/t/w")
        #expect(layout.otherOptions.isEmpty)
        #expect(layout.kernelAddedOptions == ["uuid=on"])
        #expect(!layout.hasRelativePaths)
    }

    @Test func appendSyntaxGivesTheSameLayers() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("overlay-samples.mountinfo")))
        let legacy = try #require(entries[0].overlayLayout)
        let appended = try #require(entries[1].overlayLayout)
        #expect(appended.lowerDirectories == legacy.lowerDirectories)
        #expect(appended.upperDirectory == legacy.upperDirectory)
        #expect(appended.workDirectory == "/srv/ovl/t/w2")
        // The sample elides options with a literal "...": kept as an option.
        #expect(appended.otherOptions == ["..."])
        #expect(appended.kernelAddedOptions.isEmpty)
    }

    @Test func dataOnlyLayersWithoutUpper() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("overlay-samples.mountinfo")))
        let appended = try #require(entries[2].overlayLayout)
        let legacy = try #require(entries[3].overlayLayout)
        for layout in [appended, legacy] {
            #expect(layout.lowerDirectories == ["/srv/ovl/t/l1", "/srv/ovl/t/l2"])
            #expect(layout.dataDirectories == ["/srv/ovl/t/d1", "/srv/ovl/t/d2"])
            #expect(layout.upperDirectory == nil)
            #expect(layout.workDirectory == nil)
            // An upper-less mount shows redirect_dir=on by itself.
            #expect(layout.kernelAddedOptions == ["redirect_dir=on"])
            #expect(layout.otherOptions.isEmpty)
        }
        #expect(appended == legacy)
        #expect(entries[2].isReadOnly && entries[3].isReadOnly)
    }

    @Test func rootlessWithUserxattr() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("overlay-samples.mountinfo")))
        let layout = try #require(entries[4].overlayLayout)
        // The sample elides the lower layers as "...", which reads as one relative path.
        #expect(layout.lowerDirectories == ["..."])
        #expect(layout.hasRelativePaths)
        #expect(layout.upperDirectory == "/srv/ovl/r/u2")
        #expect(layout.workDirectory == "/srv/ovl/r/w2")
        #expect(layout.kernelAddedOptions == ["redirect_dir=nofollow", "uuid=on"])
        #expect(layout.otherOptions == ["userxattr"])
    }

    // MARK: Kernel-added options

    @Test(arguments: [
        // (super options, other, kernel-added)
        ("rw,lowerdir=/a,upperdir=/u,workdir=/w,uuid=null", [String](), ["uuid=null"]),
        ("rw,lowerdir=/a,upperdir=/u,workdir=/w,uuid=off", ["uuid=off"], []),
        ("rw,lowerdir=/a,upperdir=/u,workdir=/w,redirect_dir=on", ["redirect_dir=on"], []),
        ("rw,lowerdir=/a,upperdir=/u,workdir=/w,redirect_dir=nofollow", ["redirect_dir=nofollow"], []),
        ("ro,lowerdir=/a:/b,redirect_dir=nofollow", [], ["redirect_dir=nofollow"]),
        ("rw,lowerdir=/a,upperdir=/u,workdir=/w,index=on", ["index=on"], []),
        ("rw,lowerdir=/a,upperdir=/u,workdir=/w,index=on,nfs_export=on", ["nfs_export=on"], ["index=on"]),
        ("rw,lowerdir=/a,upperdir=/u,workdir=/w,index=on,nfs_export=off", ["index=on", "nfs_export=off"], []),
        (
            "rw,lowerdir=/a,upperdir=/u,workdir=/w,default_permissions,xino=on,metacopy=on,fsync=volatile,verity=on",
            ["default_permissions", "xino=on", "metacopy=on", "fsync=volatile", "verity=on"], []
        ),
        ("rw,lowerdir=/a,upperdir=/u,workdir=/w,volatile,uuid=on", ["volatile"], ["uuid=on"]),
    ])
    func optionClassification(options: String, other: [String], added: [String]) throws {
        let decoded = try layout(options)
        #expect(decoded.otherOptions == other)
        #expect(decoded.kernelAddedOptions == added)
        #expect(decoded.lowerDirectories.first == "/a")
    }

    // MARK: Layers

    @Test func threeHundredLayers() throws {
        let layers = (0..<300).map { "/var/lib/containers/storage/overlay/l/layer-\($0)-ABCDEFGHIJKLMNOPQRSTUVWXYZ" }
        let legacy = try layout("rw,lowerdir=" + layers.joined(separator: ":") + ",upperdir=/u,workdir=/w")
        #expect(legacy.lowerDirectories == layers.map { FilePath($0) })
        let appended = try layout("rw," + layers.map { "lowerdir+=" + $0 }.joined(separator: ",") + ",upperdir=/u")
        #expect(appended.lowerDirectories == legacy.lowerDirectories)
        #expect(appended.workDirectory == nil)
    }

    @Test func legacyEscapesAfterOctalDecoding() throws {
        // Kernel view of lowerdir="/a\\b:/c\:d::/e\,f" (user escapes), then octal-escaped by seq_show_option.
        let decoded = try layout(#"rw,lowerdir=/a\134\134b:/c\134:d::/e\134\054f,upperdir=/u\134\134p,workdir=w"#)
        #expect(decoded.lowerDirectories.map(\.bytes) == [Support.bytes(#"/a\b"#), Support.bytes("/c:d")])
        #expect(decoded.dataDirectories == ["/e,f"])
        #expect(decoded.upperDirectory.map(\.bytes) == Support.bytes(#"/u\p"#))
        #expect(decoded.workDirectory == "w")
        #expect(decoded.hasRelativePaths)
    }

    @Test func appendValuesAreFinalPaths() throws {
        // lowerdir+= is raw: a backslash is part of the name and ':' is literal.
        let decoded = try layout(#"rw,lowerdir+=/a\134:b,datadir+=/d\054x:y,upperdir=/u"#)
        #expect(decoded.lowerDirectories.map(\.bytes) == [Support.bytes(#"/a\:b"#)])
        #expect(decoded.dataDirectories == ["/d,x:y"])
    }

    @Test func nonUTF8LayerPaths() throws {
        let line: [UInt8] =
            Support.bytes("1 0 0:1 / /m rw - overlay o rw,lowerdir=/l/") + [0xFF, 0xFE]
            + Support.bytes(":/l2,upperdir=/u")
            + [0x80]
        let entries = try MountTable.parse(line)
        let entry = try #require(entries.first)
        let decoded = try #require(entry.overlayLayout)
        #expect(decoded.lowerDirectories.map(\.bytes) == [Support.bytes("/l/") + [0xFF, 0xFE], Support.bytes("/l2")])
        #expect(decoded.upperDirectory.map(\.bytes) == Support.bytes("/u") + [0x80])
    }

    @Test func lastLowerdirWinsAndEmptyClears() throws {
        #expect(try layout("rw,lowerdir=/a:/b,lowerdir=/c").lowerDirectories == ["/c"])
        #expect(try layout("rw,lowerdir=/a::/d,lowerdir=").lowerDirectories.isEmpty)
        #expect(try layout("rw,lowerdir=/a::/d,lowerdir=").dataDirectories.isEmpty)
    }

    @Test(arguments: [":/a", "/a:", "/a:::/b", "/a::/d:/b"])
    func unsplittableLowerdirIsKeptAsAnOption(value: String) throws {
        let decoded = try layout("rw,lowerdir=\(value),upperdir=/u,workdir=/w")
        #expect(decoded.lowerDirectories.isEmpty)
        #expect(decoded.otherOptions == ["lowerdir=\(value)"])
        #expect(decoded.upperDirectory == "/u")
    }

    @Test func procMountsEntryDropsGenericFlags() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("proc-mounts.txt"), format: .mounts))
        let overlay = try #require(entries[3].overlayLayout)
        #expect(overlay.lowerDirectories == ["/srv/ovl/t/sp ace", "/srv/ovl/t/com,ma"])
        #expect(overlay.upperDirectory == "/srv/ovl/t/u")
        #expect(overlay.otherOptions.isEmpty)
        #expect(overlay.kernelAddedOptions == ["uuid=on"])
        let readOnly = try #require(entries[4].overlayLayout)
        #expect(readOnly.lowerDirectories == ["/srv/ovl/t/l1", "/srv/ovl/t/l2"])
        #expect(readOnly.kernelAddedOptions == ["redirect_dir=on"])
        #expect(entries[4].isReadOnly)
        #expect(entries[0].overlayLayout == nil)
    }

    @Test func fstabOverlayKeepsUserOptions() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("fstab.txt"), format: .mounts))
        let overlay = try #require(entries[4].overlayLayout)
        #expect(overlay.lowerDirectories == ["/l1", "/l2"])
        #expect(overlay.upperDirectory == "/u")
        #expect(overlay.workDirectory == "/w")
        #expect(overlay.otherOptions == ["noauto"])
    }

    @Test func otherFilesystemsHaveNoLayout() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("propagation-samples.mountinfo")))
        #expect(entries.allSatisfy { $0.overlayLayout == nil })
        #expect(
            try MountTable.parse(Support.bytes("1 0 0:1 / /m rw - overlayfs o rw,lowerdir=/a")).first?.overlayLayout
                == nil)
    }

    // MARK: fuse-overlayfs

    @Test func fuseOverlayfsFromFstab() throws {
        let entries = try MountTable.entries(source: .file(Support.fixturePath("fstab.txt"), format: .mounts))
        let fuse = try #require(entries[6].overlayLayout)
        #expect(fuse.driver == .fuseOverlayfs)
        #expect(fuse.lowerDirectories == ["/a", "/b"])
        #expect(fuse.upperDirectory == "/up")
        #expect(fuse.workDirectory == "/wk")
    }

    @Test func fuseOverlayfsInMountinfoShowsOnlyFuseOptions() throws {
        let decoded = try layout(
            "rw,user_id=1000,group_id=1000,default_permissions,allow_other,max_read=131072", type: "fuse.fuse-overlayfs"
        )
        #expect(decoded.driver == .fuseOverlayfs)
        #expect(decoded.lowerDirectories.isEmpty)
        #expect(decoded.upperDirectory == nil)
        #expect(decoded.kernelAddedOptions == ["user_id=1000", "group_id=1000", "default_permissions", "allow_other"])
        #expect(decoded.otherOptions == ["max_read=131072"])
    }

    @Test func fuseOverlayfsEscaping() throws {
        // libfuse: \ooo is a byte, \x is x; fuse-overlayfs: ':' separates, "\:" is a colon, empty layers vanish.
        let decoded = try layout(
            #"lowerdir=/a\134\134:1::/b\134101:/c\134\054d:,upperdir=/u\134\134:2,workdir=/w,squash_to_root"#,
            type: "fuse.fuse-overlayfs")
        #expect(decoded.lowerDirectories == ["/a:1", "/bA", "/c,d"])
        #expect(decoded.upperDirectory == "/u:2")
        #expect(decoded.workDirectory == "/w")
        #expect(decoded.otherOptions == ["squash_to_root"])
    }

    @Test func libfuseUnescapeEdges() {
        let cases: [(String, String)] = [
            (#"plain"#, "plain"), (#"a\,b"#, "a,b"), (#"\101"#, "A"), (#"\400"#, "400"), (#"x\"#, #"x\"#),
            (#"\\"#, #"\"#), (#"\12"#, "12"),
        ]
        for (input, output) in cases {
            #expect(OverlayDecoder.libfuseUnescape(Support.bytes(input)[...]) == Support.bytes(output), "\(input)")
        }
    }

    @Test func layoutValueSemantics() {
        let one = OverlayLayout(lowerDirectories: ["/a"], upperDirectory: "/u", workDirectory: "/w")
        var two = one
        #expect(one == two)
        two.otherOptions.append("index=on")
        #expect(one != two)
        #expect(!OverlayLayout(lowerDirectories: ["/a"]).hasRelativePaths)
        #expect(OverlayLayout(lowerDirectories: ["/a"], dataDirectories: ["d"]).hasRelativePaths)
    }
}
