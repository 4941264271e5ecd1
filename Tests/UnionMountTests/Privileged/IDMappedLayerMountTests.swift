import Foundation
import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// Idmapped layers for real: one set of layers owned by 0, 33 and 1000 mounted for two containers with
    /// different mappings at once, on each rung this kernel has (the detached-tree rung on 6.15+, the attached rung
    /// wherever overlay takes idmapped layers, 5.19+). The layers live on the scratch filesystem (ext4 on the host
    /// and in the kernel matrix's guests; tmpfs takes idmapped mounts only since 6.3).
    @Suite(.enabled(if: KernelFeatures.current.idmappedLayers, "needs overlay over idmapped mounts (Linux 5.19+)"))
    struct IDMappedLayerMounts {
        static var rungs: [IDMappedLayerRung] {
            KernelFeatures.current.detachedLayerTrees ? [.detachedTrees, .attachedTrees] : [.attachedTrees]
        }

        static func mapping(_ base: UInt32) -> IDMapping {
            .ranges(
                uids: [IDRange(inside: 0, outside: base, count: 65536)],
                gids: [IDRange(inside: 0, outside: base, count: 65536)])
        }

        /// A mounter on `rung`: the kernel as probed, without detached trees for the attached rung.
        static func mounter(_ rung: IDMappedLayerRung, attachments: FilePath) -> Mounter {
            var features = KernelFeatures.current
            if rung == .attachedTrees { features.detachedLayerTrees = false }
            return Mounter(features: features, attachmentDirectory: attachments)
        }

        /// Two layers: `root` (0:0) and `www` (33:33) in the top one, `user` (1000:1000) in the one below; and per
        /// container an upper and work directory owned by its mapped root, as the layer store makes them.
        struct Image {
            let scratch: Scratch
            let lowers: [FilePath]

            init() throws {
                scratch = try Scratch("idmap")
                // A user namespace's root may not pass a directory of an unmapped owner that is 0700 (mkdtemp's).
                chmod(scratch.path.string, 0o755)
                let top = try scratch.directory("layers/top")
                let bottom = try scratch.directory("layers/bottom")
                for (layer, name, id) in [(top, "root", 0), (top, "www", 33), (bottom, "user", 1000)] {
                    try writeFile(layer.appending(name), name)
                    chown(layer.appending(name).string, uid_t(id), gid_t(id))
                }
                lowers = [top, bottom]
            }

            func container(_ name: String, root: UInt32, mapping: IDMapping) throws -> (OverlaySpec, FilePath) {
                let upper = try scratch.directory("\(name)/upper")
                let work = try scratch.directory("\(name)/work")
                let merged = try scratch.directory("\(name)/merged")
                for directory in [scratch.path.appending(name), upper, work, merged] {
                    chmod(directory.string, 0o755)
                }
                chown(upper.string, root, root)
                chown(work.string, root, root)
                return (
                    OverlaySpec(
                        lowerDirectories: lowers, upperDirectory: upper, workDirectory: work, idMapping: mapping),
                    merged
                )
            }
        }

        static func owner(_ path: FilePath) -> String? {
            var status = stat()
            guard lstat(path.string, &status) == 0 else { return nil }
            return "\(status.st_uid):\(status.st_gid)"
        }

        /// What `stat` says of `names` in `directory` from inside a user namespace with `mapping`'s maps (entered
        /// by nsenter(1), a helper process: this test process stays where it is).
        static func ownersInside(_ mapping: IDMapping, _ directory: FilePath, _ names: [String]) throws -> [String] {
            guard case .ranges(let uids, let gids) = mapping else { return [] }
            let namespace = try UserNamespaceHolder.create(
                uidMap: IDMapping.mapText(uids), gidMap: IDMapping.mapText(gids))
            defer { FileSystem.close(namespace) }
            let result = try runProcess(
                "/usr/bin/nsenter",
                ["--user=/proc/\(getpid())/fd/\(namespace.rawValue)", "--", "/usr/bin/stat", "-c", "%u:%g"]
                    + names.map { directory.appending($0).string })
            #expect(result.status == 0, "\(result)")
            return result.output.split(separator: "\n").map(String.init)
        }

        /// Writes `name` in `directory` as root inside a user namespace with `mapping`'s maps.
        static func writeInside(_ mapping: IDMapping, _ directory: FilePath, _ name: String) throws {
            guard case .ranges(let uids, let gids) = mapping else { return }
            let namespace = try UserNamespaceHolder.create(
                uidMap: IDMapping.mapText(uids), gidMap: IDMapping.mapText(gids))
            defer { FileSystem.close(namespace) }
            let result = try runProcess(
                "/usr/bin/nsenter",
                [
                    "--user=/proc/\(getpid())/fd/\(namespace.rawValue)", "--", "/usr/bin/touch",
                    directory.appending(name).string,
                ])
            #expect(result.status == 0, "\(result)")
        }

        /// Descriptors of this process that name something below `directory`, a user namespace (`user:[…]`), or
        /// the root of a detached tree (a tree's descriptor reads as `/`).
        static func leftoverDescriptors(under directory: FilePath) -> [String] {
            let names = (try? FileSystem.names(in: "/proc/self/fd")) ?? []
            return names.compactMap { name in
                guard let bytes = try? FileSystem.linkTarget(FilePath(bytes: Array("/proc/self/fd/".utf8) + name))
                else { return nil }
                let target = String(decoding: bytes, as: UTF8.self)
                return target.hasPrefix(directory.string) || target.hasPrefix("user:[") || target == "/" ? target : nil
            }.sorted()
        }

        static func mountsBelow(_ directory: FilePath) throws -> [FilePath] {
            try MountTable.entries(source: .mountinfo).map(\.mountPoint).filter { $0.starts(with: directory) }
        }

        @Test(
            "two containers, two mappings, one image: host owners mapped, owners inside unchanged, writes land mapped",
            arguments: rungs)
        func twoMappings(rung: IDMappedLayerRung) throws {
            let image = try Image()
            let attachments = image.scratch.path.appending("attach")
            let mounter = Self.mounter(rung, attachments: attachments)
            let (a, b) = (Self.mapping(100000), Self.mapping(200000))
            let (specA, mergedA) = try image.container("a", root: 100000, mapping: a)
            let (specB, mergedB) = try image.container("b", root: 200000, mapping: b)
            let descriptorsBefore = Self.leftoverDescriptors(under: image.scratch.path)
            let planA = try mounter.mount(.overlay(specA), at: mergedA)
            defer { _ = try? mounter.unmount(mergedA) }
            let planB = try mounter.mount(.overlay(specB), at: mergedB)
            defer { _ = try? mounter.unmount(mergedB) }
            #expect(planA.idMappedLayers == rung && planB.idMappedLayers == rung)

            let names = ["root", "www", "user"]
            #expect(
                names.map { Self.owner(mergedA.appending($0)) } == ["100000:100000", "100033:100033", "101000:101000"])
            #expect(
                names.map { Self.owner(mergedB.appending($0)) } == ["200000:200000", "200033:200033", "201000:201000"])
            #expect(
                [
                    image.lowers[0].appending("root"), image.lowers[0].appending("www"),
                    image.lowers[1].appending("user"),
                ]
                .map(Self.owner) == ["0:0", "33:33", "1000:1000"])
            #expect(try Self.ownersInside(a, mergedA, names) == ["0:0", "33:33", "1000:1000"])
            #expect(try Self.ownersInside(b, mergedB, names) == ["0:0", "33:33", "1000:1000"])

            // The reports: real layer paths and each lower layer's mapping, from both sources of the mount table.
            for source in [MountTable.Source.mountinfo, .automatic] {
                for (spec, merged, mapping) in [(specA, mergedA, a), (specB, mergedB, b)] {
                    let report = try #require(try MountTable.report(at: merged, source: source))
                    #expect(report.branches.map(\.path) == [spec.upperDirectory!] + image.lowers)
                    #expect(report.branches.allSatisfy { $0.exists })
                    #expect(report.branches.map(\.idMapping) == [nil, mapping, mapping])
                    #expect(report.branches.map(\.isIDMapped) == [false, true, true])
                }
            }
            let listed = try unionmount("inspect", "--json", mergedA.string)
            #expect(try listed.decode(UnionMountReport.self).branches.map(\.idMapping) == [nil, a, a], "\(listed)")
            let text = try unionmount("inspect", mergedB.string)
            #expect(text.output.contains("idmapped uid 0:200000:65536 gid 0:200000:65536"), "\(text)")

            try Self.writeInside(a, mergedA, "written")
            #expect(Self.owner(specA.upperDirectory!.appending("written")) == "100000:100000")
            #expect(Self.owner(specB.upperDirectory!.appending("written")) == nil)

            // Nothing but the unions holds the trees: no attachment, no directory, no descriptor.
            #expect(try Self.mountsBelow(attachments).isEmpty)
            #expect(((try? FileSystem.names(in: attachments)) ?? []).isEmpty)
            #expect(Self.leftoverDescriptors(under: image.scratch.path) == descriptorsBefore)
            try mounter.unmount(mergedA)
            try mounter.unmount(mergedB)
            #expect(try Self.mountsBelow(image.scratch.path).isEmpty)
        }

        @Test("128 and 500 idmapped layers mount, every layer readable and mapped", arguments: rungs)
        func manyLayers(rung: IDMappedLayerRung) throws {
            let scratch = try Scratch("idmap-many")
            let mounter = Self.mounter(rung, attachments: scratch.path.appending("attach"))
            for count in [128, 500] {
                var lowers: [FilePath] = []
                for index in 0..<count {
                    let layer = try scratch.directory("\(count)/l/\(index)")
                    try writeFile(layer.appending("f\(index)"), "\(index)")
                    lowers.append(layer)
                }
                let upper = try scratch.directory("\(count)/upper")
                let work = try scratch.directory("\(count)/work")
                let merged = try scratch.directory("\(count)/merged")
                let spec = OverlaySpec(
                    lowerDirectories: lowers, upperDirectory: upper, workDirectory: work,
                    idMapping: Self.mapping(300000))
                let plan = try mounter.mount(.overlay(spec), at: merged)
                defer { _ = try? mounter.unmount(merged) }
                #expect(plan.idMappedLayers == rung)
                let unreadable = lowers.indices.filter { readFile(merged.appending("f\($0)")) != "\($0)" }
                #expect(unreadable.isEmpty, "\(count) layers: \(unreadable.prefix(5)) unreadable")
                #expect(Self.owner(merged.appending("f\(count - 1)")) == "300000:300000")
                #expect(try Self.mountsBelow(scratch.path.appending("attach")).isEmpty)
            }
        }

        @Test(
            "a union made elsewhere over layers on an idmapped mount: each layer idmapped in the report, maps on 6.15+")
        func foreignIDMappedLayers() throws {
            // containerd's shape: one idmapped mount of the layers' common parent, kept attached, and a plain
            // overlay over paths below it. The tree steps run as a hand-written plan.
            let image = try Image()
            let parent = image.lowers[0].removingLastComponent()
            let common = try image.scratch.directory("common")
            let mapping = Self.mapping(100000)
            guard case .ranges(let uids, let gids) = mapping else { return }
            let attach = MountPlan(
                strategy: .newMountAPI, spec: .overlay(OverlaySpec(lowerDirectories: [parent])),
                steps: [
                    .createUserNamespace(uids: uids, gids: gids), .openTree(path: parent), .setIDMap,
                    .attachTree(target: common),
                ])
            try Mounter().execute(attach)
            defer { umount2(common.string, Int32(MNT_DETACH)) }
            let (mapped, merged) = try image.container("c", root: 100000, mapping: mapping)
            var spec = mapped
            spec.idMapping = nil
            spec.lowerDirectories = [common.appending("top"), common.appending("bottom")]
            try Mounter().mount(.overlay(spec), at: merged)
            defer { _ = try? Mounter().unmount(merged) }
            #expect(Self.owner(merged.appending("www")) == "100033:100033")
            let version = ProcessFacts.kernelVersion()
            let mapsKnown = (version.major, version.minor) >= (6, 15)
            for source in [MountTable.Source.mountinfo, .automatic] {
                let report = try #require(try MountTable.report(at: merged, source: source))
                #expect(report.branches.map(\.isIDMapped) == [false, true, true])
                #expect(report.branches.map(\.path) == [spec.upperDirectory!] + spec.lowerDirectories)
                for branch in report.branches.dropFirst() {
                    #expect(branch.idMapping == (mapsKnown ? mapping : nil), "\(branch)")
                }
            }
            // The same layers without the idmapped mount under them: not idmapped.
            try Mounter().unmount(merged)
            var plain = spec
            plain.lowerDirectories = image.lowers
            try Mounter().mount(.overlay(plain), at: merged)
            let report = try #require(try MountTable.report(at: merged))
            #expect(report.branches.map(\.isIDMapped) == [false, false, false])
        }

        @Test("a layer on a filesystem without idmapped mounts: the mount_setattr error, nothing left behind")
        func refusedLayer() throws {
            // procfs refuses MOUNT_ATTR_IDMAP on every kernel (no FS_ALLOW_IDMAP).
            let image = try Image()
            let attachments = image.scratch.path.appending("attach")
            let (spec, merged) = try image.container("c", root: 100000, mapping: Self.mapping(100000))
            var bad = spec
            bad.lowerDirectories.append("/proc")
            for rung in Self.rungs {
                let mounter = Self.mounter(rung, attachments: attachments)
                let error = thrown { try mounter.mount(.overlay(bad), at: merged) }
                #expect(error?.systemCall == "mount_setattr", "\(String(describing: error))")
                #expect(error?.plan?.idMappedLayers == rung)
                #expect(try Self.mountsBelow(image.scratch.path).isEmpty)
                #expect(((try? FileSystem.names(in: attachments)) ?? []).isEmpty)
            }
        }
    }
}
