import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// umoci as the oracle for mounted imports: a three-layer image built by `umoci` (deletions, a directory deleted
    /// and recreated, an opaque directory, hard links, xattrs, setuid/setgid/sticky, symbolic links, a FIFO, odd
    /// names), imported from its OCI layout and from `skopeo copy`'s docker-archive into a store of each backend,
    /// mounted as a container, must show exactly what `umoci unpack` made of it.
    @Suite(.enabled(if: OracleTools.present, "needs umoci, skopeo, gzip and tar (apt-get install umoci skopeo)"))
    struct ImageOracleMountTests {
        /// What the comparison leaves out: overlay's and fuse-overlayfs' own xattrs (never shown by umoci's rootfs);
        /// directory times (below).
        static let options = TreeManifest.Options(
            ignoredXattrPrefixes: ["trusted.overlay.", "user.overlay.", "user.fuseoverlayfs."])

        /// The manifest with the times of directories dropped: umoci restores a directory's time from its tar
        /// entry only in the layer that has one, so a directory whose children a later layer whites out or adds
        /// has umoci's unpack time, and the merged view shows the upper-most layer's directory instead; the root's
        /// metadata is the container's writable layer's (mode 0755, owned by the store's user), not the image's.
        static func comparable(_ manifest: TreeManifest, owner: (uid: UInt32, gid: UInt32)? = nil) -> [TreeManifest
            .Entry]
        {
            manifest.entries.compactMap { entry in
                guard entry.path.string != "." else { return nil }
                var entry = entry
                if entry.type == .directory { entry.modificationTime = nil }
                if let owner {
                    entry.uid = owner.uid
                    entry.gid = owner.gid
                }
                return entry
            }
        }

        static func differences(_ mine: [TreeManifest.Entry], _ oracle: [TreeManifest.Entry]) -> [String] {
            TreeManifest(entries: mine).differences(from: TreeManifest(entries: oracle))
        }

        @discardableResult
        static func run(_ name: String, _ arguments: [String]) throws -> Data {
            let result = try runProcess(try #require(OracleTools.path(name)), arguments)
            #expect(result.status == 0, "\(name) \(arguments.joined(separator: " ")): \(result.errorOutput)")
            return result.stdout
        }

        /// The oracle image in `directory`: `layout` (tag `v1`), `image.tar` (skopeo's docker-archive, tag
        /// `oracle/app:v1`) and `bundle/rootfs` (umoci's unpack).
        struct OracleImage {
            let layout: FilePath
            let archive: FilePath
            let rootfs: FilePath

            init(in directory: FilePath) throws {
                layout = directory.appending("layout")
                archive = directory.appending("image.tar")
                let image = layout.string + ":v1"
                try run("umoci", ["init", "--layout", layout.string])
                try run("umoci", ["new", "--image", image])
                // Layer 1: the base.
                let first = directory.appending("b1")
                try run("umoci", ["unpack", "--image", image, first.string])
                try Self.shell(
                    """
                    cd "$1/rootfs"
                    mkdir -p etc bin dir/sub tmp opt lib 日本
                    echo host > etc/hostname; echo gone > gone; echo a > dir/a; echo b > dir/sub/b
                    echo tool > bin/tool; chmod 4755 bin/tool; ln bin/tool bin/tool-link
                    echo sg > bin/sg; chmod 2755 bin/sg; chmod 1777 tmp
                    ln -s /etc/hostname abs; ln -s ../etc/hostname bin/rel; ln -s nowhere dangling
                    mkfifo run-fifo; echo é > café; echo x > 日本/語; echo c > bin/ping
                    echo user > opt/user; chown 1000:1000 opt/user; chown 1000:100 opt; chmod 0640 opt/user
                    """, first)
                try Self.setXattr(first.appending("rootfs/etc/hostname"), "user.note", Array("v1".utf8))
                // security.capability v2 (VFS_CAP_REVISION_2, effective): cap_net_raw (13) permitted.
                try Self.setXattr(
                    first.appending("rootfs/bin/ping"), "security.capability",
                    [0x01, 0, 0, 0x02, 0x00, 0x20, 0, 0] + [UInt8](repeating: 0, count: 12))
                try run("umoci", ["repack", "--image", image, first.string])
                // Layer 2: a file deleted (a .wh. whiteout), a directory deleted and recreated (umoci writes a
                // whiteout for every child it had, not an opaque marker), a file changed, a hard link added.
                let second = directory.appending("b2")
                try run("umoci", ["unpack", "--image", image, second.string])
                try Self.shell(
                    """
                    cd "$1/rootfs"
                    rm gone; rm -r dir; mkdir -p dir/new; echo c > dir/c
                    echo changed > etc/hostname; chmod 2750 bin/sg
                    echo l2 > lib/two; ln lib/two lib/two-link
                    """, second)
                try Self.setXattr(second.appending("rootfs/etc/hostname"), "user.note", Array("v2".utf8))
                try run("umoci", ["repack", "--image", image, second.string])
                // Layer 3 (`umoci raw add-layer` of a GNU tar, since umoci's own diffs never write one): an opaque
                // directory, a whiteout of a non-ASCII name, a hard link, a non-UTF-8 name, and a file in `opt` (of
                // uid 1000) with no entry for `opt` itself.
                let third = directory.appending("l3")
                try makeDirectories(third.appending("dir"))
                try Self.shell(
                    """
                    cd "$1"
                    touch dir/.wh..wh..opq .wh.café; echo fresh > dir/fresh; echo t > three; ln three three-link
                    printf x > "$(printf 'bad\\377')"; mkdir opt; echo later > opt/later
                    tar --format=pax --numeric-owner --owner=0 --group=0 -cf ../l3.tar dir/.wh..wh..opq dir/fresh \
                        .wh.café three three-link "$(printf 'bad\\377')" opt/later
                    """, third)
                try run("umoci", ["raw", "add-layer", "--image", image, directory.appending("l3.tar").string])
                try run("umoci", ["unpack", "--image", image, directory.appending("bundle").string])
                rootfs = directory.appending("bundle/rootfs")
                try run("skopeo", ["copy", "-q", "oci:\(image)", "docker-archive:\(archive.string):oracle/app:v1"])
            }

            static func shell(_ script: String, _ directory: FilePath) throws {
                let result = try runProcess("/bin/bash", ["-ec", script, "oracle", directory.string])
                try #require(result.status == 0, "\(result.errorOutput)")
            }

            static func setXattr(_ path: FilePath, _ name: String, _ value: [UInt8]) throws {
                try FileSystem.setExtendedAttribute(path, name, value)
            }
        }

        /// Imports both forms into two stores of `backend`, mounts a container of each and returns the merged
        /// views' manifests.
        func mountedViews(_ backend: LayerStoreBackend, image: OracleImage, scratch: Scratch) throws -> [TreeManifest] {
            try [ImageSource.ociLayout(image.layout, reference: "v1"), .dockerArchive(image.archive, reference: nil)]
                .enumerated().map { index, source in
                    let store = try LayerStore.create(
                        at: scratch.path.appending("store-\(backend.rawValue)-\(index)"), backend: backend)
                    let imported = try store.importImage(from: source, name: "oracle/app:v1")
                    #expect(imported.layers.count == 3)
                    #expect(imported.layers.allSatisfy { $0.outcome == .applied })
                    try store.createContainer("c1", image: "oracle/app:v1")
                    let merged = try store.mount(container: "c1")
                    let manifest = try TreeManifest.read(merged, options: Self.options)
                    #expect(try store.unmount(container: "c1"))
                    #expect(try mountEntry(at: merged) == nil)
                    #expect(try store.check().isEmpty)
                    return manifest
                }
        }

        @Test("umoci's image, imported from its layout and skopeo's docker-archive, mounts as umoci unpacks it")
        func mountedImportEqualsUmociUnpack() throws {
            let scratch = try Scratch("oracle-mount")
            let image = try OracleImage(in: try scratch.directory("image"))
            let oracle = try TreeManifest.read(image.rootfs, options: Self.options)
            let expected = Self.comparable(oracle)
            #expect(expected.count > 20 && expected.filter { $0.modificationTime != nil }.count > 12)
            // What the image is, so the oracle itself is checked: the deletions, the opaque directory, links.
            let byPath = Dictionary(uniqueKeysWithValues: oracle.entries.map { ($0.path.bytes, $0) })
            func entry(_ path: String) -> TreeManifest.Entry? { byPath[Array(path.utf8)] }
            #expect(entry("gone") == nil && entry("café") == nil && entry("dir/a") == nil && entry("dir/sub") == nil)
            #expect(entry("dir/fresh") != nil && entry("dir/c") == nil && entry("dir/new") == nil)
            #expect(
                entry("bin/tool")?.mode == 0o4755 && entry("bin/sg")?.mode == 0o2750 && entry("tmp")?.mode == 0o1777)
            #expect(
                entry("bin/tool")?.linkGroup != nil && entry("bin/tool")?.linkGroup == entry("bin/tool-link")?.linkGroup
            )
            #expect(entry("three")?.linkGroup != nil && entry("lib/two")?.linkGroup != nil)
            #expect(entry("etc/hostname")?.xattrs == [.init(name: "user.note", value: Array("v2".utf8))])
            #expect(entry("bin/ping")?.xattrs.map(\.name) == ["security.capability"])
            #expect(entry("opt/user")?.uid == 1000 && entry("run-fifo")?.type == .fifo && entry("opt")?.uid == 1000)
            #expect(entry("opt/later") != nil)
            #expect(byPath[Array("bad".utf8) + [0xFF]] != nil)

            var compared: [String] = []
            for backend in [LayerStoreBackend.overlay, .fuseOverlayfs] {
                if let reason = backend.unavailability(on: .current) {
                    Issue.record("\(backend.rawValue) not compared: \(reason)")
                    continue
                }
                for (form, view) in zip(
                    ["oci-layout", "docker-archive"], try mountedViews(backend, image: image, scratch: scratch))
                {
                    let differences = Self.differences(Self.comparable(view), expected)
                    // `opt` has no entry in the third layer (only `opt/later`): the applier gives that parent the
                    // lower layer's mode, owner (1000:100) and times, as umoci keeps the existing directory.
                    #expect(differences.isEmpty, "\(backend.rawValue), \(form): \(differences)")
                }
                compared.append(backend.rawValue)
            }
            if let reason = UnprivilegedDemo.unavailableReason {
                Issue.record("rootless overlay not compared: \(reason)")
            } else {
                let (views, backend) = try rootlessViews(image: image, scratch: scratch)
                #expect(backend == "overlay-userxattr")
                // One id is mapped (the namespace's root, uid 65534 outside), so the import runs with caller
                // ownership: everything is the namespace root's.
                for (form, view) in zip(["oci-layout", "docker-archive"], views) {
                    let differences = Self.differences(
                        Self.comparable(view), Self.comparable(oracle, owner: (0, 0)))
                    #expect(differences.isEmpty, "overlay-userxattr, \(form): \(differences)")
                }
                compared.append(backend)
            }
            #expect(compared.count == 3, "compared on \(compared)")
        }

        /// A one-layer umoci image in `directory/name` (tag `v1`) of what `script` writes into the rootfs.
        static func smallImage(_ name: String, in directory: FilePath, _ script: String) throws -> FilePath {
            let layout = directory.appending(name)
            let bundle = directory.appending(name + "-bundle")
            try run("umoci", ["init", "--layout", layout.string])
            try run("umoci", ["new", "--image", layout.string + ":v1"])
            try run("umoci", ["unpack", "--image", layout.string + ":v1", bundle.string])
            try OracleImage.shell("cd \"$1/rootfs\"\n" + script, bundle)
            try run("umoci", ["repack", "--image", layout.string + ":v1", bundle.string])
            return layout
        }

        @Test(
            "rootless import mapping one id: other owners refused or the caller's, device nodes refused, store consistent",
            .enabled(if: UnprivilegedDemo.unavailableReason == nil, "\(UnprivilegedDemo.unavailableReason ?? "")"))
        func rootlessOwnershipAndDevices() throws {
            let scratch = try Scratch("oracle-rootless")
            let nobody = try scratch.directory("rootless")
            let owned = try Self.smallImage(
                "owned", in: nobody,
                "mkdir opt; echo u > opt/user; chown 1000:1000 opt/user; chmod 0640 opt/user; chown 1000:100 opt")
            let device = try Self.smallImage("device", in: nobody, "mkdir dev; mknod dev/null-copy c 1 3; echo f > f")
            #expect(try runProcess("/bin/chown", ["-R", "65534:65534", nobody.string]).status == 0)
            chmod(scratch.path.string, 0o755)
            let script = """
                set -u
                tool=$1; home=$2; root=$home/store
                "$tool" store import --root "$root" --oci-layout "$home/owned:v1" --name owned:v1 2> "$home/owned.err"
                echo $? > "$home/owned.status"
                "$tool" store images --root "$root" --json > "$home/images1.json"
                "$tool" store layers --root "$root" --json > "$home/layers1.json"
                "$tool" store check --root "$root" || exit 10
                "$tool" store import --root "$root" --oci-layout "$home/owned:v1" --name owned:v1 --ownership caller \
                    >/dev/null || exit 11
                "$tool" store create-container --root "$root" --image owned:v1 c1 >/dev/null || exit 12
                merged=$("$tool" store mount --root "$root" c1) || exit 13
                stat -c '%u:%g %a' "$merged/opt/user" "$merged/opt" > "$home/stat.txt"
                "$tool" store unmount --root "$root" c1 >/dev/null || exit 14
                "$tool" store import --root "$root" --oci-layout "$home/device:v1" --name device:v1 --ownership caller \
                    2> "$home/device.err"
                echo $? > "$home/device.status"
                "$tool" store images --root "$root" --json > "$home/images2.json"
                "$tool" store check --root "$root" || exit 15
                """
            let result = try runProcess(
                UnprivilegedDemo.dropPrivileges![0],
                Array(UnprivilegedDemo.dropPrivileges!.dropFirst()) + [
                    "/usr/bin/unshare", "--user", "--map-root-user", "--mount", "/bin/bash", "-c", script, "rootless",
                    Examples.directory.appending("unionmount").string, nobody.string,
                ])
            try #require(result.status == 0, "exit \(result.status): \(result.errorOutput)")
            func read(_ name: String) -> String { readFile(nobody.appending(name)) ?? "" }
            // Archive ownership (the default for the namespace's root): uid 1000 is not mapped, so chown(2) is
            // EINVAL, reported as unsupported naming the entry and the owner; nothing is left in the store.
            #expect(read("owned.status") == "1\n")
            let refusal = read("owned.err")
            #expect(refusal.contains("opt") && refusal.contains("1000:"), "\(refusal)")
            #expect(refusal.contains("does not map"), "\(refusal)")
            #expect(read("images1.json").filter { !$0.isWhitespace } == "[]")
            #expect(read("layers1.json").filter { !$0.isWhitespace } == "[]")
            // Caller ownership (Podman's ignore_chown_errors): everything is the namespace root's, modes kept; on
            // the host, the store's files belong to uid 65534, the id the namespace's root is.
            #expect(read("stat.txt") == "0:0 640\n0:0 755\n")
            let layers = try FileManager.default.contentsOfDirectory(atPath: nobody.appending("store/layers").string)
            try #require(layers.count == 1)
            var info = stat()
            #expect(lstat(nobody.appending("store/layers/\(layers[0])/diff/opt/user").string, &info) == 0)
            #expect(info.st_uid == 65534 && info.st_gid == 65534)
            // A device node cannot be made in a user namespace: refused before mknod(2), naming the entry.
            #expect(read("device.status") == "1\n")
            let deviceRefusal = read("device.err")
            #expect(
                deviceRefusal.contains("dev/null-copy") && deviceRefusal.contains("device node"), "\(deviceRefusal)")
            #expect(!read("images2.json").contains("device"))
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: nobody.appending("store/layers").string) == layers)
        }

        /// Both imports by `unionmount store …` as uid 65534 inside `unshare --user --map-root-user --mount`: the
        /// merged views' manifests and the store's backend.
        func rootlessViews(image: OracleImage, scratch: Scratch) throws -> ([TreeManifest], String) {
            let nobody = try scratch.directory("rootless")
            let copy = nobody.appending("image")
            try makeDirectories(copy)
            for path in [image.layout, image.archive] {
                #expect(try runProcess("/bin/cp", ["-a", path.string, copy.string]).status == 0)
            }
            #expect(try runProcess("/bin/chown", ["-R", "65534:65534", nobody.string]).status == 0)
            chmod(scratch.path.string, 0o755)
            let script = """
                set -eu
                tool=$1; home=$2
                n=0
                for source in "--oci-layout $home/image/layout:v1" "--docker-archive $home/image/image.tar"; do
                    n=$((n + 1)); root=$home/store$n
                    "$tool" store import --root "$root" $source --name oracle/app:v1 --ownership caller >/dev/null
                    "$tool" store create-container --root "$root" --image oracle/app:v1 c1 >/dev/null
                    merged=$("$tool" store mount --root "$root" c1)
                    "$tool" manifest --json --ignore-xattr-prefix trusted.overlay. --ignore-xattr-prefix user.overlay. \
                        --ignore-xattr-prefix user.fuseoverlayfs. "$merged" > "$home/manifest$n.json"
                    "$tool" store unmount --root "$root" c1 >/dev/null
                    "$tool" store check --root "$root"
                done
                "$tool" store info --root "$home/store1" --json > "$home/info.json"
                """
            let result = try runProcess(
                UnprivilegedDemo.dropPrivileges![0],
                Array(UnprivilegedDemo.dropPrivileges!.dropFirst()) + [
                    "/usr/bin/unshare", "--user", "--map-root-user", "--mount", "/bin/bash", "-c", script, "rootless",
                    Examples.directory.appending("unionmount").string, nobody.string,
                ])
            try #require(result.status == 0, "\(result.errorOutput)")
            func read(_ name: String) throws -> Data {
                try Data(contentsOf: URL(fileURLWithPath: nobody.appending(name).string))
            }
            let decoder = JSONDecoder()
            let views = try ["manifest1.json", "manifest2.json"].map {
                try decoder.decode(TreeManifest.self, from: read($0))
            }
            struct Info: Decodable { var backend: String }
            return (views, try decoder.decode(Info.self, from: read("info.json")).backend)
        }
    }
}
