import SystemPackage

/// The one mount(2) call of an overlay mount by option string (``MountStrategy/legacy``), kept as the
/// validated spec it comes from instead of as a ``MountStep`` with its data bytes.
///
/// A plan the planner makes holds this recipe; ``MountPlan/steps`` builds the step (and its data) when asked,
/// and the executor writes the same data straight into a stack buffer and calls mount(2): no allocation per
/// mount. Both write it with ``OverlaySpec/writeLegacyOptionString(relativeTo:into:)``.
struct LegacyMountRecipe: Sendable {
    /// The spec as planned (validated; `userxattr` already added where the planner adds it).
    var spec: OverlaySpec
    /// The absolute mount point.
    var target: FilePath
    /// The mount(2) flags.
    var flags: MountFlags
    /// How many bytes the option string has (at most ``OverlaySpec/legacyOptionLimit``).
    var length: Int

    /// The step, as ``MountPlan/steps`` shows it.
    var step: MountStep {
        let data: [UInt8]
        do {
            data = try spec.validatedLegacyOptionString()
        } catch {
            preconditionFailure("the planner wrote this option string once already: \(error)")
        }
        return .mount(
            source: spec.source, target: target, filesystemType: "overlay", flags: flags, data: data,
            workingDirectory: nil)
    }

    /// Runs `body` with the option string NUL-terminated in a buffer on the stack (one page at most, like the C
    /// caller's `char data[4096]`; `withUnsafeTemporaryAllocation` would take the heap above 1 KiB).
    func withData<R>(_ body: (UnsafeRawPointer) -> R) -> R {
        precondition(length <= OverlaySpec.legacyOptionLimit, "legacy option string over one page")
        if length < 1024 {
            return withUnsafeTemporaryAllocation(byteCount: length + 1, alignment: 1) { write(into: $0, body) }
        }
        var page = InlineArray<4096, UInt8>(repeating: 0)
        var span = page.mutableSpan
        return span.withUnsafeMutableBytes { write(into: $0, body) }
    }

    /// Writes the option string and its NUL at the start of `buffer`, then runs `body` with it.
    private func write<R>(into buffer: UnsafeMutableRawBufferPointer, _ body: (UnsafeRawPointer) -> R) -> R {
        var sink = LegacyOptionBuffer(buffer: UnsafeMutableRawBufferPointer(rebasing: buffer[..<length]))
        do {
            try spec.writeLegacyOptionString(relativeTo: nil, into: &sink)
        } catch {
            preconditionFailure("the planner wrote this option string once already: \(error)")
        }
        precondition(sink.count == length, "legacy option string changed length since planning")
        buffer[length] = 0
        return body(UnsafeRawPointer(buffer.baseAddress!))
    }
}
