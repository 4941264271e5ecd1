import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests.MountQueryTests {
    /// A known set of mounts in one scratch directory, with the facts each must show whatever source read it.
    struct KnownMounts {
        let scratch: Scratch
        /// tmpfs with a hostile source and mount point, nosuid,nodev,noexec, size and mode.
        let odd: FilePath
        /// A bind mount of `odd`'s subdirectory `sub/dir` (root other than `/`).
        let bind: FilePath
        /// An overlay with hostile layer names, mounted with mount(2) (every kernel has it).
        let overlay: FilePath
        let overlayLowers: [FilePath]
        /// A tmpfs mounted at `covered`, then hidden by a tmpfs mounted on its parent `cover`, which has a
        /// directory of the same name: a file under `covered` is on `cover`'s mount, whatever the table lists.
        let cover: FilePath
        let covered: FilePath
        /// Two tmpfs stacked on one mount point.
        let stacked: FilePath
    }

    func makeKnownMounts() throws -> KnownMounts {
        let scratch = try Scratch("query-sources")
        let odd = scratch.path.appending("tmp fs\\,#\n")
        try tmpfs(
            odd, source: "src ha#sh,x\\y z", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), data: "size=1m,mode=0700")
        try makeDirectories(odd.appending("sub/dir"))
        try writeFile(odd.appending("sub/dir/file"), "bound")
        let bind = try scratch.directory("bind, mount")
        remount(odd.appending("sub/dir"), bind, flags: UInt(MS_BIND))
        let (overlay, lowers) = try hostileOverlay(scratch, tag: "src", strategy: .legacy)
        let cover = scratch.path.appending("cover")
        let covered = cover.appending("inner")
        try tmpfs(covered)
        try writeFile(covered.appending("hidden"), "hidden")
        try tmpfs(cover)
        try makeDirectories(covered)
        try writeFile(covered.appending("file"), "cover")
        let stacked = scratch.path.appending("stacked")
        try tmpfs(stacked, source: "bottom")
        try tmpfs(stacked, source: "top")
        return KnownMounts(
            scratch: scratch, odd: odd, bind: bind, overlay: overlay, overlayLowers: lowers, cover: cover,
            covered: covered, stacked: stacked)
    }

    /// Every query's answer for the known mounts, through one source: what the sources must agree on.
    struct Answers: Equatable {
        var entries: [MountEntry]
        var under: [MountEntry]
        var containing: [MountEntry]
        var at: [MountEntry?]
        var unions: [MountEntry]
        var reports: [UnionMountReport]
        var usingBranch: [UnionMountReport]
        var reportAt: UnionMountReport?
    }

    func answers(_ known: KnownMounts, _ source: Queries.Source) throws -> Answers {
        let ours = { (entry: MountEntry) in entry.mountPoint.starts(with: known.scratch.path) }
        let files = [
            known.odd.appending("sub/dir/file"), known.bind.appending("file"), known.overlay.appending("f0"),
            known.covered.appending("file"), known.stacked,
        ]
        let points = [known.odd, known.bind, known.overlay, known.cover, known.covered, known.stacked]
        return Answers(
            entries: try Queries.entries(source: source).filter(ours),
            under: try Queries.entries(under: known.scratch.path, source: source),
            containing: try files.map { try Queries.entry(containing: $0, source: source) },
            at: try points.map { try Queries.entry(at: $0, source: source) },
            unions: try Queries.unionMounts(source: source).filter(ours),
            reports: try Queries.reports(source: source).filter { $0.mountPoint.starts(with: known.scratch.path) },
            usingBranch: try Queries.reports(usingBranch: known.overlayLowers[1], source: source),
            reportAt: try Queries.report(at: known.overlay, source: source))
    }

    @Test("every query gives the same entries through every live source, and the facts the mounts were made with")
    func everyQueryAgreesAcrossSources() throws {
        let known = try makeKnownMounts()
        let reference = try answers(known, .mountinfo)
        for source in Self.sources where source != .mountinfo {
            let other = try answers(known, source)
            #expect(other.entries == reference.entries, "\(source)")
            #expect(other.under == reference.under, "\(source)")
            #expect(other.containing == reference.containing, "\(source)")
            #expect(other.at == reference.at, "\(source)")
            #expect(other.unions == reference.unions, "\(source)")
            #expect(other.reports == reference.reports, "\(source)")
            #expect(other.usingBranch == reference.usingBranch, "\(source)")
            #expect(other.reportAt == reference.reportAt, "\(source)")
        }
        if !Statmount.describesMounts {
            let error = try #require(throws: UnionMountError.self) { try Queries.entries(source: .statmount) }
            #expect(error.code == .unsupported)
        }

        // What the mounts were made with, so a source that is wrong the same way as mountinfo still fails.
        let byPoint = Dictionary(grouping: reference.entries, by: \.mountPoint)
        let odd = try #require(byPoint[known.odd]?.first)
        #expect(odd.filesystemType == "tmpfs" && odd.source == "src ha#sh,x\\y z" && odd.root == "/")
        #expect(["nosuid", "nodev", "noexec"].allSatisfy(odd.mountOptions.contains))
        #expect(odd.superOptions.contains("size=1024k") && odd.superOptions.contains("mode=700"))
        let bind = try #require(byPoint[known.bind]?.first)
        #expect(bind.root == "/sub/dir" && bind.major == odd.major && bind.minor == odd.minor)
        let overlay = try #require(byPoint[known.overlay]?.first)
        #expect(overlay.filesystemType == "overlay")
        #expect(overlay.overlayLayout?.lowerDirectories == known.overlayLowers)
        #expect(reference.reportAt?.branches.filter { $0.role == .lower }.map(\.path) == known.overlayLowers)
        #expect(reference.usingBranch.map(\.mountPoint) == [known.overlay])
        #expect(reference.unions.map(\.mountPoint) == [known.overlay])
        #expect(byPoint[known.stacked]?.map(\.source) == ["bottom", "top"])

        // Lookups: the mount a path is really on, not the longest mount point that prefixes it.
        let cover = try #require(byPoint[known.cover]?.first)
        let covered = try #require(byPoint[known.covered]?.first)
        #expect(
            reference.containing.map(\.mountID) == [
                odd.mountID, bind.mountID, overlay.mountID, cover.mountID, byPoint[known.stacked]![1].mountID,
            ])
        #expect(covered.mountID != cover.mountID)
        #expect(
            reference.at.map { $0?.mountID } == [
                odd.mountID, bind.mountID, overlay.mountID, cover.mountID, nil, byPoint[known.stacked]![1].mountID,
            ])
        #expect(reference.under.count == reference.entries.count)
        for point in [known.odd, known.bind, known.overlay, known.cover, known.stacked] {
            #expect(Queries.isMountPoint(point), "\(point)")
        }
        #expect(!Queries.isMountPoint(known.covered) && !Queries.isMountPoint(known.odd.appending("sub")))
        let holders = try Queries.holders(of: known.cover).holders.compactMap { holder -> FilePath? in
            if case .childMount(let path) = holder.kind { path } else { nil }
        }
        #expect(holders == [known.covered], "the covered mount is a child mount of the cover")

        // Unmounting everything below the scratch directory reaches the covered mount once its cover is gone.
        let unmounted = try Mounter().unmountRecursively(known.scratch.path)
        #expect(unmounted.filter { $0 == known.covered || $0 == known.cover } == [known.cover, known.covered])
        #expect(try Queries.entries(under: known.scratch.path, source: .mountinfo).isEmpty)
    }
}
