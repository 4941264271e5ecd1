import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// Real peers as oracles: an OCI layout written by `umoci` (`init`, `new`, `unpack` and `repack` twice, a file
/// deleted the second time, so the second layer has a real `.wh.` whiteout, then `config`), read back by
/// ``ImageLayout``; its digests checked against `skopeo inspect`; its layers' diff ids against `gzip -dc`; and
/// the same image as `skopeo copy … docker-archive:` read by ``DockerArchive``. Skipped, with the reason, when
/// a tool is absent (`.ci/test` installs both).
@Suite(.enabled(if: OracleTools.present, "needs umoci, skopeo, gzip and tar (apt-get install umoci skopeo)"))
struct ImageOracleTests {
    @discardableResult
    func run(_ name: String, _ arguments: [String]) throws -> Data {
        let result = try runProcess(try #require(OracleTools.path(name)), arguments)
        let errors = String(decoding: result.stderr, as: UTF8.self)
        #expect(result.status == 0, "\(name) \(arguments.joined(separator: " ")): \(errors)")
        return result.stdout
    }

    /// A two-layer image built with umoci in `directory/layout`, tag `v1`.
    func umociImage(in directory: FilePath) throws -> FilePath {
        let layout = directory.appending("layout").string
        let bundle = directory.appending("bundle").string
        let rootless = geteuid() == 0 ? [] : ["--rootless"]
        try run("umoci", ["init", "--layout", layout])
        try run("umoci", ["new", "--image", layout + ":v1"])
        try run("umoci", ["unpack"] + rootless + ["--image", layout + ":v1", bundle])
        try makeDirectories(FilePath(bundle).appending("rootfs/etc"))
        try writeFile(FilePath(bundle).appending("rootfs/etc/hostname"), "oracle\n")
        try writeFile(FilePath(bundle).appending("rootfs/gone"), "soon deleted\n")
        try run("umoci", ["repack", "--image", layout + ":v1", bundle])
        let second = directory.appending("bundle2").string
        try run("umoci", ["unpack"] + rootless + ["--image", layout + ":v1", second])
        try FileManager.default.removeItem(atPath: second + "/rootfs/gone")
        try writeFile(FilePath(second).appending("rootfs/etc/motd"), "second layer\n")
        try run("umoci", ["repack", "--image", layout + ":v1", second])
        try run("umoci", ["config", "--image", layout + ":v1", "--config.cmd", "/bin/sh", "--config.env", "A=1"])
        return FilePath(layout)
    }

    /// The diff id of a gzip layer blob: the SHA-256 of what `gzip -dc` makes of it.
    func diffID(ofGzipBlob bytes: [UInt8], scratch: Scratch) throws -> ImageDigest {
        let file = scratch.path.appending("layer.gz").string
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return SHA256.digest(of: [UInt8](try run("gzip", ["-dc", file])))
    }

    @Test("umoci's layout reads back; digests agree with skopeo inspect, diff ids with gzip -dc")
    func umociLayout() throws {
        let scratch = try Scratch("oracle")
        let directory = try umociImage(in: scratch.path)
        let layout = ImageLayout(directory: directory)
        let image = try layout.resolve(.tag("v1"), platform: .host)
        #expect(image.layers.count == 2)
        #expect(image.config.runtime?.command == ["/bin/sh"])
        #expect(image.config.runtime?.environment?.contains("A=1") == true)
        let inspected = try #require(
            try JSONSerialization.jsonObject(with: try run("skopeo", ["inspect", "oci:\(directory.string):v1"]))
                as? [String: Any])
        #expect(inspected["Digest"] as? String == image.manifestDigest?.description)
        #expect(inspected["Layers"] as? [String] == image.layers.map { $0.blob.descriptor?.digest.description ?? "" })
        var parent: ImageDigest?
        for layer in image.layers {
            let descriptor = try #require(layer.blob.descriptor)
            #expect(layer.blob.compression == .gzip)
            let bytes = try layout.openBlob(descriptor).readAll()
            #expect(try diffID(ofGzipBlob: bytes, scratch: scratch) == layer.diffID)
            #expect(layer.chainID == ImageDigest.chainID(parent: parent, diffID: layer.diffID))
            parent = layer.chainID
        }
        #expect(try layout.resolve(.digest(try #require(image.manifestDigest))).configDigest == image.configDigest)
    }

    @Test("skopeo's docker-archive of the same image resolves to the same config and chain")
    func skopeoDockerArchive() throws {
        let scratch = try Scratch("oracle-archive")
        let directory = try umociImage(in: scratch.path)
        let fromLayout = try ImageLayout(directory: directory).resolve(.tag("v1"))
        let archive = scratch.path.appending("app.tar").string
        try run("skopeo", ["copy", "-q", "oci:\(directory.string):v1", "docker-archive:\(archive):example/app:v1"])
        let unpacked = try scratch.directory("unpacked")
        try run("tar", ["-xf", archive, "-C", unpacked.string])
        var members: [String: [UInt8]] = [:]
        let root = URL(fileURLWithPath: unpacked.string)
        for case let name as String in FileManager.default.enumerator(atPath: unpacked.string) ?? .init() {
            var isDirectory: ObjCBool = false
            let url = root.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                members[name] = [UInt8](try Data(contentsOf: url))
            }
        }
        let image = try DockerArchive(reader: MemoryMembers(members: members), name: archive).resolve(
            .tag("docker.io/example/app:v1"))
        #expect(image.configDigest == fromLayout.configDigest)
        #expect(image.layers.map(\.diffID) == fromLayout.layers.map(\.diffID))
        #expect(image.layers.map(\.chainID) == fromLayout.layers.map(\.chainID))
        // skopeo writes each layer uncompressed: its SHA-256 is the diff id.
        for layer in image.layers {
            let member = try #require(layer.blob.member)
            #expect(SHA256.digest(of: try #require(members[member])) == layer.diffID)
        }
    }

    @Test("umoci's image imports into a store: layers by chain id, a layer applied with GNU tar")
    func importIntoStore() throws {
        let scratch = try Scratch("oracle-store")
        let directory = try umociImage(in: scratch.path)
        let layout = ImageLayout(directory: directory)
        let image = try layout.resolve(.tag("v1"))
        let store = try LayerStore.create(at: scratch.path.appending("store"), features: StoreBackendTests.features())
        let recorded = try store.importImage(image, name: "oracle/app:v1") { layer, builder in
            let bytes = try layout.openBlob(try #require(layer.blob.descriptor)).readAll()
            let file = scratch.path.appending("layer.gz").string
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            try run("tar", ["-xzf", file, "-C", builder.directory.string])
            return try diffID(ofGzipBlob: bytes, scratch: scratch)
        }
        #expect(recorded.layers == image.layers.reversed().map(\.chainID.hex))
        let bottom = try store.layer(image.layers[0].chainID.hex)
        #expect(readFile(bottom.directory.appending("etc/hostname")) == "oracle\n")
        let top = try store.layer(image.layers[1].chainID.hex)
        #expect(fileExists(top.directory.appending(".wh.gone")))
        #expect(readFile(top.directory.appending("etc/motd")) == "second layer\n")
    }
}

/// Where the oracle programs are.
enum OracleTools {
    static func path(_ name: String) -> String? {
        ["/usr/bin/", "/usr/local/bin/", "/bin/"].map { $0 + name }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    static let present = ["umoci", "skopeo", "gzip", "tar"].allSatisfy { path($0) != nil }
}
