import SystemPackage
import UnionMount

/// A layer made from a layer archive: the store's layer and what the archive held.
public struct AppliedLayer: Sendable, Hashable {
    /// The committed layer.
    public var layer: StoreLayer
    /// The archive's digests, sizes and counts.
    public var archive: LayerArchiveSummary

    /// A layer and its archive's summary.
    public init(layer: StoreLayer, archive: LayerArchiveSummary) {
        self.layer = layer
        self.archive = archive
    }
}

extension LayerStore {
    /// Creates a layer from an OCI/Docker layer tar (plain, gzip or zstd), applied in one pass straight into
    /// the store's whiteout form (see ``LayerApplier``), with the blob's digest, size and diff id computed on the
    /// way and checked against `expected`.
    ///
    /// The archive is applied into a staging layer (``beginLayer(_:parent:)``), which is committed only when every
    /// entry was applied and every digest matches; on any error it is removed and the store is as before (a
    /// process killed meanwhile leaves a staging entry that the next open removes).
    ///
    /// - Parameters:
    ///   - archive: the blob.
    ///   - id: the new layer's id; nil for a random one.
    ///   - parent: the layer it stacks on; nil for a base layer.
    ///   - expected: the digests and size the image gives for the blob.
    ///   - limits: how much the archive may hold.
    ///   - ownership: who owns the files (by default the archive's owners when this process is root in its user
    ///     namespace, else the caller).
    /// - Throws: `UnionMountError.Code.malformedInput` naming the layer and the entry for hostile or broken
    ///   content and for a digest or size mismatch; `UnionMountError.Code.systemCallFailed`; what
    ///   ``beginLayer(_:parent:)`` and ``LayerBuilder/commit()`` throw.
    @discardableResult
    public func applyLayer(
        archive: FilePath, id: String? = nil, parent: String? = nil,
        expected: LayerArchiveExpectation = LayerArchiveExpectation(),
        limits: LayerArchiveLimits = LayerArchiveLimits(), ownership: LayerApplier.Ownership? = nil
    ) throws(UnionMountError) -> AppliedLayer {
        let builder = try beginLayer(id, parent: parent)
        do {
            var applier = LayerApplier(
                whiteoutFormat: whiteoutFormat, limits: limits, expectation: expected, ownership: ownership,
                features: mounter.features)
            applier.lowerDirectories = try layerDirectories(from: parent)
            let summary = try applier.apply(archive: archive, into: builder.directory)
            StoreFaultInjection.point("apply-layer.applied")
            return AppliedLayer(layer: try builder.commit(), archive: summary)
        } catch {
            try? builder.abandon()
            throw error
        }
    }
}
