import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct ImageLayoutTests {
    let scratch: Scratch
    let fixture: OCILayoutFixture

    init() throws {
        scratch = try Scratch("image-layout")
        fixture = try OCILayoutFixture(in: scratch.path.appending("layout"))
    }

    var layout: ImageLayout { ImageLayout(directory: fixture.directory) }

    func resolveError(
        _ selector: ImageSelector = .only, platform: ImagePlatform = .linuxAMD64, limits: ImageReadLimits = .init()
    ) -> UnionMountError? {
        #expect(throws: UnionMountError.self) {
            try ImageLayout(directory: fixture.directory, limits: limits).resolve(selector, platform: platform)
        }
    }

    @Test("one image: manifest, config, layers bottom first with diff ids and chain ids")
    func oneImage() throws {
        let image = try fixture.image(layers: ["base", "middle", "top"])
        try fixture.writeIndex(entries: [image.manifest.json()])
        let resolved = try layout.resolve()
        #expect(resolved.manifestDigest == image.manifest.digest)
        #expect(resolved.configDigest == image.config.digest)
        #expect(resolved.configBytes == image.config.bytes)
        #expect(resolved.manifestBytes == image.manifest.bytes)
        #expect(resolved.config.runtime?.command == ["/bin/sh"])
        #expect(resolved.layers.map(\.blob.descriptor?.digest) == image.layers.map(\.digest))
        #expect(resolved.layers.map(\.diffID) == image.diffIDs)
        #expect(resolved.layers.allSatisfy { $0.blob.compression == .gzip && $0.blob.member == nil })
        let first = image.diffIDs[0]
        let second = SHA256.digest(of: Array("\(first) \(image.diffIDs[1])".utf8))
        let third = SHA256.digest(of: Array("\(second) \(image.diffIDs[2])".utf8))
        #expect(resolved.layers.map(\.chainID) == [first, second, third])
        #expect(resolved.chainID == third)
    }

    @Test("by tag, by digest, and what is there when neither matches")
    func selection() throws {
        let one = try fixture.image(layers: ["a"])
        let two = try fixture.image(
            layers: ["a", "b"], manifestType: ImageMediaType.dockerManifest,
            layerType: "application/vnd.docker.image.rootfs.diff.tar.gzip")
        try fixture.writeIndex(entries: [
            OCILayoutFixture.tagged(one.manifest, "1.0"), OCILayoutFixture.tagged(two.manifest, "2.0"),
        ])
        #expect(try layout.resolve(.tag("1.0")).manifestDigest == one.manifest.digest)
        let second = try layout.resolve(.tag("2.0"))
        #expect(second.manifestDigest == two.manifest.digest)
        #expect(second.reference == "2.0")
        #expect(second.manifest?.mediaType == ImageMediaType.dockerManifest)
        #expect(try layout.resolve(.digest(two.manifest.digest)).layers.count == 2)
        let missing = resolveError(.tag("3.0"))
        #expect(missing?.code == .notFound)
        #expect(missing?.message.contains("\"1.0\", \"2.0\"") == true, "\(missing?.message ?? "")")
        #expect(resolveError(.digest(one.config.digest))?.code == .notFound)
        let ambiguous = resolveError(.only)
        #expect(ambiguous?.code == .notFound)
        #expect(ambiguous?.message.contains("tag 1.0, tag 2.0") == true, "\(ambiguous?.message ?? "")")
    }

    /// index.json → an index of per-platform manifests.
    func writePlatformIndex() throws -> (amd64: OCILayoutFixture.Image, arm64: OCILayoutFixture.Image) {
        let amd64 = try fixture.image(layers: ["x86"])
        let arm64 = try fixture.image(layers: ["arm"], architecture: "arm64")
        let attestation = try fixture.blob("{}", mediaType: "application/vnd.in-toto+json")
        let index = try fixture.blob(
            "{\"schemaVersion\": 2, \"mediaType\": \"\(ImageMediaType.ociIndex)\", \"manifests\": ["
                + arm64.manifest.json(OCILayoutFixture.platform("linux", "arm64", "v8")) + ", "
                + amd64.manifest.json(OCILayoutFixture.platform("linux", "amd64")) + ", "
                + attestation.json(OCILayoutFixture.platform("unknown", "unknown")) + "]}",
            mediaType: ImageMediaType.ociIndex)
        try fixture.writeIndex(entries: [OCILayoutFixture.tagged(index, "multi")])
        return (amd64, arm64)
    }

    @Test("an index picks the platform asked for, the host's by default; none matching lists what there is")
    func platforms() throws {
        let (amd64, arm64) = try writePlatformIndex()
        #expect(try layout.resolve(.tag("multi"), platform: .linuxAMD64).manifestDigest == amd64.manifest.digest)
        #expect(
            try layout.resolve(.tag("multi"), platform: ImagePlatform(parsing: "linux/arm64")).manifestDigest
                == arm64.manifest.digest)
        #if arch(x86_64)
            #expect(try layout.resolve(.tag("multi")).manifestDigest == amd64.manifest.digest)
        #endif
        // A digest below the top index is found too.
        #expect(try layout.resolve(.digest(arm64.manifest.digest)).configDigest == arm64.config.digest)
        let none = resolveError(.tag("multi"), platform: try ImagePlatform(parsing: "linux/s390x"))
        #expect(none?.code == .notFound)
        #expect(
            none?.message.contains("linux/arm64/v8, linux/amd64, unknown/unknown") == true, "\(none?.message ?? "")")
    }

    @Test("nested indexes stop at the depth limit")
    func depthLimit() throws {
        let image = try fixture.image(layers: ["a"])
        var top = image.manifest
        for _ in 0..<3 {
            top = try fixture.blob(
                "{\"schemaVersion\": 2, \"manifests\": [\(top.json())]}", mediaType: ImageMediaType.ociIndex)
        }
        try fixture.writeIndex(entries: [top.json()])
        #expect(
            try ImageLayout(directory: fixture.directory, limits: .init(maximumIndexDepth: 3)).resolve().manifestDigest
                == image.manifest.digest)
        let error = resolveError(limits: .init(maximumIndexDepth: 2))
        #expect(error?.code == .malformedInput)
        #expect(error?.message.contains("nest deeper than 2") == true)
    }

    @Test("a config or manifest blob changed, cut short or extended is refused")
    func tamperedJSON() throws {
        let image = try fixture.image(layers: ["a"])
        try fixture.writeIndex(entries: [image.manifest.json()])
        let config = fixture.path(image.config)
        var bytes = image.config.bytes
        bytes[bytes.count / 2] ^= 0x20
        try Data(bytes).write(to: URL(fileURLWithPath: config.string))
        var error = resolveError()
        #expect(error?.code == .malformedInput)
        #expect(error?.message.contains("does not match its digest") == true, "\(error?.message ?? "")")
        #expect(error?.input == "blobs/sha256/\(image.manifest.digest.hex): config")
        try Data(image.config.bytes.dropLast()).write(to: URL(fileURLWithPath: config.string))
        error = resolveError()
        #expect(error?.message.contains("holds \(image.config.size - 1) bytes") == true, "\(error?.message ?? "")")
        try Data(image.config.bytes + [0x20]).write(to: URL(fileURLWithPath: config.string))
        error = resolveError()
        #expect(
            error?.message.contains("holds more than \(image.config.size) bytes") == true, "\(error?.message ?? "")")
        try FileManager.default.removeItem(atPath: config.string)
        #expect(resolveError()?.code == .notFound)
    }

    @Test("a blob that is a symbolic link, below a linked directory, or not a regular file is refused")
    func confinement() throws {
        let image = try fixture.image(layers: ["a"])
        try fixture.writeIndex(entries: [image.manifest.json()])
        let outside = scratch.path.appending("outside")
        try Data(image.config.bytes).write(to: URL(fileURLWithPath: outside.string))
        let config = fixture.path(image.config)
        try FileManager.default.removeItem(atPath: config.string)
        #expect(symlink(outside.string, config.string) == 0)
        var error = resolveError()
        #expect(error?.code == .malformedInput)
        #expect(error?.message.contains("is a symbolic link") == true, "\(error?.message ?? "")")
        unlink(config.string)
        #expect(mkfifo(config.string, 0o600) == 0)
        error = resolveError()
        #expect(error?.message.contains("is not a regular file") == true, "\(error?.message ?? "")")
        unlink(config.string)
        try Data(image.config.bytes).write(to: URL(fileURLWithPath: config.string))
        _ = try layout.resolve()
        // The whole blobs/sha256 directory replaced by a link to a copy elsewhere.
        let elsewhere = scratch.path.appending("elsewhere")
        try FileManager.default.moveItem(
            atPath: fixture.directory.appending("blobs/sha256").string, toPath: elsewhere.string)
        #expect(symlink(elsewhere.string, fixture.directory.appending("blobs/sha256").string) == 0)
        error = resolveError()
        #expect(error?.code == .malformedInput)
        #expect(error?.message.contains("blobs/sha256 is a symbolic link") == true, "\(error?.message ?? "")")
    }

    @Test("JSON over the caller's limit is refused before it is read; layer counts must match the diff ids")
    func limitsAndCounts() throws {
        let image = try fixture.image(layers: ["a", "b"])
        try fixture.writeIndex(entries: [image.manifest.json()])
        let error = resolveError(limits: .init(maximumJSONBytes: image.config.size - 1))
        #expect(error?.code == .malformedInput)
        #expect(error?.message.contains("limit") == true)
        let config = try fixture.blob(
            OCILayoutFixture.configJSON(diffIDs: [image.diffIDs[0]]), mediaType: ImageMediaType.ociConfig)
        let manifest = try fixture.blob(
            "{\"schemaVersion\": 2, \"config\": \(config.json()), \"layers\": [\(image.layers[0].json()), "
                + "\(image.layers[1].json())]}", mediaType: ImageMediaType.ociManifest)
        try fixture.writeIndex(entries: [manifest.json()])
        let counts = resolveError()
        #expect(counts?.code == .malformedInput)
        #expect(counts?.message.contains("lists 2 layers, the config's rootfs.diff_ids 1") == true)
        let layoutFile = try OCILayoutFixture(
            in: scratch.path.appending("v2"), layoutFile: #"{"imageLayoutVersion": "2"}"#)
        try layoutFile.writeIndex(entries: [])
        let version = #expect(throws: UnionMountError.self) {
            try ImageLayout(directory: layoutFile.directory).resolve()
        }
        #expect(version?.code == .unsupported)
    }

    @Test("a layer blob is checked as it streams: changed, cut short, extended; missing or resized up front")
    func layerStreams() throws {
        let image = try fixture.image(layers: ["layer contents"])
        try fixture.writeIndex(entries: [image.manifest.json()])
        let resolved = try layout.resolve()
        let descriptor = try #require(resolved.layers[0].blob.descriptor)
        #expect(try layout.openBlob(descriptor).readAll() == Array("layer contents".utf8))
        let path = fixture.path(image.layers[0])
        try Data("layer Contents".utf8).write(to: URL(fileURLWithPath: path.string))
        var error = #expect(throws: UnionMountError.self) { try layout.openBlob(descriptor).readAll() }
        #expect(error?.message.contains("does not match its digest") == true)
        // A reader opened at the right size sees the file grow or shrink under it.
        try Data("layer contents".utf8).write(to: URL(fileURLWithPath: path.string))
        var reader = try layout.openBlob(descriptor)
        try Data("layer contents and more".utf8).write(to: URL(fileURLWithPath: path.string))
        error = #expect(throws: UnionMountError.self) { try reader.readAll() }
        #expect(error?.message.contains("is longer than") == true, "\(error?.message ?? "")")
        try Data("layer contents".utf8).write(to: URL(fileURLWithPath: path.string))
        reader = try layout.openBlob(descriptor)
        try Data("layer".utf8).write(to: URL(fileURLWithPath: path.string))
        error = #expect(throws: UnionMountError.self) { try reader.readAll() }
        #expect(error?.message.contains("ends after 5 of") == true, "\(error?.message ?? "")")
        error = #expect(throws: UnionMountError.self) { try layout.openBlob(descriptor) }
        #expect(error?.code == .malformedInput)
        #expect(resolveError()?.message.contains("holds 5 bytes") == true)
        try FileManager.default.removeItem(atPath: path.string)
        #expect(resolveError()?.code == .notFound)
    }

    @Test(
        "a large index.json (12,000 tagged entries, about 3 MB) is read within the default limit, not over a lower one")
    func largeIndex() throws {
        let image = try fixture.image(layers: ["a"])
        let entries = (0..<12_000).map { OCILayoutFixture.tagged(image.manifest, "t\($0)") }
        try fixture.writeIndex(entries: entries)
        let size =
            try FileManager.default.attributesOfItem(atPath: fixture.directory.appending("index.json").string)[
                .size] as? Int ?? 0
        #expect(size > 2_500_000 && size < ImageReadLimits().maximumJSONBytes)
        #expect(try layout.resolve(.tag("t11999")).reference == "t11999")
        let error = resolveError(.tag("t1"), limits: .init(maximumJSONBytes: 1_000_000))
        #expect(error?.code == .malformedInput)
        #expect(error?.message.contains("larger than the 1000000-byte limit") == true, "\(error?.message ?? "")")
    }

    @Test("a non-distributable layer is read when its blob is there; its urls are never fetched")
    func nonDistributable() throws {
        let image = try fixture.image(
            layers: ["foreign"], layerType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
        try fixture.writeIndex(entries: [image.manifest.json()])
        let resolved = try layout.resolve()
        #expect(resolved.layers[0].blob.nonDistributable)
        #expect(resolved.layers[0].blob.compression == .gzip)
        try FileManager.default.removeItem(atPath: fixture.path(image.layers[0]).string)
        let error = resolveError()
        #expect(error?.code == .notFound)
        #expect(error?.input == "blobs/sha256/\(image.manifest.digest.hex): layers[0]")
    }
}
