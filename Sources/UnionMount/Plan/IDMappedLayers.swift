import SystemPackage

/// How a plan idmaps the layers of a spec with an ``OverlaySpec/idMapping``.
///
/// Either way each lower and data-only layer becomes a detached copy of its mount (open_tree(2)
/// `OPEN_TREE_CLONE`) idmapped through the plan's user namespace (mount_setattr(2) `MOUNT_ATTR_IDMAP`); overlay
/// then takes a private clone of each layer's mount, so nothing but the union holds the trees once it is
/// mounted, and unmounting the union releases them.
public enum IDMappedLayerRung: String, Sendable, Hashable, Codable, CaseIterable {
    /// Each tree is handed to overlay as a `lowerdir+`/`datadir+` descriptor (fsconfig(2) `FSCONFIG_SET_FD`), and
    /// the descriptors are closed once the union is mounted: no path, no directory, nothing to clean up. Linux 6.15+
    /// (``KernelFeatures/detachedLayerTrees``).
    case detachedTrees = "detached-trees"
    /// Each tree is attached (move_mount(2)) at a numbered directory of a private scratch tmpfs mounted for the plan
    /// in the attachment directory (so no attachment propagates to other mount namespaces), the overlay is mounted
    /// over those paths by the usual ladder, and the tmpfs is detached with everything on it (one umount2(2)
    /// `MNT_DETACH`) and its directory removed right after. Linux 5.19+ (``KernelFeatures/idmappedLayers``).
    case attachedTrees = "attached-trees"
}

extension OverlayPlanner {
    /// The plan of a spec with an id mapping: the user namespace step, then either the new-mount-API steps with
    /// each layer's `SET_STRING` replaced by its tree (``IDMappedLayerRung/detachedTrees``), or the trees attached
    /// under `attachments`, the plan of the spec over those paths, and their detaching
    /// (``IDMappedLayerRung/attachedTrees``).
    func idMappedPlan(
        _ spec: OverlaySpec, _ mapping: IDMapping, target: FilePath, flags: MountFlags,
        strategy forced: MountStrategy?
    ) throws(UnionMountError) -> MountPlan {
        func refuse(_ message: String, input: String = "idMapping") -> UnionMountError {
            UnionMountError(code: .unsupported, message: message, input: input, spec: .overlay(spec))
        }
        if forced == .fuseOverlayfs || (!features.overlay && forced == nil) {
            throw refuse("idmapped layers need the kernel's overlay; fuse-overlayfs cannot take idmapped mounts")
        }
        guard features.idmappedLayers else {
            throw refuse(
                features.idmappedMounts
                    ? "idmapped layers need overlay over idmapped mounts (Linux 5.19+)"
                    : "idmapped layers need mount_setattr(2) (Linux 5.12+) and overlay over idmapped mounts (5.19+)")
        }
        let userNamespace: MountStep =
            switch mapping {
            case .ranges(let uids, let gids): .createUserNamespace(uids: uids, gids: gids)
            case .userNamespace(let path): .openUserNamespace(path: absolute(path))
            }
        let spec = absolutized(spec)
        let layers = spec.lowerDirectories + spec.dataDirectories
        var plain = spec
        plain.idMapping = nil
        if features.detachedLayerTrees && (forced == nil || forced == .newMountAPI) {
            // The new-mount-API steps of the spec, each layer's step (lower layers, then data-only layers, in
            // order) replaced by its tree.
            var steps: [MountStep] = [userNamespace]
            steps.reserveCapacity(layers.count * 3 + spec.options.keyValues.count + 8)
            var next = 0
            for step in try newMountAPISteps(plain, target, flags).get() {
                switch step {
                case .setString(let key, _) where key == "lowerdir+" || key == "datadir+",
                    .setFileDescriptor(let key, _) where key == "lowerdir+" || key == "datadir+":
                    steps += [.openTree(path: layers[next]), .setIDMap, .setTree(key: key)]
                    next += 1
                default: steps.append(step)
                }
            }
            return MountPlan(strategy: .newMountAPI, spec: .overlay(spec), steps: steps, idMappedLayers: .detachedTrees)
        }
        let directory = attachments.appending(Self.attachmentName())
        let points = layers.indices.map { directory.appending(String($0)) }
        var attached = plain
        attached.lowerDirectories = Array(points[..<spec.lowerDirectories.count])
        attached.dataDirectories = Array(points[spec.lowerDirectories.count...])
        let union = try plan(attached, target: target, flags: flags, strategy: forced)
        var steps: [MountStep] = [userNamespace, .makeDirectory(path: directory), .mountAttachments(target: directory)]
        steps.reserveCapacity(layers.count * 4 + union.steps.count + 5)
        for (layer, point) in zip(layers, points) {
            steps += [.makeDirectory(path: point), .openTree(path: layer), .setIDMap, .attachTree(target: point)]
        }
        steps += union.steps
        // One lazy detach of the scratch tmpfs takes every attachment below it down with it (one umount2(2), where
        // a detach per layer cost 128 of them, each waiting for an RCU grace period).
        steps += [.detach(target: directory), .removeDirectory(path: directory)]
        return MountPlan(strategy: union.strategy, spec: .overlay(spec), steps: steps, idMappedLayers: .attachedTrees)
    }

    /// A name no other plan of this or another process uses: the pid and 64 random bits.
    private static func attachmentName() -> String {
        "\(ProcessFacts.processID)-\(String(UInt64.random(in: .min ... .max), radix: 16))"
    }
}
