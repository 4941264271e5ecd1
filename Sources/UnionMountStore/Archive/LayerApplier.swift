import SystemPackage
import UnionMount

/// Applies an OCI/Docker layer tar (plain, gzip or zstd) to a directory in one pass, writing it straight into
/// a whiteout form, with the blob's digests computed on the way.
///
///     let applier = LayerApplier(whiteoutFormat: .overlayTrusted)
///     let summary = try applier.apply(archive: "/images/blobs/sha256/4f…", into: "/scratch/layer")
///     print(summary.diffID, summary.digest, summary.size)
///
/// ``LayerStore/applyLayer(archive:id:parent:expected:limits:ownership:)`` runs it into a staging layer of a store and
/// commits or discards that layer; this type works on any directory, for tools and tests.
///
/// Every entry is written relative to the directory's descriptor: its parent directory is opened with
/// openat2(2) `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS`, so the kernel
/// itself keeps the lookup inside the directory and refuses to pass through any symbolic link, and the final
/// name is created relative to that descriptor without following anything (`O_CREAT | O_EXCL | O_NOFOLLOW`,
/// mknodat(2), symlinkat(2), linkat(2) without `AT_SYMLINK_FOLLOW`, `AT_SYMLINK_NOFOLLOW` for owners and times).
/// A name that already exists as anything but a directory is removed and created anew, never written through.
///
/// Hostile content is a `UnionMountError.Code.malformedInput` naming the layer and the entry
/// (`UnionMountError.input` is the entry's name, non-UTF-8 bytes as `\xNN`): an absolute name or a `..`
/// component (refused, not stripped), a name reached through a symbolic link of the archive, a hard link to
/// anything but an earlier non-directory entry of the same archive, a name that appears twice (tar's "last one
/// wins" is refused: a duplicate is how archives smuggle a second meaning past a reviewer), a device node in a
/// rootless application, anything over ``limits``, a damaged, truncated or corrupt tar, gzip or zstd stream,
/// and a digest or size other than ``expectation`` says. A failed system call is a
/// `UnionMountError.Code.systemCallFailed` with its errno. After an error the directory holds whatever was
/// written so far: the store discards its staging layer.
///
/// What is kept: contents (sparse files as sparse files: holes are seeked over, not written), permission bits
/// including setuid, setgid and sticky (set after the owner, since a change of owner clears setuid), owners,
/// modification and access times to the nanosecond (access = modification when the tar has none), extended
/// attributes (`SCHILY.xattr.*` and `LIBARCHIVE.xattr.*`: `security.capability`, ACLs as
/// `system.posix_acl_access`/`_default`, `user.*`…), device nodes, FIFOs, symbolic links (targets as raw bytes),
/// hard links, long and non-UTF-8 names. Directory permissions and times are set after everything inside them
/// (deepest first), so a read-only directory can still be filled and its time is the archive's. libarchive's
/// own ACL records (`SCHILY.acl.*`) and file flags are not applied. An extended attribute overlay would claim
/// (`trusted.overlay.*` in a `trusted.` store, `user.overlay.*` in a `user.` one) is stored escaped
/// (`trusted.overlay.overlay.*`), as ``WhiteoutConversion`` stores it, so an archive cannot set overlay's
/// `opaque`, `redirect` or `metacopy`.
///
/// Whiteouts in the overlay forms: `.wh.<name>` (an empty regular file, or a hard link of another whiteout)
/// becomes a character device 0/0 `<name>` with the entry's mode, owner and times; `.wh..wh..opq` sets
/// `<prefix>overlay.opaque=y` on its directory, with the marker's own metadata in
/// `<prefix>overlay.unionmount.opaque-marker` so that a conversion back to the aufs form restores it; other
/// `.wh..wh.*` names (aufs' bookkeeping) are skipped. A whiteout and an entry of the same name in one archive
/// are refused as a duplicate. In the ``WhiteoutFormat/aufs`` form every entry is written as it is.
public struct LayerApplier: Sendable {
    /// Who owns what is written.
    public enum Ownership: Sendable, Hashable {
        /// The archive's uid and gid, given to fchown(2) as they are. In a user namespace the kernel maps them
        /// through the namespace's `uid_map`/`gid_map`, as rootless Podman does with its subordinate id range; an
        /// id the map does not hold is refused (`UnionMountError.Code.unsupported` naming the entry and the id).
        case archive
        /// No chown(2): everything belongs to the applying user (Podman's `ignore_chown_errors` for a user with
        /// a single id); the archive's owners are not recorded.
        case caller
    }

    /// The whiteout form to write (the store's ``LayerStore/whiteoutFormat``).
    public var whiteoutFormat: WhiteoutFormat
    /// How much the archive may hold.
    public var limits: LayerArchiveLimits
    /// The digests and size to check.
    public var expectation: LayerArchiveExpectation
    /// Who owns what is written.
    public var ownership: Ownership
    /// Whether the application is unprivileged: device nodes other than whiteouts are refused, and extended
    /// attributes outside `user.*`, `security.capability` and `system.posix_acl_*` are dropped (counted in
    /// ``LayerArchiveSummary/droppedXattrs``).
    public var rootless: Bool
    /// How messages name the layer: the expected digest, else this (the archive's path by default).
    public var layerName: String?
    /// The directories of the layers this one will be stacked on, top first, in ``whiteoutFormat``.
    ///
    /// A directory the archive needs but does not describe (a parent left out of the diff, as umoci and Docker
    /// leave unchanged parents out) takes the mode, owner and times of the directory the lower layers show at that
    /// path, as overlay's copy-up would keep them; with no such directory below it is made 0755, owned by the
    /// caller. Read with lstat(2), one component at a time, never through a symbolic link.
    public var lowerDirectories: [FilePath] = []

    /// An applier; `ownership` and `rootless` default to what this process is: ``Ownership/archive`` when its
    /// effective uid is 0 (in its namespace), and rootless outside the initial user namespace or when the
    /// format is ``WhiteoutFormat/overlayUser``.
    public init(
        whiteoutFormat: WhiteoutFormat, limits: LayerArchiveLimits = LayerArchiveLimits(),
        expectation: LayerArchiveExpectation = LayerArchiveExpectation(), ownership: Ownership? = nil,
        rootless: Bool? = nil, layerName: String? = nil, features: KernelFeatures = .current
    ) {
        self.whiteoutFormat = whiteoutFormat
        self.limits = limits
        self.expectation = expectation
        self.ownership = ownership ?? (ProcessFacts.effectiveUserID == 0 ? .archive : .caller)
        self.rootless = rootless ?? (!features.initialUserNamespace || whiteoutFormat == .overlayUser)
        self.layerName = layerName
    }

    /// Applies the archive at `archive` to the directory `directory`.
    ///
    /// Wraps open(2), read(2) and what ``apply(from:into:)`` calls.
    ///
    /// - Throws: see ``LayerApplier``; `UnionMountError.Code.systemCallFailed` when either cannot be opened.
    public func apply(archive: FilePath, into directory: FilePath) throws(UnionMountError) -> LayerArchiveSummary {
        var applier = self
        if applier.layerName == nil { applier.layerName = archive.readable }
        let source: FileDescriptor
        do {
            source = try FileSystem.open(archive, .readOnly)
        } catch {
            throw UnionMountError.systemCall(
                "open", error, message: "cannot open the layer archive \(archive.readable)", input: archive.readable)
        }
        defer { FileSystem.close(source) }
        let root = try Self.openRoot(directory)
        defer { FileSystem.close(root) }
        return try applier.apply(from: source, into: root)
    }

    /// The layer directory `directory` opened as the root to apply into (open(2) `O_DIRECTORY|O_NOFOLLOW`).
    static func openRoot(_ directory: FilePath) throws(UnionMountError) -> FileDescriptor {
        do {
            return try FileSystem.open(directory, .readOnly, options: [.directory, .noFollow])
        } catch {
            throw UnionMountError.systemCall(
                "open", error, message: "cannot open the layer directory \(directory.readable)",
                input: directory.readable)
        }
    }

    /// Applies the archive read from `source` (from its current offset to its end) to the directory open as
    /// `root` (a descriptor opened with `O_DIRECTORY`, not `O_PATH`: its own owner, mode and times are set from a
    /// `./` entry).
    ///
    /// Wraps read(2), openat2(2), openat(2), mkdirat(2), mknodat(2), symlinkat(2), linkat(2), unlinkat(2),
    /// fchown(2)/fchownat(2), fchmod(2)/fchmodat(2), futimens(3)/utimensat(2), fsetxattr(2), setxattr(2) on
    /// `/proc/self/fd/N` (extended attributes of symbolic links and device nodes), pwrite(2) and ftruncate(2).
    ///
    /// - Throws: see ``LayerApplier``.
    public func apply(from source: FileDescriptor, into root: FileDescriptor) throws(UnionMountError)
        -> LayerArchiveSummary
    {
        try apply(source: .file(source), into: root)
    }

    /// Applies the archive read from `source` (a descriptor, or a member of an enclosing tar) to the directory
    /// open as `root`; `progress` gets the bytes read from the source so far after each read.
    func apply(
        source: TarSource, into root: FileDescriptor, progress: ((Int64) -> Void)? = nil
    ) throws(UnionMountError) -> LayerArchiveSummary {
        let application = try LayerApplication(applier: self, source: source, root: root)
        application.stream.onRead = progress
        return try application.run()
    }

    /// The layer as messages name it.
    var displayName: String { expectation.digest?.description ?? layerName ?? "the layer archive" }
}
