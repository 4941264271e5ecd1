import FuzzSupport

/// The libFuzzer target: the strict JSON reader and the image metadata decoders (index, manifest, config,
/// `oci-layout`, `docker save` `manifest.json`), image names and platforms.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    trapOnFailure { () throws(FuzzFailure) in try FuzzChecks.imageJSON(bytes) }
    return 0
}

/// The program's `main` (SwiftPM links it as `main`; see `runLibFuzzer`).
@_cdecl("fuzz_image_json_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzz)
}
