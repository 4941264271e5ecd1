import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

/// The hostile archives of issue 11 (3), each crafted with libarchive's writer and applied through
/// `LayerStore.applyLayer`: each is a typed error naming the entry, a canary directory outside the layer root is
/// unchanged, and the store is as before (no layer, nothing left in `staging/` or `trash/`).
@Suite(.serialized) struct HostileArchiveTests {
    /// A store next to a canary directory, and the check that neither changed.
    final class Setup {
        let scratch: Scratch
        let store: LayerStore
        let outside: FilePath
        let archive: FilePath

        init(features: KernelFeatures = StoreBackendTests.features()) throws {
            scratch = try Scratch("hostile")
            outside = try scratch.directory("outside")
            try writeFile(outside.appending("canary"), "canary\n")
            store = try LayerStore.create(at: scratch.path.appending("store"), features: features)
            archive = scratch.path.appending("layer.tar")
        }

        /// Applies `bytes` and returns the error, after checking that nothing changed.
        func refuse(
            _ bytes: [UInt8], expected: LayerArchiveExpectation = LayerArchiveExpectation(),
            limits: LayerArchiveLimits = LayerArchiveLimits(), sourceLocation: SourceLocation = #_sourceLocation
        ) throws -> UnionMountError? {
            try TestArchive.write(bytes, to: archive)
            var caught: UnionMountError?
            do {
                let applied = try store.applyLayer(archive: archive, id: "hostile", expected: expected, limits: limits)
                Issue.record("applied: \(applied.archive)", sourceLocation: sourceLocation)
            } catch {
                caught = error
            }
            #expect(try FileSystem.names(in: outside).map(\.readable) == ["canary"], sourceLocation: sourceLocation)
            #expect(readFile(outside.appending("canary")) == "canary\n", sourceLocation: sourceLocation)
            #expect(try store.layers().isEmpty, sourceLocation: sourceLocation)
            for folder in ["staging", "trash", "layers"] {
                #expect(
                    try FileSystem.names(in: store.root.appending(folder)).isEmpty, "\(folder) is not empty",
                    sourceLocation: sourceLocation)
            }
            return caught
        }

        func refuse(_ entries: [TestArchive.Entry], compression: TestArchive.Compression = .none) throws
            -> UnionMountError?
        {
            try refuse(TestArchive(entries, compression: compression).bytes())
        }
    }

    /// The error is hostile input naming the entry.
    func expectMalformed(_ error: UnionMountError?, entry: String, mentioning words: String? = nil) {
        #expect(error?.code == .malformedInput, "\(String(describing: error))")
        #expect(error?.input == entry, "\(String(describing: error))")
        #expect(error?.message.contains(entry) == true, "\(String(describing: error))")
        if let words { #expect(error?.message.contains(words) == true, "\(String(describing: error))") }
    }

    @Test func parentComponent() throws {
        let setup = try Setup()
        let error = try setup.refuse([.file("ok", "x"), .file("../outside/canary", "owned\n")])
        expectMalformed(error, entry: "../outside/canary", mentioning: "'..'")
    }

    @Test func parentComponentInTheMiddle() throws {
        let setup = try Setup()
        expectMalformed(try setup.refuse([.file("a/../../outside/x", "owned")]), entry: "a/../../outside/x")
    }

    @Test func absolutePath() throws {
        let setup = try Setup()
        let name = setup.outside.appending("x").string
        expectMalformed(try setup.refuse([.file(name, "owned")]), entry: name, mentioning: "absolute")
    }

    @Test("a symbolic link, then a file written through it")
    func writeThroughSymbolicLink() throws {
        let setup = try Setup()
        let error = try setup.refuse([.symlink("a", to: setup.outside.string), .file("a/x", "owned")])
        expectMalformed(error, entry: "a/x", mentioning: "symbolic link")
    }

    @Test("a symbolic link to .., chained")
    func symbolicLinkToParentChain() throws {
        let setup = try Setup()
        let error = try setup.refuse([
            .directory("d"), .symlink("d/up", to: ".."), .symlink("d/up2", to: "../../../.."),
            .file("d/up/up/up/outside/x", "owned"),
        ])
        expectMalformed(error, entry: "d/up/up/up/outside/x", mentioning: "symbolic link")
        let deeper = try Setup()
        let again = try deeper.refuse([.directory("d"), .symlink("d/up2", to: "../../../.."), .file("d/up2/x", "o")])
        expectMalformed(again, entry: "d/up2/x", mentioning: "symbolic link")
    }

    @Test func hardLinkOutside() throws {
        let setup = try Setup()
        let canary = setup.outside.appending("canary").string
        expectMalformed(try setup.refuse([.hardlink("h", to: canary)]), entry: "h", mentioning: "absolute")
        expectMalformed(try setup.refuse([.hardlink("h", to: "../outside/canary")]), entry: "h", mentioning: "'..'")
        // A name inside the layer that no entry wrote (the host's /etc/passwd is not in the layer).
        expectMalformed(try setup.refuse([.hardlink("h", to: "etc/passwd")]), entry: "h", mentioning: "earlier")
    }

    @Test func hardLinkToALaterEntry() throws {
        let setup = try Setup()
        let error = try setup.refuse([.hardlink("first", to: "second"), .file("second", "later")])
        expectMalformed(error, entry: "first", mentioning: "earlier entry")
    }

    @Test func hardLinkThroughASymbolicLink() throws {
        let setup = try Setup()
        let error = try setup.refuse([
            .symlink("out", to: setup.outside.string), .hardlink("h", to: "out/canary"),
        ])
        expectMalformed(error, entry: "h", mentioning: "earlier entry")
    }

    @Test("a device node in a rootless import")
    func deviceInRootlessImport() throws {
        let setup = try Setup(features: StoreBackendTests.features(initialUserNamespace: false))
        #expect(setup.store.whiteoutFormat == .overlayUser)
        var device = TestArchive.Entry(path: Array("dev/sda".utf8), kind: .blockDevice, permissions: 0o660)
        device.device = (8, 0)
        expectMalformed(try setup.refuse([.directory("dev"), device]), entry: "dev/sda", mentioning: "rootless")
    }

    @Test func duplicateEntries() throws {
        let setup = try Setup()
        expectMalformed(
            try setup.refuse([.file("etc/passwd", "one"), .file("etc/passwd", "two")]), entry: "etc/passwd",
            mentioning: "twice")
        expectMalformed(try setup.refuse([.directory("d"), .directory("./d/")]), entry: "./d/", mentioning: "twice")
        // A whiteout and the name it whites out, in one layer.
        expectMalformed(try setup.refuse([.file("x", "x"), .file(".wh.x")]), entry: ".wh.x", mentioning: "whites out")
        expectMalformed(try setup.refuse([.file(".wh.x"), .file("x", "x")]), entry: "x", mentioning: "whited out")
    }

    @Test func truncatedGzip() throws {
        let setup = try Setup()
        let whole = TestArchive(
            [.file("a", String(repeating: "abcdefgh", count: 40_000)), .file("b", "b")], compression: .gzip
        ).bytes()
        let error = try setup.refuse(Array(whole.prefix(whole.count / 2)))
        #expect(error?.code == .malformedInput, "\(String(describing: error))")
        #expect(error?.message.contains("sha256:") == false)
        #expect(error?.message.contains("entry a") == true, "\(String(describing: error))")
    }

    @Test func corruptZstd() throws {
        let setup = try Setup()
        var bytes = TestArchive(
            [.file("a", String(repeating: "0123456789", count: 50_000)), .file("b", "b")], compression: .zstd
        ).bytes()
        for index in stride(from: bytes.count / 3, to: bytes.count * 2 / 3, by: 7) { bytes[index] ^= 0x5A }
        let error = try setup.refuse(bytes)
        #expect(error?.code == .malformedInput, "\(String(describing: error))")
    }

    @Test func garbageIsNotATar() throws {
        let setup = try Setup()
        let error = try setup.refuse(Array(repeating: 0x41, count: 3000))
        #expect(error?.code == .malformedInput, "\(String(describing: error))")
    }

    @Test("a tar bomb: a declared size over the limit")
    func declaredSizeOverTheLimit() throws {
        let setup = try Setup()
        try TestArchive.write(
            TestArchive([.file("big", String(repeating: "x", count: 5000))]).bytes(), to: setup.archive)
        let error = try setup.refuse(
            TestArchive([.file("big", String(repeating: "x", count: 5000))]).bytes(),
            limits: LayerArchiveLimits(maximumEntrySize: 4096))
        expectMalformed(error, entry: "big", mentioning: "limit")
    }

    @Test("a tar bomb: more entries than the limit")
    func entryCountOverTheLimit() throws {
        let setup = try Setup()
        let entries = (0..<20).map { TestArchive.Entry.file("f\($0)", "") }
        let error = try setup.refuse(TestArchive(entries).bytes(), limits: LayerArchiveLimits(maximumEntries: 10))
        expectMalformed(error, entry: "f10", mentioning: "limit of 10 entries")
    }

    @Test("a gzip bomb: more decompressed bytes than the limit")
    func decompressedSizeOverTheLimit() throws {
        let setup = try Setup()
        let bomb = TestArchive([.file("zeros", String(repeating: "\0", count: 4 << 20))], compression: .gzip).bytes()
        #expect(bomb.count < 64 << 10)
        let error = try setup.refuse(bomb, limits: LayerArchiveLimits(maximumUncompressedBytes: 1 << 20))
        #expect(error?.code == .malformedInput && error?.message.contains("tar bomb") == true)
        #expect(error?.input == "zeros", "\(String(describing: error))")
    }

    @Test func digestMismatch() throws {
        let setup = try Setup()
        let bytes = TestArchive([.file("a", "a")], compression: .gzip).bytes()
        let other = SHA256.digest(of: Array("another blob".utf8))
        let error = try setup.refuse(bytes, expected: LayerArchiveExpectation(digest: other))
        #expect(error?.code == .malformedInput && error?.message.contains("digest") == true)
        #expect(error?.input == other.description, "the layer is named by the digest it should have had")
        let diffError = try setup.refuse(bytes, expected: LayerArchiveExpectation(diffID: other))
        #expect(diffError?.code == .malformedInput && diffError?.message.contains("diff id") == true)
        // The right ones pass.
        try TestArchive.write(bytes, to: setup.archive)
        let right = LayerArchiveExpectation(
            digest: SHA256.digest(of: bytes), size: Int64(bytes.count),
            diffID: SHA256.digest(of: TestArchive([.file("a", "a")]).bytes()))
        let applied = try setup.store.applyLayer(archive: setup.archive, id: "right", expected: right)
        #expect(applied.archive.digest == right.digest && applied.archive.diffID == right.diffID)
    }

    @Test func sizeMismatch() throws {
        let setup = try Setup()
        let bytes = TestArchive([.file("a", String(repeating: "a", count: 100_000))], compression: .gzip).bytes()
        let shorter = try setup.refuse(bytes, expected: LayerArchiveExpectation(size: Int64(bytes.count) - 1))
        #expect(shorter?.code == .malformedInput && shorter?.message.contains("longer") == true)
        let longer = try setup.refuse(bytes, expected: LayerArchiveExpectation(size: Int64(bytes.count) + 1))
        #expect(longer?.code == .malformedInput && longer?.message.contains("bytes") == true)
    }
}
