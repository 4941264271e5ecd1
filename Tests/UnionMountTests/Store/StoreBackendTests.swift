import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

/// The backend ladder, chosen from the kernel's features, and the store refusing to mix formats.
@Suite struct StoreBackendTests {
    static func features(
        overlay: Bool = true, aufs: Bool = false, fuse: Bool = true, program: String? = "/usr/bin/fuse-overlayfs",
        initialUserNamespace: Bool = true, userXattr: OverlayOptionSupport = .accepted
    ) -> KernelFeatures {
        KernelFeatures(
            pageSize: 4096, overlay: overlay, aufs: aufs, fuse: fuse, fuseOverlayfsProgram: program, newMountAPI: true,
            overlayParameterParsing: true, appendLowerDirectory: true, layerFileDescriptors: true, dataOnlyLayers: true,
            userXattr: userXattr, redirectDirectory: .accepted, index: .accepted, inodeNumbers: .accepted,
            metacopy: .accepted, volatile: .accepted, statmount: true, listmount: true,
            initialUserNamespace: initialUserNamespace,
            userNamespaces: true, maximumLayers: 500, overlayModuleParameters: [:])
    }

    @Test func ladder() {
        #expect(LayerStoreBackend.probe(Self.features()) == .overlay)
        #expect(LayerStoreBackend.probe(Self.features(initialUserNamespace: false)) == .overlayUserXattr)
        #expect(
            LayerStoreBackend.probe(Self.features(initialUserNamespace: false, userXattr: .refused)) == .fuseOverlayfs)
        // Before Linux 6.5 the probe cannot tell (the legacy parser); the mount will, so overlay is tried.
        #expect(
            LayerStoreBackend.probe(Self.features(initialUserNamespace: false, userXattr: .unknown))
                == .overlayUserXattr)
        #expect(LayerStoreBackend.probe(Self.features(overlay: false)) == .fuseOverlayfs)
        #expect(LayerStoreBackend.probe(Self.features(overlay: false, aufs: true, program: nil)) == .aufs)
        #expect(LayerStoreBackend.probe(Self.features(overlay: false, fuse: false)) == nil)
    }

    @Test func whiteoutFormats() {
        #expect(LayerStoreBackend.overlay.whiteoutFormat(initialUserNamespace: true) == .overlayTrusted)
        #expect(LayerStoreBackend.overlayUserXattr.whiteoutFormat(initialUserNamespace: false) == .overlayUser)
        #expect(LayerStoreBackend.fuseOverlayfs.whiteoutFormat(initialUserNamespace: false) == .overlayUser)
        #expect(LayerStoreBackend.aufs.whiteoutFormat(initialUserNamespace: true) == .aufs)
    }

    @Test("a store keeps its backend; a process that cannot use it is refused")
    func recordedBackendIsKept() throws {
        let scratch = try Scratch("store-backend")
        let root = scratch.path.appending("store")
        let store = try LayerStore.create(at: root, features: Self.features())
        #expect(store.backend == .overlay)
        #expect(store.whiteoutFormat == .overlayTrusted)
        #expect(readFile(root.appending("store.conf")) == "format=1\nbackend=overlay\nwhiteouts=overlay-trusted\n")
        // Reopened by a process in a user namespace: trusted xattrs are out of reach, so the store refuses.
        let error = thrown { try LayerStore(opening: root, features: Self.features(initialUserNamespace: false)) }
        #expect(error?.code == .unsupported)
        #expect(error?.message.contains("overlay") == true)
        // Asking for another backend on an existing store.
        #expect(
            thrown { try LayerStore.create(at: root, backend: .fuseOverlayfs, features: Self.features()) }?.code
                == .invalidState)
        // An unusable backend is refused at creation.
        let none = thrown {
            try LayerStore.create(at: scratch.path.appending("aufs"), backend: .aufs, features: Self.features())
        }
        #expect(none?.code == .unsupported)
        #expect(!fileExists(scratch.path.appending("aufs/store.conf")))
    }

    @Test("damaged or foreign store.conf files are typed errors")
    func damagedConfiguration() throws {
        let scratch = try Scratch("store-conf")
        let root = scratch.path.appending("store")
        _ = try LayerStore.create(at: root, features: Self.features())
        for (text, code) in [
            ("format=2\nbackend=overlay\nwhiteouts=overlay-trusted\n", UnionMountError.Code.unsupported),
            ("format=1\nbackend=zfs\nwhiteouts=overlay-trusted\n", .malformedInput),
            ("format=1\nbackend=overlay\nwhiteouts=tar\n", .malformedInput),
            ("format=1\nbackend=overlay\n", .malformedInput),
            ("garbage", .malformedInput),
        ] {
            try writeFile(root.appending("store.conf"), text)
            #expect(thrown { try LayerStore(opening: root, features: Self.features()) }?.code == code, "\(text)")
        }
        #expect(thrown { try LayerStore(opening: scratch.path, features: Self.features()) }?.code == .notFound)
        #expect(
            thrown { try LayerStore.create(at: "relative/store", features: Self.features()) }?.code == .invalidArgument)
        // A directory that holds something else is never turned into a store.
        try makeDirectories(scratch.path.appending("home"))
        try writeFile(scratch.path.appending("home/notes.txt"), "mine")
        let foreign = thrown { try LayerStore.create(at: scratch.path.appending("home"), features: Self.features()) }
        #expect(foreign?.code == .invalidState)
        #expect(foreign?.message.contains("notes.txt") == true)
        #expect(!fileExists(scratch.path.appending("home/layers")))
    }

    #if ENABLE_MOCKING
        /// aufs cannot mount on this kernel; the store's aufs mount is checked as the recorded mount(2) sequence.
        @Test("aufs backend: the container's branches as mount(2) br: data, recorded")
        func aufsMountIsRecorded() throws {
            let scratch = try Scratch("store-aufs")
            let root = scratch.path.appending("store")
            let features = Self.features(overlay: false, aufs: true, fuse: false, program: nil)
            let store = try LayerStore.create(at: root, features: features)
            #expect(store.backend == .aufs)
            #expect(store.whiteoutFormat == .aufs)
            try store.createLayer("base") { try writeFile($0.appending("f"), "base") }
            try store.createLayer("app", parent: "base") { _ in }
            try store.createContainer("c", image: "app")
            let recorder = SyscallRecorder { _ in (0, 0, []) }
            try recorder.run { _ = try store.mount(container: "c") }
            let calls = recorder.calls.filter { $0.name == "mount" }
            try #require(calls.count == 1)
            let container = root.appending("containers/c").string
            let layers = root.appending("layers").string
            #expect(calls[0].arguments[1] == "\(container)/merged")
            #expect(calls[0].arguments[2] == "aufs")
            #expect(
                calls[0].arguments[4]
                    == "br:\(container)/diff=rw:\(layers)/app/diff=ro+wh:\(layers)/base/diff=ro+wh")
        }
    #endif
}
