import SystemPackage
import UnionMount

/// What ``LayerStore/repair()`` did and what it found but left alone.
public struct RepairReport: Sendable, Hashable, Codable {
    /// Each repair made, in order, as a sentence (`"removed the half-created layer staging/base.1a2b…"`).
    public var actions: [String] = []
    /// What is wrong and was not changed (a damaged record, a mount below the trash), as sentences.
    public var problems: [String] = []

    /// An empty report.
    public init() {}

    /// Whether nothing needed repair and nothing is wrong.
    public var isClean: Bool { actions.isEmpty && problems.isEmpty }
}

extension LayerStore {
    /// Brings the store back to a consistent state after crashes, under the store lock; ``init(opening:features:)``
    /// runs it on every open.
    ///
    /// In order: removes half-created layers and containers in `staging/` whose builder is gone (its flock(2) is
    /// free), half-removed ones in `trash/` whose deleter is gone, and temporary record files; finishes what a
    /// killed process left pending on a container (a mount whose count was not written is unmounted again, an
    /// unmount is completed); sets each container's count to what the mount table shows (a count for a mount
    /// that is gone becomes 0, a mount the store did not count becomes 1); recreates missing mount directories;
    /// detaches idmapped layer trees a killed mount left attached in `idmapped/` and removes their directories;
    /// reports images whose layers or config are missing (they are kept: importing the image again restores
    /// what is missing, and a record is never lost to a repair) and removes image blobs no record names (a config
    /// written by an import killed before its record); removes init layers whose container is gone.
    /// Nothing is ever deleted below a mount point (see `StoreFiles.removeTree(_:)`): such debris is reported in
    /// ``RepairReport/problems`` instead.
    @discardableResult
    public func repair() throws(UnionMountError) -> RepairReport {
        try locked { () throws(UnionMountError) -> RepairReport in
            var report = RepairReport()
            try removeDebris(&report)
            try removeLeftoverAttachments(&report)
            try reconcileContainers(&report)
            try reconcileImages(&report)
            try removeOrphanInitLayers(&report)
            return report
        }
    }

    /// The store's invariants that do not hold now, as sentences (empty when all hold); reads only.
    ///
    /// Checked: no mount or unmount is pending; no unlocked entry is left in `staging/` or `trash/`; every
    /// layer record is readable and its parent exists; every image record is readable, its layers form its
    /// chain and its config is stored; every container's chain is complete, its directories exist, and its
    /// count is positive exactly when its mount point is mounted.
    public func check() throws(UnionMountError) -> [String] {
        try locked { () throws(UnionMountError) -> [String] in
            var problems: [String] = []
            for name in try StoreFiles.names(in: stagingDirectory)
            where try !isLive(stagingDirectory.appending(name: name)) {
                problems.append("staging/\(name.readable) is left over")
            }
            for name in try StoreFiles.names(in: trashDirectory) where try !isLive(trashDirectory.appending(name: name))
            {
                problems.append("trash/\(name.readable) is left over")
            }
            for name in try StoreFiles.names(in: layersDirectory) {
                let id = String(decoding: name, as: UTF8.self)
                do throws(UnionMountError) {
                    guard let layer = try readLayer(id) else {
                        problems.append("layers/\(name.readable) has no layer.conf")
                        continue
                    }
                    if let parent = layer.parent, try readLayer(parent) == nil {
                        problems.append("the parent \(parent) of layer \(id) is missing")
                    }
                    if !StoreFiles.isDirectory(layer.directory) { problems.append("layer \(id) has no diff directory") }
                } catch {
                    problems.append("layer \(name.readable): \(error.message)")
                }
            }
            for name in try attachmentNames() { problems.append("idmapped/\(name.readable) is a leftover attachment") }
            problems += try imageProblems()
            for id in try identifiers(in: containersDirectory) {
                guard let (container, mountState) = try readContainerRecords(id) else { continue }
                do throws(UnionMountError) {
                    let chain = try container.layer.map { (top) throws(UnionMountError) in try self.chain(top).map(\.id)
                    }
                    if (chain ?? []) != container.layers {
                        problems.append("container \(container.id) records a chain its layers do not form")
                    }
                } catch {
                    problems.append("container \(container.id): \(error.message)")
                }
                for directory in [container.upperDirectory, container.workDirectory, container.mergedDirectory]
                where !StoreFiles.isDirectory(directory) {
                    problems.append("container \(container.id) lacks \(directory.readable)")
                }
                switch mountState {
                case .success(let state):
                    if let pending = state.pending {
                        problems.append("container \(container.id) has a pending \(pending.rawValue)")
                    }
                case .failure(let error):
                    problems.append("container \(container.id): \(error.message)")
                }
                let mounted = MountTable.isMountPoint(container.mergedDirectory)
                if mounted != (container.mountCount > 0) {
                    problems.append(
                        "container \(container.id) has count \(container.mountCount) but is \(mounted ? "" : "not ")mounted"
                    )
                }
            }
            return problems
        }
    }

    // MARK: Implementation

    private func removeDebris(_ report: inout RepairReport) throws(UnionMountError) {
        for name in try StoreFiles.names(in: stagingDirectory) {
            let entry = stagingDirectory.appending(name: name)
            guard try !isLive(entry) else { continue }
            remove(entry, as: "the half-created staging/\(name.readable)", &report)
        }
        for name in try StoreFiles.names(in: trashDirectory) {
            guard try !isLive(trashDirectory.appending(name: name)) else { continue }
            remove(trashDirectory.appending(name: name), as: "the half-removed trash/\(name.readable)", &report)
        }
        var recordDirectories = [root, imagesDirectory, imageBlobsDirectory]
        for name in try StoreFiles.names(in: containersDirectory) {
            recordDirectories.append(containersDirectory.appending(name: name))
        }
        for directory in recordDirectories {
            for name in try StoreFiles.names(in: directory) where name.reversed().starts(with: ".tmp".utf8.reversed()) {
                remove(
                    directory.appending(name: name),
                    as: "the temporary record \(directory.appending(name: name).readable)", &report)
            }
        }
    }

    /// The entries of `idmapped/` (none when it does not exist). Under the store lock no mount is running, so every
    /// entry is a killed mount's: each mount of an idmapped container makes its directory there and removes it
    /// before the lock is released.
    private func attachmentNames() throws(UnionMountError) -> [[UInt8]] {
        let directory = root.appending(Self.attachmentsName)
        return StoreFiles.exists(directory) ? try StoreFiles.names(in: directory) : []
    }

    private func removeLeftoverAttachments(_ report: inout RepairReport) throws(UnionMountError) {
        let names = try attachmentNames()
        guard !names.isEmpty else { return }
        let directory = root.appending(Self.attachmentsName)
        let attached = try MountTable.entries(source: .mountinfo).map(\.mountPoint).filter {
            $0 != directory && $0.starts(with: directory)
        }
        // Deepest first; umount2(2) of a tree attachment (nothing is mounted on it, nothing keeps it busy).
        for point in attached.sorted(by: { $0.components.count > $1.components.count }) {
            var options = UnmountOptions()
            options.detachWhenBusy = true
            do {
                _ = try mounter.unmount(point, options: options)
                report.actions.append("detached the leftover idmapped layer attachment \(point.readable)")
            } catch {
                report.problems.append(
                    "cannot detach the idmapped layer attachment \(point.readable): \(error.message)")
            }
        }
        for name in names {
            remove(directory.appending(name: name), as: "the leftover attachments idmapped/\(name.readable)", &report)
        }
    }

    private func reconcileContainers(_ report: inout RepairReport) throws(UnionMountError) {
        for name in try StoreFiles.names(in: containersDirectory) {
            let id = String(decoding: name, as: UTF8.self)
            let container: StoreContainer
            let mountState: Result<StoreMountState, UnionMountError>
            do {
                guard let read = try readContainerRecords(id) else {
                    report.problems.append("containers/\(name.readable) has no container.conf")
                    continue
                }
                (container, mountState) = read
            } catch {
                report.problems.append("container \(name.readable): \(error.message)")
                continue
            }
            for directory in [container.upperDirectory, container.workDirectory, container.mergedDirectory]
            where !StoreFiles.exists(directory) {
                try StoreFiles.makeDirectory(directory)
                report.actions.append("recreated \(directory.readable)")
            }
            var state: StoreMountState?
            switch mountState {
            case .success(let read): state = read
            case .failure(let error):
                report.problems.append("the mount record of \(id) was unreadable and is rebuilt: \(error.message)")
            }
            var mounted = MountTable.isMountPoint(container.mergedDirectory)
            var count = state?.count ?? 0
            switch state?.pending {
            case .mount?:
                if mounted { try unmountUnion(container, lazy: true) }
                (mounted, count) = (false, 0)
                report.actions.append("undid the interrupted mount of \(id)")
            case .unmount?:
                if mounted { try unmountUnion(container, lazy: true) }
                (mounted, count) = (false, 0)
                report.actions.append("finished the interrupted unmount of \(id)")
            case nil:
                break
            }
            if count > 0 && !mounted {
                report.actions.append("reset the stale count \(count) of \(id), which is not mounted")
                count = 0
            } else if count == 0 && mounted {
                report.actions.append("counted the mount of \(id) that had no count")
                count = 1
            }
            let repaired = StoreMountState(count: count)
            if repaired != state { try repaired.write(to: mountsFile(id)) }
        }
    }

    private func reconcileImages(_ report: inout RepairReport) throws(UnionMountError) {
        var named: Set<String> = []
        for name in try StoreFiles.names(in: imagesDirectory) where Self.isImageRecordName(name) {
            let file = imagesDirectory.appending(name: name)
            let image: StoreImage
            do {
                guard let read = try readImage(file: file) else { continue }
                image = read
            } catch {
                report.problems.append("image record images/\(name.readable): \(error.message)")
                continue
            }
            named.insert(image.configDigest.hex)
            if let manifest = image.manifestDigest { named.insert(manifest.hex) }
            var missing: [String] = []
            for id in image.layers where try readLayer(id) == nil { missing.append(id) }
            if !missing.isEmpty {
                report.problems.append(
                    "the image \(image.name) lacks its layers \(missing.joined(separator: ", ")): import it again to "
                        + "restore them")
            }
            if !StoreFiles.exists(imageBlobsDirectory.appending(image.configDigest.hex)) {
                report.problems.append("the image \(image.name) lacks its config \(image.configDigest)")
            }
        }
        for name in try StoreFiles.names(in: imageBlobsDirectory)
        where !named.contains(String(decoding: name, as: UTF8.self)) {
            remove(
                imageBlobsDirectory.appending(name: name),
                as: "the unreferenced image blob images/blobs/\(name.readable)",
                &report)
        }
    }

    /// What is wrong with the image records (see ``check()``).
    private func imageProblems() throws(UnionMountError) -> [String] {
        var problems: [String] = []
        for name in try StoreFiles.names(in: imagesDirectory) where Self.isImageRecordName(name) {
            let image: StoreImage
            do throws(UnionMountError) {
                guard let read = try readImage(file: imagesDirectory.appending(name: name)) else { continue }
                image = read
            } catch {
                problems.append("image record images/\(name.readable): \(error.message)")
                continue
            }
            do throws(UnionMountError) {
                let chain = try image.topLayer.map { (top) throws(UnionMountError) in try self.chain(top).map(\.id) }
                if (chain ?? []) != image.layers {
                    problems.append("image \(image.name) records a chain its layers do not form")
                }
            } catch {
                problems.append("image \(image.name): \(error.message)")
            }
            if !StoreFiles.exists(imageBlobsDirectory.appending(image.configDigest.hex)) {
                problems.append("image \(image.name) lacks its config \(image.configDigest)")
            }
        }
        return problems
    }

    private func removeOrphanInitLayers(_ report: inout RepairReport) throws(UnionMountError) {
        for layer in (try? layers()) ?? [] {
            guard let owner = layer.owner, try readContainer(owner) == nil else { continue }
            let users = try users(ofLayer: layer.id)
            guard users.isEmpty else {
                report.problems.append("the init layer \(layer.id) of the vanished container \(owner) is in use")
                continue
            }
            let trash = try moveToTrash(layerDirectory(layer.id), id: layer.id)
            defer { FileSystem.close(trash.lock) }
            remove(trash.path, as: "the init layer \(layer.id) of the vanished container \(owner)", &report)
        }
    }

    /// Removes `path`, recording the action, or the problem when it cannot be removed.
    private func remove(_ path: FilePath, as description: String, _ report: inout RepairReport) {
        do {
            try StoreFiles.removeTree(path)
            report.actions.append("removed \(description)")
        } catch {
            report.problems.append("cannot remove \(description): \(error.message)")
        }
    }

    /// Whether a staging or trash entry's owner (its builder or deleter) still holds its flock(2).
    private func isLive(_ entry: FilePath) throws(UnionMountError) -> Bool {
        guard let fd = try? FileSystem.open(entry, .readOnly, options: [.directory, .noFollow]) else { return false }
        defer { FileSystem.close(fd) }
        return (try? FileSystem.lock(fd, wait: false)) == false
    }
}
