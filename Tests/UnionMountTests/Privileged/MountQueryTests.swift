import CUnionMountShim
import Foundation
import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// statmount(2)/listmount(2) against `/proc/self/mountinfo` on real mounts, and the ``MountTable``. On kernels
    /// without statmount(2) describing mounts (before 6.13: the kernel matrix's 6.1 and 6.12) the tests that compare
    /// it with mountinfo skip, and the queries run through the live sources there are: mountinfo and automatic.
    @Suite(.enabled(if: KernelOverlay.available, KernelOverlay.skipReason)) struct MountQueryTests {
        typealias Queries = UnionMount.MountTable

        static let statmountReason: Comment = "needs statmount(2) with sb_source (Linux 6.13+)"

        /// The live sources this kernel has.
        static let sources: [Queries.Source] =
            (Statmount.describesMounts ? [.statmount] : []) + [.mountinfo, .automatic]

        let mounter = Mounter()

        /// Mounts `tmpfs` at `target` with mount(2) flags and data; creates the directory first.
        func tmpfs(_ target: FilePath, source: String = "tmpfs", flags: UInt = 0, data: String? = nil) throws {
            try makeDirectories(target)
            let result = target.withPlatformString { path in
                if let data { return mount(source, path, "tmpfs", flags, data) }
                return mount(source, path, "tmpfs", flags, nil)
            }
            #expect(result == 0, "mount tmpfs at \(target): errno \(errno)")
        }

        /// mount(2) without a type: bind or propagation change.
        func remount(_ source: FilePath?, _ target: FilePath, flags: UInt) {
            let result = target.withPlatformString { path in
                if let source { return source.withPlatformString { mount($0, path, nil, flags, nil) } }
                return mount(nil, path, nil, flags, nil)
            }
            #expect(result == 0, "mount flags \(flags) at \(target): errno \(errno)")
        }

        func unmount(_ target: FilePath) {
            _ = target.withPlatformString { umount2($0, Int32(MNT_DETACH)) }
        }

        static func uniqueMountID(_ path: FilePath) -> UInt64 {
            var info = CUnionMount_statx_result()
            guard path.withPlatformString({ CUnionMount_statx_mount(AT_FDCWD, $0, 0, 1, &info) }) == 0 else { return 0 }
            return info.mount_id
        }

        /// Layers whose names hold space, comma, colon, backslash, newline, `#` and bytes that are not UTF-8.
        static let hostileNames: [[UInt8]] = [
            Array("sp ace,com:ma".utf8), Array("back\\slash\nnew".utf8), [0x6E, 0xFF, 0xFE, 0x23, 0x6E],
        ]

        /// A hostile overlay in `scratch`; returns its target.
        func hostileOverlay(
            _ scratch: Scratch, tag: String, strategy: MountStrategy?
        ) throws -> (FilePath, [FilePath]) {
            var lowers: [FilePath] = []
            for (index, name) in Self.hostileNames.enumerated() {
                let layer = try scratch.directory(Array("\(tag)-".utf8) + name)
                try writeFile(layer.appending("f\(index)"), "\(index)")
                lowers.append(layer)
            }
            let upper = try scratch.directory(Array("\(tag)-up per,x:y\\z#".utf8) + [0xC3])
            let work = try scratch.directory(Array("\(tag)-wo\trk\n,:".utf8))
            let target = try scratch.directory(Array("\(tag)-mer ged\\,:\n".utf8))
            let spec = OverlaySpec(lowerDirectories: lowers, upperDirectory: upper, workDirectory: work)
            try mounter.mount(.overlay(spec), at: target, strategy: strategy)
            return (target, lowers)
        }

        @Test(
            "for every mount, statmount and mountinfo give the same entry and the same union report",
            .enabled(if: Statmount.describesMounts, statmountReason))
        func everyMountAgrees() throws {
            let scratch = try Scratch("query-all")
            let stack = try LayerStack(count: 3, nameBytes: Array("layer".utf8))
            try mounter.mount(.overlay(stack.spec()), at: stack.target)
            defer { unmount(stack.target) }
            let readOnly = try LayerStack(count: 2, nameBytes: Array("ro".utf8))
            try mounter.mount(.overlay(readOnly.spec(writable: false)), at: readOnly.target)
            defer { unmount(readOnly.target) }
            let (legacy, _) = try hostileOverlay(scratch, tag: "legacy", strategy: .legacy)
            defer { unmount(legacy) }
            let (modern, _) = try hostileOverlay(scratch, tag: "new", strategy: nil)
            defer { unmount(modern) }

            // tmpfs's: hostile source and mount point, every per-mount flag, superblock read-only and sync,
            // shared, peer, slave, unbindable, a bind of a subdirectory (root other than /).
            let odd = scratch.path.appending("tmp fs\\,#\n")
            let noExec = UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC)
            try tmpfs(odd, source: "src ha#sh,x\\y z", flags: noExec, data: "size=1m,mode=0700")
            defer { unmount(odd) }
            let frozen = scratch.path.appending("frozen")
            let frozenFlags = UInt(MS_RDONLY | MS_NOATIME | MS_NODIRATIME | MS_SYNCHRONOUS)
            try tmpfs(frozen, flags: frozenFlags, data: "nr_inodes=64")
            defer { unmount(frozen) }
            let strict = scratch.path.appending("strict")
            try tmpfs(strict, flags: UInt(MS_STRICTATIME | MS_DIRSYNC))
            defer { unmount(strict) }
            let shared = scratch.path.appending("shared")
            try tmpfs(shared)
            defer { unmount(shared) }
            try makeDirectories(shared.appending("sub/dir"))
            remount(nil, shared, flags: UInt(MS_SHARED))
            let peer = try scratch.directory("peer")
            remount(shared.appending("sub"), peer, flags: UInt(MS_BIND))
            defer { unmount(peer) }
            let slave = try scratch.directory("slave")
            remount(shared, slave, flags: UInt(MS_BIND))
            defer { unmount(slave) }
            remount(nil, slave, flags: UInt(MS_SLAVE))
            let unbindable = scratch.path.appending("unbindable")
            try tmpfs(unbindable)
            defer { unmount(unbindable) }
            remount(nil, unbindable, flags: UInt(MS_UNBINDABLE))

            let fromMountInfo = try MountTable.entries(source: .mountinfo)
            let fromStatmount = try Queries.entries(source: .statmount)
            #expect(fromStatmount.map(\.mountID) == fromMountInfo.map(\.mountID))
            let byID = Dictionary(fromStatmount.map { ($0.mountID, $0) }, uniquingKeysWith: { first, _ in first })
            for expected in fromMountInfo {
                let entry = byID[expected.mountID]
                #expect(entry == expected, "statmount: \(entry?.description ?? "missing")\nmountinfo: \(expected)")
                #expect(entry?.description == expected.description)
                guard let entry, UnionFilesystemKind(expected) != nil else { continue }
                #expect(try UnionMountReport(entry: entry) == UnionMountReport(entry: expected))
            }
            // Every kind of field really was exercised.
            let ours = fromMountInfo.filter { $0.mountPoint.starts(with: scratch.path) }
            let slaves = ours.filter { $0.optionalFields.contains { if case .master = $0 { true } else { false } } }
            #expect(!slaves.isEmpty)
            #expect(ours.contains { $0.optionalFields.contains(.unbindable) })
            #expect(ours.contains { $0.root != "/" })
            #expect(ours.contains { $0.superOptions.contains("sync") && $0.mountOptions.contains("noatime") })

            let unionEntries = try Queries.unionMounts(source: .statmount)
            #expect(unionEntries == (try Queries.unionMounts(source: .mountinfo)))
            #expect(unionEntries.count >= 4)
            #expect(try Queries.reports(source: .statmount) == Queries.reports(source: .mountinfo))
            #expect(try Queries.reports(source: .automatic) == MountTable.reports())
        }

        @Test(
            "statmount escaping on a real overlay: raw strings, mountinfo-escaped mnt_opts, decoded opt_array",
            .enabled(if: Statmount.describesMounts, statmountReason))
        func escaping() throws {
            let scratch = try Scratch("query-escape")
            let (target, lowers) = try hostileOverlay(scratch, tag: "esc", strategy: .legacy)
            defer { unmount(target) }
            let entry = try #require(try mountEntry(at: target))
            let request = Statmount.Request.mountEntry.union([.options, .securityOptions])
            let record = try Statmount.stat(mountID: Self.uniqueMountID(target), request: request)
            #expect(record.mountPoint == target.bytes)
            // mnt_opts is byte for byte mountinfo's field 11 after "rw,".
            // Field 11 as the file prints it: the last field of the mount's line (the hostile bytes are escaped there).
            let mountinfo = try #require(FileManager.default.contents(atPath: "/proc/self/mountinfo"))
            let line = try #require(
                mountinfo.split(separator: UInt8(ascii: "\n")).first {
                    $0.starts(with: Array("\(entry.mountID) ".utf8))
                })
            let field11 = Array(try #require(line.split(separator: UInt8(ascii: " ")).last))
            #expect(record.optionText.map { Array("rw,".utf8) + $0 } == field11)
            // opt_array is field 11 split on raw commas and \ooo-decoded; overlay's own `\` escapes stay.
            #expect(record.options == Array(entry.superOptions.bytes.dropFirst()))
            let lowerdir = try #require(record.options?.first)
            #expect(lowerdir.contains(UInt8(ascii: " ")) && lowerdir.contains(UInt8(ascii: "\n")))
            #expect(lowerdir.starts(with: Array("lowerdir=".utf8)))
            #expect(lowerdir.contains(0xFF))
            #expect(MountEntry(statmount: record)?.overlayLayout?.lowerDirectories == lowers)
        }

        @Test("mount(containing:) and mount(at:) find the overlay holding a deep file, stacked mounts top first")
        func containing() throws {
            let stack = try LayerStack(count: 2, nameBytes: Array("deep".utf8))
            try mounter.mount(.overlay(stack.spec()), at: stack.target)
            defer { unmount(stack.target) }
            let deep = stack.target.appending("d1/d2/d3")
            try makeDirectories(deep)
            let file = deep.appending("file")
            try writeFile(file, "deep")
            let link = stack.scratch.path.appending("link")
            #expect(symlink(deep.string, link.string) == 0)
            let nested = stack.target.appending("d1/nested")
            try tmpfs(nested)
            try tmpfs(nested)  // stacked: the second hides the first
            defer {
                unmount(nested)
                unmount(nested)
            }
            let table = try MountTable.entries(source: .mountinfo)
            let overlayID = try #require(table.last { $0.mountPoint == stack.target }?.mountID)
            let topID = try #require(table.last { $0.mountPoint == nested }?.mountID)

            for source in Self.sources {
                let holder = try Queries.entry(containing: file, source: source)
                #expect(holder.mountID == overlayID, "\(source)")
                #expect(holder.filesystemType == "overlay")
                #expect(holder.mountPoint == stack.target)
                #expect(try Queries.entry(containing: link.appending("file"), source: source).mountID == overlayID)
                #expect(try Queries.entry(containing: nested, source: source).mountID == topID, "\(source)")
                #expect(try Queries.entry(at: stack.target, source: source)?.mountID == overlayID)
                #expect(try Queries.entry(at: nested, source: source)?.mountID == topID)
                #expect(try Queries.entry(at: deep, source: source) == nil)
                #expect(try Queries.entry(at: stack.target.appending("missing"), source: source) == nil)
                #expect(throws: UnionMountError.self) {
                    try Queries.entry(containing: stack.target.appending("missing"), source: source)
                }
            }
            #expect(Queries.isMountPoint(stack.target) && Queries.isMountPoint(nested))
            #expect(!Queries.isMountPoint(deep) && !Queries.isMountPoint(link))
        }

        @Test("mounts(under:) goes by components: /a holds /a and /a/x, not /ab")
        func under() throws {
            let scratch = try Scratch("query-under")
            let a = scratch.path.appending("a")
            let ab = scratch.path.appending("ab")
            try tmpfs(a)
            defer { unmount(a) }
            try tmpfs(a.appending("x"))
            defer { unmount(a.appending("x")) }
            try tmpfs(ab)
            defer { unmount(ab) }
            let link = scratch.path.appending("to-a")
            #expect(symlink(a.string, link.string) == 0)

            for source in Self.sources {
                #expect(try Queries.entries(under: a, source: source).map(\.mountPoint) == [a, a.appending("x")])
                #expect(try Queries.entries(under: FilePath(a.string + "/"), source: source).count == 2)
                #expect(try Queries.entries(under: link, source: source).count == 2, "symlink resolved")
                #expect(try Queries.entries(under: ab, source: source).map(\.mountPoint) == [ab])
                #expect(try Queries.entries(under: scratch.path, source: source).count == 3)
                #expect(try Queries.entries(under: a.appending("x/y"), source: source).isEmpty)
                let everything = try Queries.entries(under: "/", source: source)
                #expect(everything.count == (try MountTable.entries(source: .mountinfo)).count)
            }
        }

        @Test("unionMounts(usingBranch:) finds both overlays sharing a lower, through aliases, and no other")
        func usingBranch() throws {
            let scratch = try Scratch("query-branch")
            let shared = try scratch.directory("shared lower")
            try writeFile(shared.appending("s"), "s")
            let own = try scratch.directory("own")
            let other = try scratch.directory("other")
            let upper = try scratch.directory("upper")
            let work = try scratch.directory("work")
            let first = try scratch.directory("first")
            let second = try scratch.directory("second")
            let third = try scratch.directory("third")
            try mounter.mount(.overlay(OverlaySpec(lowerDirectories: [shared, own])), at: first)
            defer { unmount(first) }
            try mounter.mount(
                .overlay(OverlaySpec(lowerDirectories: [own, shared], upperDirectory: upper, workDirectory: work)),
                at: second, strategy: .legacy)
            defer { unmount(second) }
            try mounter.mount(.overlay(OverlaySpec(lowerDirectories: [other, own])), at: third)
            defer { unmount(third) }
            let link = scratch.path.appending("link")
            #expect(symlink(shared.string, link.string) == 0)
            let alias = try scratch.directory("alias")
            remount(shared, alias, flags: UInt(MS_BIND))
            defer { unmount(alias) }
            let unrelated = try scratch.directory("unrelated")

            for source in Self.sources {
                func users(_ directory: FilePath) throws -> [FilePath] {
                    try Queries.reports(usingBranch: directory, source: source).map(\.mountPoint)
                }
                #expect(try users(shared) == [first, second], "\(source)")
                #expect(try users(FilePath(shared.string + "/./")) == [first, second])
                #expect(try users(link) == [first, second], "symlink")
                #expect(try users(alias) == [first, second], "bind mount alias")
                #expect(try users(own) == [first, second, third])
                #expect(try users(other) == [third])
                #expect(try users(upper) == [second])
                #expect(try users(work).isEmpty, "a work directory is not a branch")
                #expect(try users(unrelated).isEmpty)
                #expect(try users(scratch.path.appending("missing")).isEmpty)
            }
        }
    }
}
