import SystemPackage

/// What this kernel supports for union mounts, probed once per process from the kernel itself.
///
/// Nothing here comes from the kernel version number and nothing from a throwaway test mount: the new mount
/// API is asked directly (`fsopen("overlay")` and `fsconfig` on a context that is never created, so no
/// superblock ever exists), `/proc/filesystems` lists the filesystems, `/sys/module/overlay/parameters` gives the
/// module's options where overlay's parser cannot be asked (before Linux 6.5; see ``OverlayOptionSupport``),
/// statmount(2)/listmount(2) are called once on the root mount.
public struct KernelFeatures: Sendable, Hashable, Codable {
    /// The page size; mount(2) copies at most one page of option data (`sysconf(_SC_PAGESIZE)`).
    public var pageSize: Int
    /// `overlay` is listed in `/proc/filesystems`.
    public var overlay: Bool
    /// `aufs` is listed in `/proc/filesystems`.
    public var aufs: Bool
    /// `fuse` is listed in `/proc/filesystems` and this process may open `/dev/fuse` for reading and writing
    /// (it is often mode 0600, root only).
    public var fuse: Bool
    /// The `fuse-overlayfs` program found in `PATH`, if any.
    public var fuseOverlayfsProgram: String?
    /// `fsopen("overlay")` works (new mount API, Linux 5.2+, and the right to use it here).
    public var newMountAPI: Bool
    /// overlay parses its parameters natively (refuses unknown keys at fsconfig(2)); Linux 6.5+.
    public var overlayParameterParsing: Bool
    /// `fsconfig(FSCONFIG_SET_STRING, "lowerdir+")` is accepted (Linux 6.8+).
    public var appendLowerDirectory: Bool
    /// `fsconfig(FSCONFIG_SET_FD, "lowerdir+")` is accepted, so layers can be given as fds (Linux 6.13+).
    public var layerFileDescriptors: Bool
    /// Data-only layers (`::` in `lowerdir=`, `datadir+`) are understood (Linux 6.5+). Some kernels also want
    /// `metacopy=on` for them (Debian's 6.12 does, 6.18 does not), which only a mount can tell: there the mount
    /// fails with the kernel's "lower data-only dirs require metacopy support", which the error carries.
    public var dataOnlyLayers: Bool
    /// The `userxattr` flag (Linux 5.11+; `user.overlay.*` xattrs, for user namespaces): the native parser's
    /// answer to `fsconfig(FSCONFIG_SET_FLAG, "userxattr")`; before Linux 6.5 ``OverlayOptionSupport/unknown`` (no
    /// module parameter comes with it), and a mount tells.
    public var userXattr: OverlayOptionSupport
    /// `redirect_dir=` (Linux 4.10; renamed directories recorded in `overlay.redirect`): the native parser's answer
    /// to `fsconfig(FSCONFIG_SET_STRING, "redirect_dir", "on")`; before Linux 6.5, accepted when the
    /// `redirect_dir` module parameter (same release) exists, else unknown.
    public var redirectDirectory: OverlayOptionSupport
    /// `index=` (Linux 4.13; the inodes index in `work/index`): `fsconfig(FSCONFIG_SET_STRING, "index", "on")`;
    /// before Linux 6.5, accepted when the `index` module parameter (same release) exists, else unknown.
    public var index: OverlayOptionSupport
    /// `xino=` (Linux 4.17; inode numbers across layers on several filesystems):
    /// `fsconfig(FSCONFIG_SET_STRING, "xino", "auto")`; before Linux 6.5, accepted when the `xino_auto` module
    /// parameter (4.19) exists, else unknown. Accepted does not mean used: with every layer on one filesystem the
    /// kernel ignores it ("xino=on is useless") and mountinfo does not show it.
    public var inodeNumbers: OverlayOptionSupport
    /// `metacopy=` (Linux 4.19; copy-up of metadata only, `overlay.metacopy`):
    /// `fsconfig(FSCONFIG_SET_STRING, "metacopy", "on")`; before Linux 6.5, accepted when the `metacopy` module
    /// parameter (same release) exists, else unknown. Outside the initial user namespace a mount asking for it
    /// without `userxattr` is refused (EPERM) since Linux 6.12 (stable 6.6+); older kernels mount and silently
    /// turn it off ("falling back to index=off,metacopy=off" in the kernel log).
    public var metacopy: OverlayOptionSupport
    /// The `volatile` flag (Linux 5.10; no sync to the upper layer, `work/incompat/volatile`):
    /// `fsconfig(FSCONFIG_SET_FLAG, "volatile")`; before Linux 6.5 unknown (no module parameter comes with it).
    public var volatile: OverlayOptionSupport
    /// statmount(2) answers (Linux 6.8+).
    public var statmount: Bool
    /// listmount(2) answers (Linux 6.8+).
    public var listmount: Bool
    /// This process runs in the initial user namespace (`/proc/self/uid_map` is the identity over all ids).
    public var initialUserNamespace: Bool
    /// Unprivileged user namespaces can be created (`/proc/sys/user/max_user_namespaces` > 0).
    public var userNamespaces: Bool
    /// mount_setattr(2) exists (Linux 5.12+), so mounts can be idmapped (`MOUNT_ATTR_IDMAP`).
    public var idmappedMounts: Bool = false
    /// overlay takes idmapped mounts as layers (Linux 5.19+, by the release; ``idmappedMounts`` too).
    public var idmappedLayers: Bool = false
    /// overlay takes a detached mount (an open_tree(2) descriptor never attached) as a `lowerdir+` fd: the
    /// kernel's clone_private_mount() accepts detached mounts since Linux 6.15 (by the release; with
    /// ``layerFileDescriptors`` and ``idmappedLayers``). Before that a detached layer is refused (EINVAL), so the
    /// trees are attached in a private directory first.
    public var detachedLayerTrees: Bool = false
    /// The most lower plus data layers overlay stacks (`OVL_MAX_STACK`).
    public var maximumLayers: Int
    /// `/sys/module/overlay/parameters/*`: the module defaults that decide which options mountinfo echoes.
    public var overlayModuleParameters: [String: String]

    /// The features of the running kernel, probed on first use and then kept for the life of the process.
    public static let current: KernelFeatures = probe()

    /// Probes the running kernel now.
    ///
    /// - Parameters:
    ///   - proc: where procfs is mounted.
    ///   - sys: where sysfs is mounted.
    public static func probe(proc: FilePath = "/proc", sys: FilePath = "/sys") -> KernelFeatures {
        let filesystems = readSmallFile(proc.appending("filesystems")).map(parseFilesystems) ?? []
        var features = KernelFeatures(
            pageSize: ProcessFacts.pageSize,
            overlay: filesystems.contains("overlay"),
            aufs: filesystems.contains("aufs"),
            fuse: filesystems.contains("fuse") && FileSystem.isAccessible("/dev/fuse", [.read, .write]),
            fuseOverlayfsProgram: findProgram("fuse-overlayfs"),
            newMountAPI: false, overlayParameterParsing: false, appendLowerDirectory: false,
            layerFileDescriptors: false, dataOnlyLayers: false, userXattr: .unknown, redirectDirectory: .unknown,
            index: .unknown, inodeNumbers: .unknown, metacopy: .unknown, volatile: .unknown,
            statmount: false, listmount: false,
            initialUserNamespace: readSmallFile(proc.appending("self/uid_map")).map(isIdentityMap) ?? true,
            userNamespaces: (readSmallFile(proc.appending("sys/user/max_user_namespaces"))
                .flatMap { Int(String(decoding: $0, as: UTF8.self).trimmingSpace) } ?? 0) > 0,
            maximumLayers: OverlaySpec.maximumLayerCount,
            overlayModuleParameters: readParameters(sys.appending("module/overlay/parameters")))
        features.probeOverlayContext()
        if !features.overlayParameterParsing { features.readLegacyOptionSupport() }
        features.probeMountListing()
        features.probeIDMappedMounts(release: ProcessFacts.kernelRelease)
        #if ENABLE_MOCKING
            // Debug builds: crash tests run the attached-trees rung in a child process on kernels that have both.
            if ProcessFacts.environment("UNIONMOUNT_TEST_ATTACHED_TREES") == "1" { features.detachedLayerTrees = false }
        #endif
        return features
    }

    /// mount_setattr(2) on descriptor -1: `EBADF` where the call exists, `ENOSYS` where it does not; the rest by
    /// the release (`major.minor`), since only a mount of a real tree could tell.
    mutating func probeIDMappedMounts(release: String) {
        idmappedMounts = system_mount_setattr_idmap(-1, -1) == 0 || system_errno() != .noFunction
        let version = ProcessFacts.kernelVersion(release)
        idmappedLayers = idmappedMounts && overlay && version >= (5, 19)
        detachedLayerTrees = idmappedLayers && layerFileDescriptors && version >= (6, 15)
    }

    /// Asks overlay's fs context which keys it accepts; the context is closed without CMD_CREATE.
    private mutating func probeOverlayContext() {
        let context = system_fsopen("overlay", MountAPIConstant.fsopenCloseOnExec)
        guard context >= 0 else { return }
        defer { system_close(context) }
        newMountAPI = true
        func accepts(_ command: UInt32, _ key: String, _ value: String?, _ aux: CInt = 0) -> Bool {
            let result: CInt
            if let value {
                result = system_fsconfig(context, command, key, value, aux)
            } else {
                result = system_fsconfig(context, command, key, nil, aux)
            }
            drainMessages(context)
            return result == 0
        }
        // The pre-6.5 adapter accepts any key; a native parser refuses one it does not know.
        overlayParameterParsing = !accepts(MountAPIConstant.setFlag, "unionmount_probe_unknown_key", nil)
        guard overlayParameterParsing else { return }
        dataOnlyLayers = true
        func support(_ command: UInt32, _ key: String, _ value: String?) -> OverlayOptionSupport {
            accepts(command, key, value) ? .accepted : .refused
        }
        userXattr = support(MountAPIConstant.setFlag, "userxattr", nil)
        redirectDirectory = support(MountAPIConstant.setString, "redirect_dir", "on")
        index = support(MountAPIConstant.setString, "index", "on")
        inodeNumbers = support(MountAPIConstant.setString, "xino", "auto")
        metacopy = support(MountAPIConstant.setString, "metacopy", "on")
        volatile = support(MountAPIConstant.setFlag, "volatile", nil)
        appendLowerDirectory = accepts(MountAPIConstant.setString, "lowerdir+", "/")
        if appendLowerDirectory {
            let root = system_open("/", FileDescriptor.OpenOptions([.pathOnly, .directory, .closeOnExec]).rawValue)
            if root >= 0 {
                layerFileDescriptors = accepts(MountAPIConstant.setFileDescriptor, "lowerdir+", nil, root)
                system_close(root)
            }
        }
    }

    /// Before overlay's native parser: the options whose module parameter (in ``overlayModuleParameters``) came in
    /// the same release as the option are accepted; the others stay unknown.
    private mutating func readLegacyOptionSupport() {
        guard overlay else { return }
        func support(_ parameter: String) -> OverlayOptionSupport {
            overlayModuleParameters[parameter] != nil ? .accepted : .unknown
        }
        redirectDirectory = support("redirect_dir")
        index = support("index")
        inodeNumbers = support("xino_auto")
        metacopy = support("metacopy")
    }

    /// Calls statmount(2) and listmount(2) once on the root mount.
    private mutating func probeMountListing() {
        guard let root = try? FileSystem.mountIdentity("/", unique: true), root.isUnique
        else { return }
        var buffer = [UInt64](repeating: 0, count: 64)
        statmount = buffer.withUnsafeMutableBytes {
            system_statmount(root.mountID, 0x1, $0) == 0
        }
        listmount = buffer.withUnsafeMutableBufferPointer {
            system_listmount(UInt64.max, UnsafeMutableBufferPointer(rebasing: $0[..<1])) >= 0
        }
    }
}

extension KernelFeatures {
    fileprivate static func parseFilesystems(_ bytes: [UInt8]) -> Set<String> {
        var names = Set<String>()
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            if let name = line.split(separator: UInt8(ascii: "\t")).last {
                names.insert(String(decoding: name, as: UTF8.self).trimmingSpace)
            }
        }
        return names
    }

    fileprivate static func isIdentityMap(_ bytes: [UInt8]) -> Bool {
        let fields = bytes.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") })
        return fields.count == 3 && fields.map { String(decoding: $0, as: UTF8.self) } == ["0", "0", "4294967295"]
    }

    fileprivate static func readParameters(_ directory: FilePath) -> [String: String] {
        var parameters: [String: String] = [:]
        guard let names = try? FileSystem.names(in: directory) else { return parameters }
        for bytes in names {
            let name = String(decoding: bytes, as: UTF8.self)
            guard !name.hasPrefix(".") else { continue }
            if let value = readSmallFile(directory.appending(name)) {
                parameters[name] = String(decoding: value, as: UTF8.self).trimmingSpace
            }
        }
        return parameters
    }

    fileprivate static func findProgram(_ name: String) -> String? {
        let path = ProcessFacts.environment("PATH") ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            if FileSystem.isAccessible(FilePath(candidate), .execute) { return candidate }
        }
        return nil
    }
}

/// Reads a small file (procfs, sysfs) whole; `nil` if it cannot be opened or read.
func readSmallFile(_ path: FilePath) -> [UInt8]? {
    try? FileContents.readAll(path)
}

/// Reads every queued message of an fs-context fd (one per read(2), `ENODATA` when empty), newest last.
@discardableResult
func drainMessages(_ context: CInt) -> [String] {
    var messages: [String] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while messages.count < 64 {
        let count = buffer.withUnsafeMutableBytes { system_read(context, $0.baseAddress!, $0.count) }
        guard count > 0 else { break }
        var text = String(decoding: buffer[0..<count], as: UTF8.self)
        while text.hasSuffix("\n") { text.removeLast() }
        messages.append(text)
    }
    return messages
}

extension String {
    var trimmingSpace: String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
