import Testing

@testable import UnionMount
@testable import UnionMountStore

@Suite struct ImageMetadataTests {
    static let digestA = "sha256:" + String(repeating: "a", count: 64)
    static let digestB = "sha256:" + String(repeating: "b", count: 64)
    static let gzipLayer = "application/vnd.oci.image.layer.v1.tar+gzip"

    static func manifest(
        mediaType: String? = ImageMediaType.ociManifest, configType: String = ImageMediaType.ociConfig,
        layerType: String = gzipLayer, size: String = "10", extra: String = ""
    ) -> [UInt8] {
        let type = mediaType.map { "\"mediaType\": \"\($0)\", " } ?? ""
        return Array(
            ("{\"schemaVersion\": 2, \(type)\"config\": {\"mediaType\": \"\(configType)\", \"digest\": \"\(digestA)\", "
                + "\"size\": 5}, \"layers\": [{\"mediaType\": \"\(layerType)\", \"digest\": \"\(digestB)\", \"size\": "
                + "\(size), \"urls\": [\"https://example.com/x\"], \"annotations\": {\"k\": \"v\"}}]\(extra)}").utf8)
    }

    @Test("OCI and Docker manifests decode, layer types mapped to compression")
    func manifests() throws {
        let oci = try ImageManifest(parsing: Self.manifest(), file: "m")
        #expect(oci.mediaType == ImageMediaType.ociManifest)
        #expect(oci.config.digest.description == Self.digestA)
        #expect(oci.layers.count == 1)
        #expect(oci.layers[0].size == 10)
        #expect(oci.layers[0].urls == ["https://example.com/x"])
        #expect(oci.layers[0].annotations == ["k": "v"])
        #expect(oci.layerTypes[0].compression == .gzip)
        let docker = try ImageManifest(
            parsing: Self.manifest(
                mediaType: ImageMediaType.dockerManifest, configType: ImageMediaType.dockerConfig,
                layerType: "application/vnd.docker.image.rootfs.diff.tar.gzip"), file: "m")
        #expect(docker.mediaType == ImageMediaType.dockerManifest)
        #expect(docker.layerTypes[0].compression == .gzip)
        for (type, compression, foreign) in [
            ("application/vnd.oci.image.layer.v1.tar", LayerCompression.none, false),
            ("application/vnd.oci.image.layer.v1.tar+zstd", .zstd, false),
            ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", .gzip, true),
            ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", .gzip, true),
        ] {
            let manifest = try ImageManifest(parsing: Self.manifest(layerType: type), file: "m")
            #expect(manifest.layerTypes[0].compression == compression)
            #expect(manifest.layerTypes[0].nonDistributable == foreign)
        }
        // No mediaType in the document: the descriptor's is used; none at all is malformed.
        let bare = try ImageManifest(
            parsing: Self.manifest(mediaType: nil), file: "m", expectedMediaType: ImageMediaType.ociManifest)
        #expect(bare.mediaType == ImageMediaType.ociManifest)
        let error = #expect(throws: UnionMountError.self) {
            try ImageManifest(parsing: Self.manifest(mediaType: nil), file: "m")
        }
        #expect(error?.code == .malformedInput)
    }

    @Test(
        "malformed manifests name the file and the field",
        arguments: [
            (manifest(size: "-1"), "blobs/x: layers[0].size"),
            (manifest(size: "1.5"), "blobs/x: layers[0].size"),
            (manifest(size: "\"10\""), "blobs/x: layers[0].size"),
            (manifest(size: "10, \"size\": 11"), "blobs/x: layers[0].size"),
            (manifest(size: "10, \"Size\": 11"), "blobs/x: layers[0].Size"),
            (manifest(size: "10, \"ſize\": 11"), "blobs/x: layers[0][\"ſize\"]"),
            (manifest(extra: ", \"manifests\": []"), "blobs/x: (top level)"),
            (manifest(extra: ", \"schemaVersion\": 2"), "blobs/x: schemaVersion"),
            (
                Array("{\"schemaVersion\": 2, \"mediaType\": \"\(ImageMediaType.ociManifest)\"}".utf8),
                "blobs/x: (top level)"
            ),
            (
                Array(
                    String(decoding: manifest(), as: UTF8.self).replacingOccurrences(
                        of: digestB, with: "sha256:../../x"
                    ).utf8),
                "blobs/x: layers[0].digest"
            ),
            (Array(String(decoding: manifest(), as: UTF8.self).dropLast().utf8), "blobs/x: (top level)"),
        ] as [([UInt8], String)])
    func malformedManifest(bytes: [UInt8], input: String) {
        let error = #expect(throws: UnionMountError.self) { try ImageManifest(parsing: bytes, file: "blobs/x") }
        #expect(error?.code == .malformedInput, "\(error?.message ?? "")")
        #expect(error?.input == input, "\(error?.message ?? "")")
        #expect(error?.message.hasPrefix(input) == true)
    }

    @Test("well-formed but unsupported manifests are .unsupported")
    func unsupportedManifest() {
        for bytes in [
            Self.manifest(mediaType: "application/vnd.docker.distribution.manifest.v1+prettyjws"),
            Self.manifest(mediaType: "application/vnd.example.thing+json"),
            Self.manifest(configType: "application/vnd.cncf.helm.config.v1+json"),
            Self.manifest(layerType: "application/vnd.oci.image.layer.v1.tar+gzip+encrypted"),
            Array(
                String(decoding: Self.manifest(), as: UTF8.self).replacingOccurrences(
                    of: Self.digestB, with: "sha512:" + String(repeating: "c", count: 128)
                ).utf8),
        ] {
            let error = #expect(throws: UnionMountError.self) { try ImageManifest(parsing: bytes, file: "m") }
            #expect(error?.code == .unsupported, "\(error?.message ?? "")")
        }
        let version = #expect(throws: UnionMountError.self) {
            try ImageManifest(
                parsing: Array(
                    String(decoding: Self.manifest(), as: UTF8.self).replacingOccurrences(
                        of: "\"schemaVersion\": 2", with: "\"schemaVersion\": 1"
                    ).utf8), file: "m")
        }
        #expect(version?.code == .unsupported)
        let mismatch = #expect(throws: UnionMountError.self) {
            try ImageManifest(parsing: Self.manifest(), file: "m", expectedMediaType: ImageMediaType.dockerManifest)
        }
        #expect(mismatch?.code == .malformedInput)
    }

    @Test("indexes and manifest lists decode with platforms; a manifest posing as an index is refused")
    func indexes() throws {
        let text = """
            {"schemaVersion": 2, "mediaType": "\(ImageMediaType.dockerManifestList)", "manifests": [
              {"mediaType": "\(ImageMediaType.dockerManifest)", "digest": "\(Self.digestA)", "size": 7,
               "platform": {"architecture": "arm", "os": "linux", "variant": "v7", "os.features": ["x"]}},
              {"mediaType": "\(ImageMediaType.dockerManifest)", "digest": "\(Self.digestB)", "size": 8,
               "platform": {"architecture": "amd64", "os": "linux"}}]}
            """
        let index = try ImageIndex(parsing: Array(text.utf8), file: "i")
        #expect(index.manifests.count == 2)
        #expect(
            index.manifests[0].platform
                == ImagePlatform(os: "linux", architecture: "arm", variant: "v7", osFeatures: ["x"]))
        #expect(index.manifests[1].platform?.description == "linux/amd64")
        let layoutIndex = try ImageIndex(
            parsing: Array(#"{"schemaVersion": 2, "manifests": null}"#.utf8), file: "index.json")
        #expect(layoutIndex.manifests.isEmpty && layoutIndex.mediaType == nil)
        for (bad, code, input) in [
            (
                #"{"schemaVersion": 2, "manifests": [], "layers": []}"#, UnionMountError.Code.malformedInput,
                "index.json: (top level)"
            ),
            (#"{"schemaVersion": 3, "manifests": []}"#, .malformedInput, "index.json: schemaVersion"),
            (#"{"schemaVersion": 2}"#, .malformedInput, "index.json: (top level)"),
            (
                #"{"schemaVersion": 2, "manifests": [{"mediaType": "x", "size": 1}]}"#, .malformedInput,
                "index.json: manifests[0]"
            ),
            (
                #"{"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "sha256:00", "size": 1}]}"#,
                .malformedInput,
                "index.json: manifests[0].digest"
            ),
            (
                #"{"schemaVersion": 2, "manifests": [{"mediaType": 5, "digest": "\#(Self.digestA)", "size": 1}]}"#,
                .malformedInput, "index.json: manifests[0].mediaType"
            ),
            (
                #"{"schemaVersion": 2, "mediaType": "\#(ImageMediaType.ociManifest)", "manifests": []}"#, .unsupported,
                "index.json: mediaType"
            ),
            (
                #"{"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "\#(Self.digestA)", "size": 1, "platform": {"os": "linux"}}]}"#,
                .malformedInput, "index.json: manifests[0].platform"
            ),
            (
                #"{"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "\#(Self.digestA)", "size": 1, "platform": {"os": "li/nux", "architecture": "amd64"}}]}"#,
                .malformedInput, "index.json: manifests[0].platform.os"
            ),
        ] {
            let error = #expect(throws: UnionMountError.self) {
                try ImageIndex(parsing: Array(bad.utf8), file: "index.json")
            }
            #expect(error?.code == code, "\(bad): \(error?.message ?? "")")
            #expect(error?.input == input, "\(bad): \(error?.message ?? "")")
        }
    }

    @Test("configs: platform, diff ids, runtime fields typed and kept whole")
    func configs() throws {
        let text = """
            {"architecture": "arm64", "os": "linux", "variant": "v8", "created": "2024-01-01T00:00:00Z",
             "config": {"User": "1000", "Env": ["PATH=/usr/bin"], "Entrypoint": null, "Cmd": ["sh"],
                        "WorkingDir": "/w", "Labels": {"a": "b"}, "ExposedPorts": {"80/tcp": {}}, "Other": [1]},
             "rootfs": {"type": "layers", "diff_ids": ["\(Self.digestA)", "\(Self.digestB)"]},
             "history": [{"created_by": "x"}]}
            """
        let config = try ImageConfig(parsing: Array(text.utf8), file: "c")
        #expect(config.platform == ImagePlatform(os: "linux", architecture: "arm64", variant: "v8"))
        #expect(config.diffIDs.map(\.description) == [Self.digestA, Self.digestB])
        #expect(config.runtime?.user == "1000")
        #expect(config.runtime?.environment == ["PATH=/usr/bin"])
        #expect(config.runtime?.entrypoint == nil)
        #expect(config.runtime?.command == ["sh"])
        #expect(config.runtime?.labels == ["a": "b"])
        #expect(config.runtime?.exposedPorts == ["80/tcp"])
        guard case .object(let members) = config.runtimeJSON else {
            Issue.record("runtime JSON not kept")
            return
        }
        #expect(members.contains { $0.key == "Other" })
        for (bad, code, input) in [
            (
                #"{"os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}"#, UnionMountError.Code.malformedInput,
                "c: (top level)"
            ),
            (#"{"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers"}}"#, .malformedInput, "c: rootfs"),
            (
                #"{"os": "linux", "architecture": "amd64", "rootfs": {"type": "zfs", "diff_ids": []}}"#, .unsupported,
                "c: rootfs.type"
            ),
            (
                #"{"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": ["sha256:x"]}}"#,
                .malformedInput, "c: rootfs.diff_ids[0]"
            ),
            (
                #"{"os": "linux", "architecture": "amd64", "config": {"Env": "PATH=/"}, "rootfs": {"type": "layers", "diff_ids": []}}"#,
                .malformedInput, "c: config.Env"
            ),
            (
                #"{"os": "linux", "architecture": "amd64", "config": {"Env": [], "env": ["X=1"]}, "rootfs": {"type": "layers", "diff_ids": []}}"#,
                .malformedInput, "c: config.env"
            ),
        ] {
            let error = #expect(throws: UnionMountError.self) { try ImageConfig(parsing: Array(bad.utf8), file: "c") }
            #expect(error?.code == code, "\(bad): \(error?.message ?? "")")
            #expect(error?.input == input, "\(bad): \(error?.message ?? "")")
        }
    }

    @Test("oci-layout: 1.0.0 only")
    func layoutVersion() throws {
        try ImageLayoutVersion.check(Array(#"{"imageLayoutVersion": "1.0.0"}"#.utf8))
        let other = #expect(throws: UnionMountError.self) {
            try ImageLayoutVersion.check(Array(#"{"imageLayoutVersion": "2.0.0"}"#.utf8))
        }
        #expect(other?.code == .unsupported)
        let missing = #expect(throws: UnionMountError.self) { try ImageLayoutVersion.check(Array("{}".utf8)) }
        #expect(missing?.code == .malformedInput)
        #expect(missing?.input == "oci-layout: (top level)")
    }

    @Test("image names: the reference grammar subset, tag latest by default")
    func references() throws {
        for (text, name, tag) in [
            ("debian", "debian", "latest"), ("debian:12", "debian", "12"),
            ("docker.io/library/debian:bookworm-slim", "docker.io/library/debian", "bookworm-slim"),
            ("localhost:5000/a/b_c__d-e.f:V1.0_x", "localhost:5000/a/b_c__d-e.f", "V1.0_x"),
            ("registry.example.com/x", "registry.example.com/x", "latest"),
        ] {
            let reference = try ImageReference(parsing: text)
            #expect(reference.name == name && reference.tag == tag, "\(text)")
        }
        for bad in [
            "", "Debian", "debian:", ":tag", "a//b", "/a", "a/", "a/../b", "a:b:c",
            "a@sha256:" + String(repeating: "a", count: 64),
            "a:" + String(repeating: "t", count: 129), "a:-x", "a_", "a..b", "a/B", "bad_domain.com:port/x",
            String(repeating: "a", count: 64), "a b", "a\u{0}", String(repeating: "a", count: 256),
        ] {
            let error = #expect(throws: UnionMountError.self, "\(bad.debugDescription)") {
                try ImageReference(parsing: bad)
            }
            #expect(error?.code == .invalidArgument)
        }
    }
}
