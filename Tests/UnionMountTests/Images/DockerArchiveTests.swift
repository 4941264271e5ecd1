import Testing

@testable import UnionMount
@testable import UnionMountStore

@Suite struct DockerArchiveTests {
    static let diffA = SHA256.digest(of: Array("a".utf8))
    static let diffB = SHA256.digest(of: Array("b".utf8))
    static let config = Array(OCILayoutFixture.configJSON(diffIDs: [diffA, diffB]).utf8)
    static let configDigest = SHA256.digest(of: config)

    /// A Docker 1.10–24 archive: `<hex>.json`, `<id>/layer.tar`, `repositories`.
    static func legacy(manifest: String? = nil) -> MemoryMembers {
        let text =
            manifest
            ?? "[{\"Config\": \"\(configDigest.hex).json\", \"RepoTags\": [\"example/app:1\", \"example/app:latest\"], "
            + "\"Layers\": [\"aaa/layer.tar\", \"bbb/layer.tar\"]}]"
        return MemoryMembers(members: [
            "manifest.json": Array(text.utf8), "\(configDigest.hex).json": config, "aaa/layer.tar": Array("a".utf8),
            "bbb/layer.tar": Array("b".utf8), "repositories": Array("{}".utf8), "aaa/json": Array("{}".utf8),
        ])
    }

    func archive(_ members: MemoryMembers) -> DockerArchive<MemoryMembers> {
        DockerArchive(reader: members, name: "/tmp/app.tar")
    }

    @Test("the manifest.json form: config verified by its name, layers by member, tags selectable")
    func legacyForm() throws {
        let image = try archive(Self.legacy()).resolve()
        #expect(image.configDigest == Self.configDigest)
        #expect(image.reference == "example/app:1")
        #expect(image.manifest == nil && image.manifestDigest == nil)
        #expect(image.layers.map(\.blob.member) == ["aaa/layer.tar", "bbb/layer.tar"])
        #expect(image.layers.map(\.diffID) == [Self.diffA, Self.diffB])
        #expect(image.layers[1].chainID == ImageDigest.chainID(parent: Self.diffA, diffID: Self.diffB))
        #expect(image.layers.allSatisfy { $0.blob.compression == nil && $0.blob.descriptor == nil })
        #expect(try archive(Self.legacy()).resolve(.tag("example/app")).reference == "example/app:latest")
        #expect(try archive(Self.legacy()).resolve(.digest(Self.configDigest)).configDigest == Self.configDigest)
        let missing = #expect(throws: UnionMountError.self) { try archive(Self.legacy()).resolve(.tag("other:1")) }
        #expect(missing?.code == .notFound)
        #expect(missing?.message.contains("example/app:1, example/app:latest") == true)
    }

    @Test(
        "untrusted member names and tags are refused at parse",
        arguments: [
            ("../etc/passwd", "manifest.json: [0].Layers[0]"), ("/etc/passwd", "manifest.json: [0].Layers[0]"),
            ("a/../../b", "manifest.json: [0].Layers[0]"), ("a//b", "manifest.json: [0].Layers[0]"),
            ("./a", "manifest.json: [0].Layers[0]"), ("", "manifest.json: [0].Layers[0]"),
        ])
    func memberNames(name: String, input: String) {
        let manifest =
            "[{\"Config\": \"\(Self.configDigest.hex).json\", \"RepoTags\": null, \"Layers\": [\"\(name)\", \"bbb/layer.tar\"]}]"
        let error = #expect(throws: UnionMountError.self) { try archive(Self.legacy(manifest: manifest)).resolve() }
        #expect(error?.code == .malformedInput)
        #expect(error?.input == input, "\(error?.message ?? "")")
    }

    @Test("a missing member, a config that is not its name's digest, a bad tag, counts that differ")
    func badArchives() throws {
        var members = Self.legacy()
        members.members["bbb/layer.tar"] = nil
        var error = #expect(throws: UnionMountError.self) { try archive(members).resolve() }
        #expect(error?.code == .notFound)
        #expect(error?.input == "manifest.json: [0].Layers[1]")
        members = Self.legacy()
        members.members["\(Self.configDigest.hex).json"]?.append(0x20)
        error = #expect(throws: UnionMountError.self) { try archive(members).resolve() }
        #expect(error?.code == .malformedInput)
        #expect(error?.input == "manifest.json: [0].Config")
        let badTag = "[{\"Config\": \"c.json\", \"RepoTags\": [\"UPPER:x\"], \"Layers\": []}]"
        error = #expect(throws: UnionMountError.self) { try archive(Self.legacy(manifest: badTag)).resolve() }
        #expect(error?.code == .malformedInput)
        #expect(error?.input == "manifest.json: [0].RepoTags[0]")
        let oneLayer =
            "[{\"Config\": \"\(Self.configDigest.hex).json\", \"RepoTags\": [], \"Layers\": [\"aaa/layer.tar\"]}]"
        error = #expect(throws: UnionMountError.self) { try archive(Self.legacy(manifest: oneLayer)).resolve() }
        #expect(error?.message.contains("lists 1 layers, the config's rootfs.diff_ids 2") == true)
        let two = "[{\"Config\": \"a.json\", \"Layers\": []}, {\"Config\": \"b.json\", \"Layers\": []}]"
        error = #expect(throws: UnionMountError.self) { try archive(Self.legacy(manifest: two)).resolve() }
        #expect(error?.code == .invalidArgument)
        let old = MemoryMembers(members: ["repositories": Array("{}".utf8), "aaa/json": Array("{}".utf8)])
        error = #expect(throws: UnionMountError.self) { try archive(old).resolve() }
        #expect(error?.code == .unsupported)
        error = #expect(throws: UnionMountError.self) { try archive(MemoryMembers(members: [:])).resolve() }
        #expect(error?.code == .malformedInput)
        var big = Self.legacy()
        big.members["\(Self.configDigest.hex).json"] = [UInt8](repeating: 0x20, count: 100)
        error = #expect(throws: UnionMountError.self) {
            try DockerArchive(reader: big, name: "big.tar", limits: .init(maximumJSONBytes: 50)).resolve()
        }
        #expect(error?.code == .malformedInput)
    }

    /// Docker 25+: `blobs/sha256/…` members, `manifest.json` and an OCI `index.json` side by side.
    static func ociInArchive(withManifestJSON: Bool) throws -> (MemoryMembers, OCILayoutFixture.Image) {
        let scratch = try Scratch("docker-oci")
        let fixture = try OCILayoutFixture(in: scratch.path.appending("l"))
        let image = try fixture.image(layers: ["a", "b"])
        var members: [String: [UInt8]] = ["oci-layout": Array(#"{"imageLayoutVersion": "1.0.0"}"#.utf8)]
        for blob in [image.manifest, image.config] + image.layers { members[blobFileName(blob.digest)] = blob.bytes }
        members["index.json"] = Array(
            ("{\"schemaVersion\": 2, \"manifests\": ["
                + OCILayoutFixture.tagged(
                    image.manifest, "latest",
                    extra: "\"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"}") + "]}").utf8)
        if withManifestJSON {
            members["manifest.json"] = Array(
                ("[{\"Config\": \"blobs/sha256/\(image.config.digest.hex)\", \"RepoTags\": [\"app:2\"], \"Layers\": ["
                    + image.layers.map { "\"blobs/sha256/\($0.digest.hex)\"" }.joined(separator: ", ") + "]}]").utf8)
        }
        return (MemoryMembers(members: members), image)
    }

    @Test("the OCI-in-archive form: descriptors come from the archive's index.json")
    func ociForm() throws {
        let (members, image) = try Self.ociInArchive(withManifestJSON: true)
        let resolved = try archive(members).resolve(.tag("app:2"), platform: .linuxAMD64)
        #expect(resolved.reference == "app:2")
        #expect(resolved.manifestDigest == image.manifest.digest)
        #expect(resolved.layers.map(\.blob.member) == image.layers.map { "blobs/sha256/" + $0.digest.hex })
        #expect(resolved.layers.allSatisfy { $0.blob.compression == .gzip })
        #expect(try archive(members).resolve(.digest(image.manifest.digest)).configDigest == image.config.digest)
        #expect(try archive(members).resolve(.digest(image.config.digest)).manifestDigest == image.manifest.digest)
        let (only, _) = try Self.ociInArchive(withManifestJSON: false)
        let oci = try archive(only).resolve(.tag("latest"), platform: .linuxAMD64)
        #expect(oci.manifestDigest == image.manifest.digest)
        #expect(oci.layers.map(\.diffID) == image.diffIDs)
    }
}
