import SystemPackage
import UnionMount

extension LayerStore {
    /// Removes every image layer nothing uses: layers made by an image import (those with a
    /// ``StoreLayer/diffID``) that no image record, no container, no live mount and no other layer uses, down
    /// their chains (removing a top layer can leave its parent unused, which then goes too). Returns the removed
    /// ids, in the order removed (tops first).
    ///
    /// This is what clears the layers of an import that was killed (or failed to record) after some of its layers
    /// were committed: those layers are complete and a later import of the image reuses them, but until then no
    /// image names them. ``removeImage(named:)`` already frees the layers of the image it removes; prune is for
    /// what no image holds.
    ///
    /// Only image layers are pruned, by design: a layer made by ``createLayer(_:parent:populate:)``,
    /// ``importLayer(_:parent:from:format:)``, ``beginLayer(_:parent:)`` or ``commit(container:as:)`` is the
    /// caller's, kept until ``removeLayer(_:)``, whether or not anything uses it; init layers go with their
    /// container. A user layer built on an image layer keeps that layer (and its chain) alive.
    ///
    /// Under the store lock the unused layers are renamed into `trash/` (each rename a commit point), then deleted
    /// after the lock is released; a crash in between leaves trash that the next open removes.
    ///
    /// - Throws: `UnionMountError.Code.systemCallFailed` and what reading the records throws.
    @discardableResult
    public func prune() throws(UnionMountError) -> [String] {
        let (removed, trash) = try locked { () throws(UnionMountError) -> ([String], [TrashEntry]) in
            let layers = try self.layers()
            var used = Set(try images().flatMap(\.layers))
            for container in try containers() {
                used.formUnion(container.layers)
                if let layer = container.layer { used.insert(layer) }
            }
            var remaining = Dictionary(uniqueKeysWithValues: layers.map { ($0.id, $0) })
            var removed: [String] = []
            var trash: [TrashEntry] = []
            while true {
                let parents = Set(remaining.values.compactMap(\.parent))
                var pruned = false
                for layer in remaining.values.sorted(by: { $0.id < $1.id })
                where layer.diffID != nil && layer.owner == nil && !used.contains(layer.id)
                    && !parents.contains(layer.id)
                {
                    let directory = layerDirectory(layer.id)
                    guard try mountUsers(of: directory, branch: directory.appending("diff")).isEmpty else {
                        used.insert(layer.id)
                        continue
                    }
                    trash.append(try moveToTrash(directory, id: layer.id))
                    StoreFaultInjection.point("prune.layer-moved")
                    remaining[layer.id] = nil
                    removed.append(layer.id)
                    pruned = true
                }
                if !pruned { break }
            }
            return (removed, trash)
        }
        for entry in trash { try entry.remove() }
        return removed
    }
}
