import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

extension PrivilegedTests {
    /// A rootless store (overlay with `userxattr`, uid 65534 in `unshare --user --map-root-user`) imports an
    /// image, changes a container through its mount, commits it and exports it, all by `unionmount store`; the
    /// export, imported by root into an ordinary store, shows what the rootless mount showed. Owners are written as
    /// the namespace shows them (root's files are uid 0 in the tar, not 65534).
    @Suite(.enabled(if: UnprivilegedDemo.unavailableReason == nil, "\(UnprivilegedDemo.unavailableReason ?? "")"))
    struct RootlessExport {
        static let script = """
            set -eu
            tool=$1; root=$2; base=$3; out=$4
            "$tool" store import --root "$root" --oci-layout "$base:1" --name test/base:1 >/dev/null
            "$tool" store create-container --root "$root" --image test/base:1 c1 >/dev/null
            merged=$("$tool" store mount --root "$root" c1)
            echo new > "$merged/etc/motd"
            rm "$merged/etc/passwd"
            rm -r "$merged/opt/app"
            mkdir "$merged/opt/app"
            echo z > "$merged/opt/app/z"
            "$tool" manifest --json --no-hard-links --ignore-xattr-prefix user.overlay. \
                --ignore-xattr-prefix trusted.overlay. "$merged" > "$out/manifest.json"
            "$tool" store unmount --root "$root" c1 >/dev/null
            "$tool" store commit --root "$root" --as-image test/app:2 c1 >/dev/null
            "$tool" store export-image --root "$root" --oci-layout "$out/layout:v2" test/app:2 >/dev/null
            "$tool" store info --root "$root" --json > "$out/info.json"
            """

        @Test("commit and export in a rootless store; root imports the same view")
        func rootlessRoundTrip() throws {
            let scratch = try Scratch("rootless-export")
            chmod(scratch.path.string, 0o755)
            let nobody = try scratch.directory("rootless")
            try ExportFixture.writeBaseLayout(nobody.appending("base"))
            #expect(try runProcess("/bin/chown", ["-R", "65534:65534", nobody.string]).status == 0)
            let tool = Examples.directory.appending("unionmount").string
            let drop = try #require(UnprivilegedDemo.dropPrivileges)
            let result = try runProcess(
                drop[0],
                Array(drop.dropFirst()) + [
                    "/usr/bin/unshare", "--user", "--map-root-user", "--mount", "/bin/bash", "-c", Self.script,
                    "rootless", tool, nobody.appending("store").string, nobody.appending("base").string, nobody.string,
                ])
            try #require(result.status == 0, "\(result.errorOutput)")
            struct Info: Decodable { var backend: String }
            let info = try JSONDecoder().decode(
                Info.self, from: Data(contentsOf: URL(fileURLWithPath: nobody.appending("info.json").string)))
            #expect(info.backend == LayerStoreBackend.overlayUserXattr.rawValue)
            let seen = try JSONDecoder().decode(
                TreeManifest.self,
                from: Data(contentsOf: URL(fileURLWithPath: nobody.appending("manifest.json").string)))

            let layout = nobody.appending("layout")
            let image = try ImageLayout(directory: layout).resolve(.tag("v2"))
            #expect(image.layers.count == 3)
            let store = try LayerStore.create(at: scratch.path.appending("store"))
            let imported = try store.importImage(from: .ociLayout(layout, reference: "v2"), name: "back/app:2")
            let branches = try imported.image.layers.map { try store.layer($0).directory }
            let options = TreeManifest.Options(
                ignoredXattrPrefixes: ["user.overlay.", "trusted.overlay."], includeHardLinks: false)
            func normalized(_ entries: [TreeManifest.Entry]) -> [TreeManifest.Entry] {
                entries.filter { $0.path != "." }.map { entry in
                    var entry = entry
                    if entry.type == .directory { entry.size = nil }
                    return entry
                }
            }
            let view = try MergedView.entries(branches: branches, format: store.whiteoutFormat).map {
                try TreeManifest.entry(
                    at: LayerIO.join($0.branchPath, $0.path.bytes), relative: $0.path.bytes, options: options)
            }
            let mine = TreeManifest(entries: normalized(view), options: options)
            let theirs = TreeManifest(entries: normalized(seen.entries), options: options)
            #expect(mine.entries.count > 10)
            #expect(mine.differences(from: theirs) == [], "\(mine.differences(from: theirs))")
            #expect(mine.entries.allSatisfy { $0.uid == 0 }, "root of the namespace is uid 0 in the tar")
        }
    }
}
