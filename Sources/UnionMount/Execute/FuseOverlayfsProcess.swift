import SystemPackage

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
/// glibc 2.34+), default signal dispositions and an empty signal mask; then waitpid(2). The calls are in
/// ``ChildProcess`` (spawning and reaping) and ``FileSystem`` (the pipe, polling and reading it).
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
        let pipe: (read: FileDescriptor, write: FileDescriptor)
        do throws(Errno) {
            pipe = try FileSystem.makePipe()
        } catch {
            throw .systemCall("pipe2", error, message: "cannot make a pipe for \(program.readable)'s stderr")
        }
        defer { FileSystem.close(pipe.read) }
        let spawned = ChildProcess.spawn(
            program, arguments: [program.bytes] + arguments, environment: FuseOverlayfsGrammar.environment,
            standardError: pipe.write)
        FileSystem.close(pipe.write)
        switch spawned {
        case .failure(let error):
            throw .systemCall(
                "posix_spawn", error, message: "cannot run \(program.readable)", input: program.readable)
        case .success(let pid):
            return collect(pid, reading: pipe.read)
        }
    }

    /// Reads stderr while the child runs and reaps it; never blocks on a daemon that keeps the pipe open.
    private static func collect(_ pid: Int32, reading fd: FileDescriptor) -> ProgramOutcome {
        FileSystem.setNonBlocking(fd)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var status: CInt = 0
        var reaped = false
        var open = true
        /// Reads what is there now (read(2) retries `EINTR`); false at end of file.
        func drain() -> Bool {
            while true {
                let count: Int
                do {
                    count = try buffer.withUnsafeMutableBytes { try FileSystem.read(fd, into: $0) }
                } catch {
                    return true
                }
                if count == 0 { return false }
                output += buffer[0..<min(count, max(0, standardErrorLimit - output.count))]
            }
        }
        while !reaped {
            if open {
                FileSystem.waitUntilReadable(fd, milliseconds: 50)
                open = drain()
            }
            let result = ChildProcess.wait(pid, status: &status, noHang: open)
            if result == pid {
                reaped = true
            } else if result < 0 && system_errno() != .interrupted {
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
}
