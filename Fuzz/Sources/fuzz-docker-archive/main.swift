import FuzzSupport

/// The libFuzzer target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    trapOnFailure { () throws(FuzzFailure) in try FuzzChecks.dockerArchive(bytes) }
    return 0
}

/// The program's `main` (SwiftPM links it as `main`; see `runLibFuzzer`).
@_cdecl("fuzz_docker_archive_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzz)
}
