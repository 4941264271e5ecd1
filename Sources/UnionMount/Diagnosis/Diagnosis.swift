import SystemPackage

/// A cause found by checking the spec against the file system after the kernel refused a mount with a bare
/// `EINVAL`, `ENOENT`, `ELOOP` or `EPERM` (overlay logs most reasons only to the kernel log), or what held a mount
/// that would not unmount.
///
/// New checks add cases: switch over a diagnosis with an `@unknown default` (its ``description`` is always a
/// sentence to show).
public enum Diagnosis: Sendable, Hashable, CustomStringConvertible {
    /// A layer, upper or work directory does not exist.
    case missing(FilePath, role: String)
    /// A layer, upper or work path exists but is not a directory.
    case notADirectory(FilePath, role: String)
    /// upperdir and workdir are on different mounts.
    case upperAndWorkOnDifferentMounts(upper: FilePath, work: FilePath)
    /// workdir is inside upperdir, or upperdir inside workdir.
    case upperAndWorkNested(upper: FilePath, work: FilePath)
    /// Without an upper directory overlay needs at least two lower layers.
    case tooFewLowerLayers(count: Int)
    /// Two layers are the same directory or one is inside the other.
    case overlappingLayers(FilePath, FilePath)
    /// A previous `volatile` mount left `work/incompat/volatile` in the work directory.
    case dirtyVolatileWorkDirectory(FilePath)
    /// The mount needs trusted xattrs, which a user namespace does not grant; `feature` names what needs them.
    case trustedXattrsUnavailable(feature: String)
    /// The upper directory's filesystem is mounted read-only.
    case upperOnReadOnlyFilesystem(FilePath)
    /// An unmount stayed busy (`EBUSY`): this holds the mount (``MountTable/holders(of:limits:)``).
    case heldBy(MountHolder)

    /// A sentence naming the cause and the path.
    public var description: String {
        switch self {
        case .missing(let path, let role): "\(role) \(path.readable) does not exist"
        case .notADirectory(let path, let role): "\(role) \(path.readable) is not a directory"
        case .upperAndWorkOnDifferentMounts(let upper, let work):
            "upperdir \(upper.readable) and workdir \(work.readable) are on different mounts"
        case .upperAndWorkNested(let upper, let work):
            "upperdir \(upper.readable) and workdir \(work.readable) are not separate subtrees"
        case .tooFewLowerLayers(let count):
            "without an upper directory overlay needs at least 2 lower layers, got \(count)"
        case .overlappingLayers(let first, let second):
            "layers \(first.readable) and \(second.readable) overlap"
        case .dirtyVolatileWorkDirectory(let work):
            "workdir \(work.readable) holds work/incompat/volatile from an unclean volatile mount; remove it"
        case .trustedXattrsUnavailable(let feature):
            "\(feature) needs trusted xattrs, unavailable in a user namespace; use userxattr or drop \(feature)"
        case .upperOnReadOnlyFilesystem(let upper): "upperdir \(upper.readable) is on a read-only filesystem"
        case .heldBy(let holder): "held: \(holder)"
        }
    }
}
