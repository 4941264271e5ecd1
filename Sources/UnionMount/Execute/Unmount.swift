import SystemPackage

/// What an unmount did.
public enum UnmountOutcome: String, Sendable, Hashable, Codable {
    /// The mount is gone.
    case unmounted
    /// Nothing was mounted at the target (or the path does not exist); nothing was done.
    case notMounted = "not-mounted"
    /// The mount was detached lazily (`MNT_DETACH`): gone from the namespace, freed when no longer busy.
    case detached
}

/// How hard to try unmounting.
public struct UnmountOptions: Sendable, Hashable {
    /// How many times to retry after `EBUSY` (a process has its cwd or an open file inside).
    public var retries: Int
    /// The pause between retries.
    public var retryInterval: Duration
    /// Detach lazily at once (`MNT_DETACH`) instead of a plain unmount.
    public var lazy: Bool
    /// Detach lazily when the mount is still busy after every retry, instead of throwing.
    public var detachWhenBusy: Bool

    /// Creates options; the defaults retry `EBUSY` 50 times, 20 ms apart, and never detach.
    public init(
        retries: Int = 50, retryInterval: Duration = .milliseconds(20), lazy: Bool = false,
        detachWhenBusy: Bool = false
    ) {
        self.retries = retries
        self.retryInterval = retryInterval
        self.lazy = lazy
        self.detachWhenBusy = detachWhenBusy
    }
}

extension Mounter {
    /// Unmounts the mount at `target`, retrying while it is busy.
    ///
    /// The target is never followed through a symlink (`UMOUNT_NOFOLLOW`): a symlink planted where a mount
    /// point was is reported as not mounted rather than unmounting whatever it points to. The unmounted mount's
    /// mount record (`/run/unionmount/mounts/<id>`, written for mount-relative and mount-fd mounts) is removed.
    ///
    /// - Returns: ``UnmountOutcome/unmounted``, ``UnmountOutcome/detached``, or ``UnmountOutcome/notMounted``
    ///   when `target` is not a mount point.
    /// - Throws: ``UnionMountError`` with code ``UnionMountError/Code/busy`` after the last retry, or the
    ///   system call's errno.
    ///
    /// The corresponding system calls are `statx(2)` (the mount's id), `umount2(2)` and `unlinkat(2)` (its
    /// record). When it answers `EPERM` for a FUSE mount (`fuse` or
    /// `fuse.*` in `/proc/self/mountinfo` at exactly `target`, as a mount made without root by fuse-overlayfs),
    /// `fusermount3 -u` (else `fusermount -u`; `-z` for a lazy unmount) is spawned like fuse-overlayfs itself
    /// (posix_spawn(3), no shell, fixed environment) and does it; its "Device or resource busy" counts as
    /// `EBUSY` for the retries, any other failure throws with system call `fusermount3`, its exit status and
    /// stderr.
    @discardableResult
    public func unmount(_ target: FilePath, options: UnmountOptions = UnmountOptions()) throws(UnionMountError)
        -> UnmountOutcome
    {
        let noFollow = UnmountFlag.noFollow
        if options.lazy { return try umount(target, noFollow | UnmountFlag.detach, outcome: .detached) }
        var attempt = 0
        while true {
            do {
                return try umount(target, noFollow, outcome: .unmounted)
            } catch  where error.code == .busy && attempt < options.retries {
                attempt += 1
                sleep(for: options.retryInterval)
            } catch  where error.code == .busy && options.detachWhenBusy {
                return try umount(target, noFollow | UnmountFlag.detach, outcome: .detached)
            } catch  where error.code == .busy {
                throw Self.naming(holdersOf: target, in: error)
            }
        }
    }

    /// `error`, an unmount still busy after every retry, with what holds the mount as its diagnoses
    /// (``MountTable/holders(of:limits:)``; nothing added when the search itself fails).
    static func naming(holdersOf target: FilePath, in error: UnionMountError) -> UnionMountError {
        var error = error
        if let search = try? MountTable.holders(of: target) {
            error.diagnoses += search.holders.map(Diagnosis.heldBy)
        }
        return error
    }

    private func umount(_ target: FilePath, _ flags: CInt, outcome: UnmountOutcome) throws(UnionMountError)
        -> UnmountOutcome
    {
        // The mount's id, for its mount record (mount-relative and mount-fd mounts have one).
        let mount = try? FileSystem.mountIdentity(target, followingLinks: false)
        if withPathCString(target, { system_umount2($0, flags) }) == 0 {
            if let mount, mount.hasMountID, mount.isMountRoot != false {
                MountRecords.remove(mountID: Int(mount.mountID))
            }
            return outcome
        }
        let errno = system_errno()
        switch errno {
        case .noSuchFileOrDirectory:
            return .notMounted
        case .invalidArgument where !MountTable.isMountPoint(target):
            return .notMounted
        case .notPermitted where isFuseMount(target):
            return try fusermountUnmount(target, lazy: flags & UnmountFlag.detach != 0, outcome: outcome)
        default:
            throw UnionMountError.systemCall(
                "umount2", errno, message: "unmount of \(target.readable) failed", input: target.readable)
        }
    }

    /// Whether the top mount at exactly `target` (made absolute, not resolved) is a FUSE mount.
    private func isFuseMount(_ target: FilePath) -> Bool {
        let path = absolute(target)
        guard let entry = (try? MountTable.entry(at: path, source: .mountinfo)) ?? nil else { return false }
        let type = entry.filesystemType
        return type == "fuse" || type.hasPrefix("fuse.") || type.hasPrefix("fuse3.")
    }

    /// `fusermount3 -u [-z] <target>` (or `fusermount`), for FUSE mounts umount2(2) may not touch.
    private func fusermountUnmount(_ target: FilePath, lazy: Bool, outcome: UnmountOutcome) throws(UnionMountError)
        -> UnmountOutcome
    {
        let candidates = ["fusermount3", "fusermount"].flatMap { name in
            ["/usr/bin/", "/bin/", "/usr/local/bin/", "/usr/sbin/", "/sbin/"].map { $0 + name }
        }
        guard let program = candidates.first(where: { FileSystem.isAccessible(FilePath($0), .execute) }) else {
            throw UnionMountError.systemCall(
                "umount2", .notPermitted,
                message: "unmount of \(target.readable) failed, and there is no fusermount3 or fusermount to ask",
                input: target.readable)
        }
        let name = FilePath(program).lastComponent?.string ?? program
        let arguments = [Array("-u".utf8)] + (lazy ? [Array("-z".utf8)] : []) + [absolute(target).bytes]
        let result = try ProgramRunner.run(FilePath(program), arguments)
        if result.succeeded { return outcome }
        let lines = result.standardErrorLines
        let busy = lines.contains { $0.contains("Device or resource busy") }
        var message = "unmount of \(target.readable) failed: umount2 said EPERM, \(name) -u \(result.ending)"
        if let last = lines.last { message += ": \(last)" }
        throw UnionMountError(
            code: busy ? .busy : .systemCallFailed, message: message, input: target.readable, systemCall: name,
            errno: busy ? .resourceBusy : nil, kernelMessages: lines)
    }

    /// Unmounts every mount at or below `path`, deepest first, stacked mounts top first.
    ///
    /// "Below" is by path components: `/a` is not below `/ab`. The list comes from `/proc/self/mountinfo`. A mount
    /// covered by a later mount on a directory above it (`/a/b`, then `/a`) cannot be reached through its path
    /// until the cover is gone, so the table is read again after each pass that unmounted something, and what
    /// reappeared is unmounted in the next one (at most one pass per mount first found, plus one).
    ///
    /// - Returns: each mount point unmounted, in the order it was unmounted.
    @discardableResult
    public func unmountRecursively(_ path: FilePath, options: UnmountOptions = UnmountOptions()) throws(UnionMountError)
        -> [FilePath]
    {
        let root = canonicalPath(path) ?? absolute(path)
        func mountsBelow() throws(UnionMountError) -> [MountEntry] {
            try MountTable.entries(source: .mountinfo)
                .filter { $0.mountPoint.starts(with: root) }
                .sorted { ($0.mountPoint.components.count, $0.mountID) > ($1.mountPoint.components.count, $1.mountID) }
        }
        var mounts = try mountsBelow()
        var passesLeft = mounts.count + 1
        var unmounted: [FilePath] = []
        while !mounts.isEmpty && passesLeft > 0 {
            passesLeft -= 1
            let before = unmounted.count
            for entry in mounts where try unmount(entry.mountPoint, options: options) != .notMounted {
                unmounted.append(entry.mountPoint)
            }
            guard unmounted.count > before else { break }
            mounts = try mountsBelow()
        }
        return unmounted
    }

    /// Mounts `spec` at `target`, runs `body`, and always unmounts, also when `body` throws.
    ///
    /// - Returns: what `body` returns.
    /// - Throws: `body`'s error, or a ``UnionMountError`` from mounting or unmounting.
    public func withMount<Result>(
        _ spec: UnionSpec, at target: FilePath, flags: MountFlags = [], strategy: MountStrategy? = nil,
        _ body: (MountPlan) throws -> Result
    ) throws -> Result {
        let plan = try mount(spec, at: target, flags: flags, strategy: strategy)
        let result: Result
        do {
            result = try body(plan)
        } catch {
            _ = try? unmount(target, options: UnmountOptions(detachWhenBusy: true))
            throw error
        }
        try unmount(target, options: UnmountOptions(detachWhenBusy: true))
        return result
    }

    /// Mounts `spec` on a new empty directory inside `parent`, runs `body` with its path, then unmounts and
    /// removes the directory — with rmdir(2) only, and only once the unmount succeeded, so layer data can
    /// never be deleted through a mount that is still there.
    public func withTemporaryMount<Result>(
        _ spec: UnionSpec, in parent: FilePath = "/tmp", flags: MountFlags = [],
        _ body: (FilePath) throws -> Result
    ) throws -> Result {
        let target: FilePath
        do throws(Errno) {
            target = try FileSystem.makeTemporaryDirectory(parent.appending("unionmount-XXXXXX"))
        } catch {
            throw UnionMountError.systemCall(
                "mkdtemp", error, message: "cannot create a mount point in \(parent.readable)")
        }
        defer {
            if !MountTable.isMountPoint(target) { try? FileSystem.removeDirectory(target) }
        }
        return try withMount(spec, at: target, flags: flags) { _ in try body(target) }
    }
}
