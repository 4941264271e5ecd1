// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "UnionMount",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "UnionMount", targets: ["UnionMount"]),
        .library(name: "UnionMountStore", targets: ["UnionMountStore"]),
        // Not API: the properties the fuzz harnesses in Fuzz/ and the tests check (a product so Fuzz/ can link it).
        .library(name: "UnionMountFuzzChecks", targets: ["UnionMountFuzzChecks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // Thin C shim: raw syscall() entry points and constants Swift's Glibc module hides.
        .target(
            name: "CUnionMountShim",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        // util-linux libmount, used as the reference parser in tests and benchmarks.
        .systemLibrary(
            name: "CLibMount",
            pkgConfig: "mount",
            providers: [.apt(["libmount-dev"])]
        ),
        // OpenSSL's libcrypto: SHA-256 of image blobs and layer streams (the layer store's image import).
        .systemLibrary(
            name: "CLibCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // libarchive: the tar reader and the gzip/zstd decompressors of layer application, the tar writer and
        // compressors of layer export (UnionMountStore's Archive/Tar*.swift only; the tests also use its writer to
        // craft archives).
        .systemLibrary(
            name: "CLibArchive",
            pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]
        ),
        .target(
            name: "UnionMount",
            dependencies: [
                "CUnionMountShim",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: [.define("ENABLE_MOCKING", .when(configuration: .debug))]
        ),
        // The layer store and the layer tools (whiteouts, trees, changes, merged views), on top of UnionMount:
        // a runtime that only mounts does not link them.
        .target(
            name: "UnionMountStore",
            dependencies: [
                "UnionMount",
                "CUnionMountShim",
                "CLibCrypto",
                "CLibArchive",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: [.define("ENABLE_MOCKING", .when(configuration: .debug))]
        ),
        // The parser properties the libFuzzer harnesses (Fuzz/) and FuzzCorpusTests check, written once.
        .target(
            name: "UnionMountFuzzChecks",
            dependencies: [
                "UnionMount",
                "UnionMountStore",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(
            name: "unionmount",
            dependencies: [
                "UnionMount",
                "UnionMountStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Examples/unionmount"
        ),
        // Small examples: a container rootfs from a layer list; the branch state of every union mount.
        .executableTarget(
            name: "assemble-rootfs",
            dependencies: [
                "UnionMount",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Examples/assemble-rootfs"
        ),
        .executableTarget(
            name: "union-mounts",
            dependencies: [
                "UnionMount",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Examples/union-mounts"
        ),
        // The same overlay mount+unmount cycle issued directly from C: the yardstick for unionmount-bench.
        .target(
            name: "CUnionMountBenchBaseline",
            dependencies: ["CUnionMountShim"],
            path: "Benchmarks/CBaseline",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        // What the benchmarks share, and the one private-mount-namespace check (the tests use it too).
        .target(
            name: "UnionMountBenchSupport",
            dependencies: ["UnionMount"],
            path: "Benchmarks/Support"
        ),
        // Library vs. direct system calls, mount+unmount cycles per layer count (run as root, private mount ns).
        .executableTarget(
            name: "unionmount-bench",
            dependencies: [
                "UnionMount",
                "CUnionMountBenchBaseline",
                "UnionMountBenchSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Benchmarks/MountBenchmark"
        ),
        // Mount-table reading on 10,000 real mounts: parse vs read() vs libmount, union-mount listing, one lookup.
        .executableTarget(
            name: "unionmount-table-bench",
            dependencies: [
                "UnionMount",
                "CLibMount",
                "UnionMountBenchSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Benchmarks/MountTableBenchmark"
        ),
        // The layer store's mount+unmount of a container against the bare mount of the same layers.
        .executableTarget(
            name: "unionmount-store-bench",
            dependencies: [
                "UnionMount",
                "UnionMountStore",
                "UnionMountBenchSupport",
                "CUnionMountBenchBaseline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Benchmarks/StoreBenchmark"
        ),
        // Layer application from gzip tars against GNU tar -x (the floor) and umoci unpack of the same image.
        .executableTarget(
            name: "unionmount-import-bench",
            dependencies: [
                "UnionMount",
                "UnionMountStore",
                "UnionMountBenchSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Benchmarks/ImportBenchmark"
        ),
        // A new mapping for a 128-layer image: idmapped layers against chown-copying the layers.
        .executableTarget(
            name: "unionmount-idmap-bench",
            dependencies: [
                "UnionMount",
                "UnionMountStore",
                "UnionMountBenchSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Benchmarks/IDMapBenchmark"
        ),
        .testTarget(
            name: "UnionMountTests",
            dependencies: [
                "UnionMount",
                "UnionMountStore",
                "UnionMountBenchSupport",
                "UnionMountFuzzChecks",
                "CLibMount",
                "CLibArchive",
                "CUnionMountShim",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: [.define("ENABLE_MOCKING", .when(configuration: .debug))]
        ),
    ],
    swiftLanguageModes: [.v6]
)
