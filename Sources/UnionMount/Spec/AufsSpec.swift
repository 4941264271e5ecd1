import SystemPackage

/// An aufs branch: a directory, its permission and attributes (`br:<path>=<perm>[+<attr>…]`).
public struct AufsBranch: Sendable, Hashable, Codable {
    /// Branch permission (`aufs.5`, `fs/aufs/opts.c`).
    public enum Permission: String, Sendable, Hashable, Codable, CaseIterable {
        /// `rw`: writable; whiteouts are hard links to `.wh..wh.aufs`.
        case readWrite = "rw"
        /// `ro`: read-only.
        case readOnly = "ro"
        /// `rr`: "real read-only", a natively read-only filesystem.
        case realReadOnly = "rr"
    }

    /// Branch attribute, joined to the permission with `+`.
    public enum Attribute: String, Sendable, Hashable, Codable, CaseIterable {
        /// `wh`: a read-only branch that may hold whiteouts (Docker's image layers).
        case whiteout = "wh"
        /// `nolwh`: whiteouts are not hard-linked (rw only).
        case noLinkedWhiteout = "nolwh"
        /// `unpin` (ignored since Linux 3.18).
        case unpin
        /// `coo_reg`: copy-up on open, regular files.
        case copyUpOnOpenRegular = "coo_reg"
        /// `coo_all`: copy-up on open, all files.
        case copyUpOnOpenAll = "coo_all"
        /// `moo`: move-up on open (rw only).
        case moveUpOnOpen = "moo"
        /// `fhsm`: file-based hierarchical storage management.
        case fhsm
        /// `icex`: ignore every xattr copy error.
        case ignoreCopyErrorsAll = "icex"
        /// `icexsec`: ignore `security.` xattr copy errors.
        case ignoreCopyErrorsSecurity = "icexsec"
        /// `icexsys`: ignore `system.` xattr copy errors.
        case ignoreCopyErrorsSystem = "icexsys"
        /// `icextr`: ignore `trusted.` xattr copy errors.
        case ignoreCopyErrorsTrusted = "icextr"
        /// `icexusr`: ignore `user.` xattr copy errors.
        case ignoreCopyErrorsUser = "icexusr"
        /// `icexoth`: ignore other xattr copy errors.
        case ignoreCopyErrorsOther = "icexoth"
    }

    /// The branch root.
    public var path: FilePath
    /// The permission.
    public var permission: Permission
    /// Attributes in the order given.
    public var attributes: [Attribute]

    /// Creates a branch.
    public init(_ path: FilePath, _ permission: Permission = .readOnly, attributes: [Attribute] = []) {
        self.path = path
        self.permission = permission
        self.attributes = attributes
    }

    /// `<perm>[+<attr>…]`, as aufs prints it after `=`.
    public var permissionString: String {
        ([permission.rawValue] + attributes.map(\.rawValue)).joined(separator: "+")
    }

    private enum CodingKeys: String, CodingKey { case path, permission, attributes }

    /// Decodes a branch.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        path = try container.decodePath(forKey: .path)
        permission = try container.decode(Permission.self, forKey: .permission)
        attributes = try container.decodeIfPresent([Attribute].self, forKey: .attributes) ?? []
    }

    /// Encodes a branch.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path: path, forKey: .path)
        try container.encode(permission, forKey: .permission)
        try container.encode(attributes, forKey: .attributes)
    }
}

/// What an aufs mount is made of: an ordered branch list (top first) and mount options.
///
/// aufs has no escape syntax: a branch path may contain none of `,` `:` `=`; validation refuses them.
public struct AufsSpec: Sendable, Hashable, Codable {
    /// Branches, top first; index 0 is normally the writable one.
    public var branches: [AufsBranch]
    /// Mount options.
    public var options: AufsOptions

    /// Creates a spec.
    public init(branches: [AufsBranch], options: AufsOptions = AufsOptions()) {
        self.branches = branches
        self.options = options
    }
}
