// swift-tools-version: 6.0
// libFuzzer harnesses for UnionMount's parsers of untrusted input. Kept out of the main package: build and run
// them with `Fuzz/run` (see Fuzz/README.md). The targets are built with `-sanitize=fuzzer,address` (libFuzzer and
// coverage instrumentation) and `-parse-as-library`. `fuzz-aufs-options` also reaches the aufs sysfs decoders
// through `@testable import`, so everything is built with `-enable-testing`.
import PackageDescription

let package = Package(
    name: "UnionMountFuzz",
    dependencies: [
        .package(name: "UnionMount", path: "..")
    ],
    targets: [
        // The libFuzzer driver glue; the checks themselves are the main package's `UnionMountFuzzChecks`, which
        // Tests/UnionMountTests/FuzzCorpusTests.swift runs too.
        .target(
            name: "FuzzSupport",
            dependencies: [
                "CFuzzerDriver",
                .product(name: "UnionMount", package: "UnionMount"),
                .product(name: "UnionMountFuzzChecks", package: "UnionMount"),
            ]
        ),
        // The declaration of libFuzzer's LLVMFuzzerRunDriver.
        .target(name: "CFuzzerDriver"),
        .executableTarget(
            name: "fuzz-mountinfo",
            dependencies: ["FuzzSupport"]
        ),
        .executableTarget(
            name: "fuzz-proc-mounts",
            dependencies: ["FuzzSupport"]
        ),
        .executableTarget(
            name: "fuzz-overlay-options",
            dependencies: ["FuzzSupport"]
        ),
        // Layer application (libarchive's tar, gzip and zstd readers under LayerApplier) into a scratch directory.
        .executableTarget(
            name: "fuzz-layer-archive",
            dependencies: ["FuzzSupport"]
        ),
        .executableTarget(
            name: "fuzz-image-json",
            dependencies: ["FuzzSupport"]
        ),
        // docker save / oci-archive tars: TarFileMembers' index and member reads under DockerArchive.
        .executableTarget(
            name: "fuzz-docker-archive",
            dependencies: ["FuzzSupport"]
        ),
        .executableTarget(
            name: "fuzz-aufs-options",
            dependencies: ["FuzzSupport", .product(name: "UnionMount", package: "UnionMount")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
