import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// How a spawned program ended, and what it wrote to stderr.
struct ProgramOutcome: Sendable, Hashable {
    /// The exit status (`WEXITSTATUS`), or `nil` when a signal ended it.
    var exitStatus: Int32?
    /// The signal that ended it (`WTERMSIG`), if one did.
    var signal: Int32?
    /// The first ``ProgramRunner/standardErrorLimit`` bytes of its stderr.
    var standardError: [UInt8]

    /// Whether it exited with status 0.
    var succeeded: Bool { exitStatus == 0 }

    /// "exited with status 1" / "was killed by signal 9" / that it could not be waited for.
    var ending: String {
        if let exitStatus { return "exited with status \(exitStatus)" }
        if let signal { return "was killed by signal \(signal)" }
        return "ended, but waitpid(2) could not report how (SIGCHLD ignored?)"
    }

    /// The non-empty lines of stderr, invalid UTF-8 shown as `\xNN`.
    var standardErrorLines: [String] {
        standardError.split(separator: UInt8(ascii: "\n")).map { Array($0).readable }
            .filter { !$0.allSatisfy(\.isWhitespace) }
    }
}

/// Runs a helper program (fuse-overlayfs, fusermount3) the way a mount library must: posix_spawn(3), no shell,
/// the fixed environment of ``FuseOverlayfsGrammar/environment``, stdin and stdout on `/dev/null`, stderr into
/// a pipe read while it runs, every other descriptor closed in the child (`posix_spawn_file_actions_addclosefrom_np`,
/// glibc 2.34+), default signal dispositions and an empty signal mask; then waitpid(2).
///
/// A daemonizing program (fuse-overlayfs) returns once its parent exits: the child is reaped, whatever is
/// already in the pipe is read, and the daemon, which may hold the pipe's write end, is not waited for.
enum ProgramRunner {
    /// At most this much of stderr is kept; the rest is read and dropped.
    static let standardErrorLimit = 64 * 1024

    /// Spawns `program` with `arguments` (argv[0] is the program path) and waits for it to exit.
    ///
    /// - Throws: ``UnionMountError`` with system call `posix_spawn` (or `pipe2`) and its errno when the
    ///   program cannot be started.
    static func run(_ program: FilePath, _ arguments: [[UInt8]]) throws(UnionMountError) -> ProgramOutcome {
        var pipe: [CInt] = [-1, -1]
        guard makePipe(&pipe) == 0 else {
            throw .systemCall("pipe2", system_errno(), message: "cannot make a pipe for \(program.readable)'s stderr")
        }
        defer { if pipe[0] >= 0 { close(pipe[0]) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipe[1], 2)
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
        let argv = cStrings([program.bytes] + arguments)
        let envp = cStrings(FuseOverlayfsGrammar.environment)
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        let spawned = withPathCString(program) { path in
            posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        }
        close(pipe[1])
        guard spawned == 0 else {
            throw .systemCall(
                "posix_spawn", Errno(rawValue: spawned), message: "cannot run \(program.readable)",
                input: program.readable)
        }
        return collect(pid, reading: pipe[0])
    }

    /// Reads stderr while the child runs and reaps it; never blocks on a daemon that keeps the pipe open.
    private static func collect(_ pid: pid_t, reading fd: CInt) -> ProgramOutcome {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var status: CInt = 0
        var reaped = false
        var open = true
        /// Reads what is there now; false at end of file.
        func drain() -> Bool {
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if count > 0 {
                    output += buffer[0..<min(count, max(0, standardErrorLimit - output.count))]
                    continue
                }
                if count < 0 && errno == EINTR { continue }
                return count < 0
            }
        }
        while !reaped {
            if open {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&poller, 1, 50)
                open = drain()
            }
            let result = waitpid(pid, &status, open ? WNOHANG : 0)
            if result == pid {
                reaped = true
            } else if result < 0 && errno != EINTR {
                break
            }
        }
        if open { _ = drain() }
        let signal = status & 0x7F
        return ProgramOutcome(
            exitStatus: reaped && signal == 0 ? (status >> 8) & 0xFF : nil,
            signal: reaped && signal != 0 ? signal : nil,
            standardError: output)
    }

    /// NUL-terminated heap copies of `strings`, then a NULL.
    private static func cStrings(_ strings: [[UInt8]]) -> [UnsafeMutablePointer<CChar>?] {
        strings.map { bytes in
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            for (index, byte) in bytes.enumerated() { copy[index] = CChar(bitPattern: byte) }
            copy[bytes.count] = 0
            return copy
        } + [nil]
    }

    private static func free(_ pointer: UnsafeMutablePointer<CChar>?) { pointer?.deallocate() }

    /// pipe2(2) with `O_CLOEXEC` (looked up at run time: Swift's Glibc module hides the GNU declaration), or
    /// pipe(2) plus `FD_CLOEXEC` where libc lacks it.
    private static func makePipe(_ fds: inout [CInt]) -> CInt {
        if let pipe2 = lookup("pipe2", as: (@convention(c) (UnsafeMutablePointer<CInt>, CInt) -> CInt).self) {
            return fds.withUnsafeMutableBufferPointer { pipe2($0.baseAddress!, O_CLOEXEC) }
        }
        guard pipe(&fds) == 0 else { return -1 }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return 0
    }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, CInt) -> CInt

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), found at run time for the same reason.
    private static let addCloseFrom: AddCloseFrom? = lookup(
        "posix_spawn_file_actions_addclosefrom_np", as: AddCloseFrom.self)

    private static func lookup<Function>(_ name: String, as type: Function.Type) -> Function? {
        guard let symbol = dlsym(nil, name) else { return nil }
        return unsafeBitCast(symbol, to: type)
    }
}
