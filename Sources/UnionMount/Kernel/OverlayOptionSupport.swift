/// Whether this kernel's overlay takes a mount option, as far as the kernel tells without a mount.
///
/// overlay's native parameter parser (Linux 6.5+) answers at fsconfig(2): it refuses a key it does not know
/// ("Unknown parameter") or a value it does not take ("Bad value") at once, on a context that is never created.
/// Before it, the new mount API's legacy adapter takes any key at fsconfig(2), and overlay parses its options only
/// when the superblock is filled, at mount time (an unknown one: EINVAL, "unrecognized mount option" in the
/// kernel log); then the only evidence short of a mount is a module parameter in
/// `/sys/module/overlay/parameters` that came with the option.
public enum OverlayOptionSupport: String, Sendable, Hashable, Codable, CaseIterable {
    /// The kernel takes the option: the native parser accepted it at fsconfig(2), or, with the legacy parser, the
    /// module parameter that came with it exists.
    case accepted
    /// The native parser refused it at fsconfig(2): a mount with it fails.
    case refused
    /// Only a mount can tell: the legacy parser (before Linux 6.5), and no module parameter says.
    case unknown

    /// Whether a mount with the option can work here: anything but ``refused``.
    public var mayWork: Bool { self != .refused }
}
