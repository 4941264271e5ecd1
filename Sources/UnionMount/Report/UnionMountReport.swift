import SystemPackage

/// The state of one branch of a union mount.
public struct BranchState: Sendable, Hashable, Codable {
    /// What the branch is for.
    public enum Role: String, Sendable, Hashable, Codable {
        /// The writable layer (overlay `upperdir`, aufs `rw` branch).
        case upper
        /// A read-only layer.
        case lower
        /// An overlay data-only layer.
        case data
    }

    /// Position in the union, 0 = top (overlay: the upper layer when there is one).
    public var index: Int
    /// The branch root as the mount table shows it (relative if the mounter gave it relative).
    public var path: FilePath
    /// Upper, lower or data.
    public var role: Role
    /// `rw`, `ro` or `rr` (overlay: `rw` for the upper layer, `ro` otherwise).
    public var permission: AufsBranch.Permission
    /// aufs branch attributes in the order aufs prints them (`["wh"]`); empty for overlay.
    public var attributes: [String]
    /// The aufs branch id (`/sys/fs/aufs/si_<id>/brid<N>`): stable across renumbering while the mount lives (ids
    /// start at 64 and wrap around, so they are reused); nil for overlay.
    public var id: Int?
    /// Whether the path exists now and is a directory (false for a relative path that cannot be resolved).
    public var exists: Bool
    /// Whether the layer is seen through an idmapped mount: one of UnionMount's idmapped layers (its mount record
    /// says), or a layer on an idmapped mount the table lists (statmount(2) `MOUNT_ATTR_IDMAP`, or mountinfo's
    /// `idmapped`). Always false for an upper layer and for aufs.
    public var isIDMapped: Bool
    /// An idmapped layer's mapping where it is known: the ranges or the user namespace file of an
    /// ``OverlaySpec/idMapping`` (from the mount record: overlay's own layer clones are in no table), or the maps
    /// statmount(2) gives of the layer's mount (`STATMOUNT_MNT_UIDMAP`/`GIDMAP`, Linux 6.15+); nil otherwise.
    public var idMapping: IDMapping?

    /// Creates a branch state.
    public init(
        index: Int, path: FilePath, role: Role, permission: AufsBranch.Permission, attributes: [String] = [],
        id: Int? = nil, exists: Bool, isIDMapped: Bool = false, idMapping: IDMapping? = nil
    ) {
        self.index = index
        self.path = path
        self.role = role
        self.permission = permission
        self.attributes = attributes
        self.id = id
        self.exists = exists
        self.isIDMapped = isIDMapped || idMapping != nil
        self.idMapping = idMapping
    }

    private enum CodingKeys: String, CodingKey {
        case index, path, role, permission, attributes, id, exists, isIDMapped = "idmapped", idMapping
    }

    /// Decodes the JSON form of ``encode(to:)``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        index = try container.decode(Int.self, forKey: .index)
        path = try container.decodePath(forKey: .path)
        role = try container.decode(Role.self, forKey: .role)
        permission = try container.decode(AufsBranch.Permission.self, forKey: .permission)
        attributes = try container.decode([String].self, forKey: .attributes)
        id = try container.decodeIfPresent(Int.self, forKey: .id)
        exists = try container.decode(Bool.self, forKey: .exists)
        idMapping = try container.decodeIfPresent(IDMapping.self, forKey: .idMapping)
        isIDMapped = try container.decodeIfPresent(Bool.self, forKey: .isIDMapped) ?? (idMapping != nil)
    }

    /// Encodes `index`, `path`, `role`, `permission`, `attributes`, `id` (number or null), `exists`, `idmapped`,
    /// and `idMapping` where it is known.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(index, forKey: .index)
        try container.encode(path: path, forKey: .path)
        try container.encode(role, forKey: .role)
        try container.encode(permission, forKey: .permission)
        try container.encode(attributes, forKey: .attributes)
        try container.encode(id, forKey: .id)
        try container.encode(exists, forKey: .exists)
        try container.encode(isIDMapped, forKey: .isIDMapped)
        try container.encodeIfPresent(idMapping, forKey: .idMapping)
    }
}

/// The branch state of one union mount (overlay, aufs or fuse-overlayfs), from the mount table and, for aufs,
/// `/sys/fs/aufs/si_<id>/`.
public struct UnionMountReport: Sendable, Hashable, Codable {
    /// aufs facts that have no overlay counterpart.
    public struct Aufs: Sendable, Hashable, Codable {
        /// The superblock id (`si=` in the options, `/sys/fs/aufs/si_<si>`).
        public var si: String
        /// The external inode number file (`xi_path`), if any.
        public var xinoPath: FilePath?

        /// Creates aufs facts.
        public init(si: String, xinoPath: FilePath?) {
            self.si = si
            self.xinoPath = xinoPath
        }

        private enum CodingKeys: String, CodingKey { case si, xinoPath }

        /// Decodes `si` and `xinoPath`.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            si = try container.decode(String.self, forKey: .si)
            xinoPath = try container.decodePathIfPresent(forKey: .xinoPath)
        }

        /// Encodes `si` and `xinoPath` (string or null).
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(si, forKey: .si)
            try container.encode(path: xinoPath, forKey: .xinoPath)
        }
    }

    /// The mount id (mountinfo field 1; the old, reusable id also with statmount).
    public var mountID: Int
    /// The parent mount id.
    public var parentID: Int
    /// Where it is mounted.
    public var mountPoint: FilePath
    /// `overlay`, `aufs` or `fuse.fuse-overlayfs`.
    public var fsType: String
    /// The source field.
    public var source: String
    /// Read-only per mount or per superblock.
    public var readOnly: Bool
    /// Every branch, top first.
    public var branches: [BranchState]
    /// overlay's work directory.
    public var workdir: FilePath?
    /// The remaining options, in order (neither branches nor `ro`/`rw`).
    public var options: [String]
    /// aufs facts, nil for other types.
    public var aufs: Aufs?

    /// Creates a report.
    public init(
        mountID: Int, parentID: Int, mountPoint: FilePath, fsType: String, source: String, readOnly: Bool,
        branches: [BranchState], workdir: FilePath?, options: [String], aufs: Aufs?
    ) {
        self.mountID = mountID
        self.parentID = parentID
        self.mountPoint = mountPoint
        self.fsType = fsType
        self.source = source
        self.readOnly = readOnly
        self.branches = branches
        self.workdir = workdir
        self.options = options
        self.aufs = aufs
    }

    private enum CodingKeys: String, CodingKey {
        case mountID, parentID, mountPoint, fsType, source, readOnly, branches, workdir, options, aufs
    }

    /// Decodes the JSON contract of ``encode(to:)``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        mountID = try container.decode(Int.self, forKey: .mountID)
        parentID = try container.decode(Int.self, forKey: .parentID)
        mountPoint = try container.decodePath(forKey: .mountPoint)
        fsType = try container.decode(String.self, forKey: .fsType)
        source = try container.decode(String.self, forKey: .source)
        readOnly = try container.decode(Bool.self, forKey: .readOnly)
        branches = try container.decode([BranchState].self, forKey: .branches)
        workdir = try container.decodePathIfPresent(forKey: .workdir)
        options = try container.decode([String].self, forKey: .options)
        aufs = try container.decodeIfPresent(Aufs.self, forKey: .aufs)
    }

    /// Encodes the stable JSON contract: `mountID`, `parentID`, `mountPoint`, `fsType`, `source`, `readOnly`,
    /// `branches`, `workdir` (string or null), `options`, `aufs` (object or null). Paths that are not UTF-8
    /// are `{"base64": …}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(mountID, forKey: .mountID)
        try container.encode(parentID, forKey: .parentID)
        try container.encode(path: mountPoint, forKey: .mountPoint)
        try container.encode(fsType, forKey: .fsType)
        try container.encode(source, forKey: .source)
        try container.encode(readOnly, forKey: .readOnly)
        try container.encode(branches, forKey: .branches)
        try container.encode(path: workdir, forKey: .workdir)
        try container.encode(options, forKey: .options)
        try container.encode(aufs, forKey: .aufs)
    }
}
