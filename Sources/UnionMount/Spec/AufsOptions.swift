import SystemPackage

/// aufs mount options as typed values (aufs6 `aufs_fsctx_paramspec`, `aufs.5`).
///
/// `nil` means "not given": aufs' default applies.
public struct AufsOptions: Sendable, Hashable, Codable {
    /// `xino=<path>` or `noxino`.
    public enum ExternalInodeNumbers: Sendable, Hashable, Codable {
        /// `xino=<path>`: the external inode number table file.
        case path(FilePath)
        /// `noxino`.
        case disabled

        private enum CodingKeys: String, CodingKey { case path, disabled }

        /// Decodes `{"path": …}` or `{"disabled": true}`.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if let path = try container.decodePathIfPresent(forKey: .path) {
                self = .path(path)
            } else {
                self = .disabled
            }
        }

        /// Encodes `{"path": …}` or `{"disabled": true}`.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .path(let path): try container.encode(path: path, forKey: .path)
            case .disabled: try container.encode(true, forKey: .disabled)
            }
        }
    }

    /// `udba=`: how aufs notices changes made directly on branches.
    public enum UserDirectBranchAccess: String, Sendable, Hashable, Codable, CaseIterable {
        /// `none`.
        case none
        /// `reval` (default).
        case reval
        /// `notify` (needs CONFIG_AUFS_HNOTIFY).
        case notify
    }

    /// `create=`: the policy that picks the branch for new files.
    public enum CreatePolicy: Sendable, Hashable, Codable {
        /// `tdp` (default): top-down parent.
        case topDownParent
        /// `rr`: round robin.
        case roundRobin
        /// `mfs[:sec]`: most free space.
        case mostFreeSpace(seconds: Int?)
        /// `tdmfs:wmark[:sec]`.
        case topDownMostFreeSpace(lowWatermark: Int, seconds: Int?)
        /// `mfsrr:wmark[:sec]`.
        case mostFreeSpaceRoundRobin(lowWatermark: Int, seconds: Int?)
        /// `pmfs[:sec]`.
        case parentMostFreeSpace(seconds: Int?)
        /// `pmfsrr:wmark[:sec]`.
        case parentMostFreeSpaceRoundRobin(lowWatermark: Int, seconds: Int?)
    }

    /// `cpup=`: the policy that picks the branch for copy-up.
    public enum CopyUpPolicy: String, Sendable, Hashable, Codable, CaseIterable {
        /// `tdp` (default).
        case topDownParent = "tdp"
        /// `bup`: bottom-up parent.
        case bottomUpParent = "bup"
        /// `bu`: bottom-up.
        case bottomUp = "bu"
    }

    /// `diropq=`: when a directory is made opaque.
    public enum OpaqueDirectories: String, Sendable, Hashable, Codable, CaseIterable {
        /// `w` (default): when whiteouted.
        case whenWhiteouted = "w"
        /// `a`: always.
        case always = "a"
    }

    /// `xino=` / `noxino`.
    public var externalInodeNumbers: ExternalInodeNumbers?
    /// `trunc_xino` (`true`) / `notrunc_xino` (`false`).
    public var truncateXino: Bool?
    /// `udba=`.
    public var userDirectBranchAccess: UserDirectBranchAccess?
    /// `dio` / `nodio`.
    public var directIO: Bool?
    /// `dirperm1` / `nodirperm1`.
    public var directoryPermissionFromTopOnly: Bool?
    /// `plink` / `noplink`.
    public var pseudoLinks: Bool?
    /// `shwh` / `noshwh`.
    public var showWhiteouts: Bool?
    /// `create=`.
    public var createPolicy: CreatePolicy?
    /// `cpup=`.
    public var copyUpPolicy: CopyUpPolicy?
    /// `diropq=`.
    public var opaqueDirectories: OpaqueDirectories?
    /// `dirwh=N`.
    public var directoryWhiteoutThreshold: Int?
    /// `rdcache=N` (seconds, at most 3600).
    public var readdirCacheSeconds: Int?
    /// `rdblk=N`.
    public var readdirBlockSize: Int?
    /// `rdhash=N`.
    public var readdirHashSize: Int?
    /// `sum` / `nosum`.
    public var sumFreeSpace: Bool?
    /// `warn_perm` / `nowarn_perm`.
    public var warnPermission: Bool?
    /// `verbose` / `noverbose`.
    public var verbose: Bool?
    /// `dirren` / `nodirren`.
    public var directoryRename: Bool?
    /// Options passed through unchanged, after the typed ones.
    public var additional: [OverlayOptions.RawOption] = []

    /// Creates options; every option starts at "not given".
    public init(
        externalInodeNumbers: ExternalInodeNumbers? = nil,
        truncateXino: Bool? = nil,
        userDirectBranchAccess: UserDirectBranchAccess? = nil,
        directIO: Bool? = nil,
        directoryPermissionFromTopOnly: Bool? = nil,
        pseudoLinks: Bool? = nil,
        showWhiteouts: Bool? = nil,
        createPolicy: CreatePolicy? = nil,
        copyUpPolicy: CopyUpPolicy? = nil,
        opaqueDirectories: OpaqueDirectories? = nil,
        directoryWhiteoutThreshold: Int? = nil,
        readdirCacheSeconds: Int? = nil,
        readdirBlockSize: Int? = nil,
        readdirHashSize: Int? = nil,
        sumFreeSpace: Bool? = nil,
        warnPermission: Bool? = nil,
        verbose: Bool? = nil,
        directoryRename: Bool? = nil,
        additional: [OverlayOptions.RawOption] = []
    ) {
        self.externalInodeNumbers = externalInodeNumbers
        self.truncateXino = truncateXino
        self.userDirectBranchAccess = userDirectBranchAccess
        self.directIO = directIO
        self.directoryPermissionFromTopOnly = directoryPermissionFromTopOnly
        self.pseudoLinks = pseudoLinks
        self.showWhiteouts = showWhiteouts
        self.createPolicy = createPolicy
        self.copyUpPolicy = copyUpPolicy
        self.opaqueDirectories = opaqueDirectories
        self.directoryWhiteoutThreshold = directoryWhiteoutThreshold
        self.readdirCacheSeconds = readdirCacheSeconds
        self.readdirBlockSize = readdirBlockSize
        self.readdirHashSize = readdirHashSize
        self.sumFreeSpace = sumFreeSpace
        self.warnPermission = warnPermission
        self.verbose = verbose
        self.directoryRename = directoryRename
        self.additional = additional
    }
}
