import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Starting and reaping helper programs (fuse-overlayfs, fusermount3): posix_spawn(3) and waitpid(2).
package enum ChildProcess {}

extension ChildProcess {
    /// Starts `program` with `arguments` (`arguments[0]` is argv[0]) and `environment`, with no shell: stdin
    /// and stdout on `/dev/null`, stderr on `standardError`, every other descriptor closed in the child
    /// (`posix_spawn_file_actions_addclosefrom_np`, glibc 2.34+, where libc has it), default signal
    /// dispositions and an empty signal mask.
    ///
    /// - Returns: the child's process id, or the error posix_spawn(3) returned.
    ///
    /// The corresponding library call is `posix_spawn(3)`, with its file actions and attributes.
    package static func spawn(
        _ program: FilePath, arguments: [[UInt8]], environment: [[UInt8]], standardError: FileDescriptor
    ) -> Result<Int32, Errno> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, standardError.rawValue, 2)
        if let closeFrom = addCloseFrom { _ = closeFrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        sigfillset(&signals)
        posix_spawnattr_setsigdefault(&attributes, &signals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var pid: pid_t = 0
        let argv = cStrings(arguments)
        let envp = cStrings(environment)
        defer {
            argv.forEach { $0?.deallocate() }
            envp.forEach { $0?.deallocate() }
        }
        let spawned = withPathCString(program) { path in
            posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        }
        return spawned == 0 ? .success(pid) : .failure(Errno(rawValue: spawned))
    }

    /// NUL-terminated heap copies of `strings`, then a NULL (argv and envp as posix_spawn(3) reads them).
    private static func cStrings(_ strings: [[UInt8]]) -> [UnsafeMutablePointer<CChar>?] {
        strings.map { bytes in
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            for (index, byte) in bytes.enumerated() { copy[index] = CChar(bitPattern: byte) }
            copy[bytes.count] = 0
            return copy
        } + [nil]
    }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, CInt) -> CInt

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), found at run time (Swift's Glibc module
    /// hides the GNU declaration).
    private static let addCloseFrom: AddCloseFrom? = libcFunction(
        "posix_spawn_file_actions_addclosefrom_np", as: AddCloseFrom.self)
}
