import CFuzzerDriver
@_exported import UnionMountFuzzChecks

/// Runs libFuzzer on `argv` with `testOneInput` as the target.
///
/// SwiftPM links every executable target with `main` aliased to `<module>_main` (`--defsym main=…`), even one
/// compiled with `-parse-as-library` that has no top-level code, so libFuzzer's own `main` is not used: each
/// harness defines `<module>_main` with `@_cdecl` and calls this, which hands over to libFuzzer's documented
/// `LLVMFuzzerRunDriver`. Every libFuzzer flag (`-runs=`, `-dict=`, corpus directories, …) works as usual.
public func runLibFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, testOneInput)
}

/// The input as an array; libFuzzer may pass a null pointer for the empty input.
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Runs the shared checks (``FuzzChecks`` in `UnionMountFuzzChecks`) and traps on a broken property, so that
/// libFuzzer saves the input as a crash.
public func trapOnFailure(_ checks: () throws(FuzzFailure) -> Void) {
    do {
        try checks()
    } catch {
        fatalError(error.description)
    }
}
