#if ENABLE_MOCKING
    #if canImport(Glibc)
        import Glibc
    #elseif canImport(Musl)
        import Musl
    #endif

    /// A stand-in kernel for tests (debug builds only): records every system call UnionMount makes in the
    /// current task and answers each from a script instead of the kernel.
    ///
    /// Used where the real kernel cannot answer: aufs does not exist on the test machine, so its mount sequence
    /// is checked as a recorded call list; error paths (EBUSY storms) are injected the same way.
    final class SyscallRecorder: @unchecked Sendable {
        @TaskLocal static var current: SyscallRecorder?

        /// One recorded call: its name and its arguments rendered as strings.
        struct Call: Equatable, CustomStringConvertible {
            var name: String
            var arguments: [String]
            var description: String { "\(name)(\(arguments.joined(separator: ", ")))" }
        }

        private let lock = Mutex()
        private var _calls: [Call] = []
        private var messages: [String] = []
        private let respond: @Sendable (Call) -> (result: CInt, errno: CInt, messages: [String])
        private var nextDescriptor: CInt = 1_000_000

        /// - Parameter respond: the answer for each call: result, errno (when result is -1), and messages to queue
        ///   on the fs-context fd.
        init(_ respond: @escaping @Sendable (Call) -> (result: CInt, errno: CInt, messages: [String])) {
            self.respond = respond
        }

        var calls: [Call] { lock.withLock { _calls } }

        func answer(_ name: String, _ arguments: [String]) -> CInt {
            let call = Call(name: name, arguments: arguments)
            let reply = respond(call)
            return lock.withLock {
                _calls.append(call)
                messages += reply.messages
                if reply.result < 0 {
                    errno = reply.errno
                    return -1
                }
                if name == "fsopen" || name == "fsmount" || name == "open" {
                    nextDescriptor += 1
                    return nextDescriptor
                }
                return reply.result
            }
        }

        func readMessage(into buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
            lock.withLock {
                guard !messages.isEmpty else {
                    errno = ENODATA
                    return -1
                }
                let bytes = Array(messages.removeFirst().utf8.prefix(count))
                bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
                return bytes.count
            }
        }

        /// Runs `body` with this recorder answering every system call made in the task.
        func run<R>(_ body: () throws -> R) rethrows -> R {
            try SyscallRecorder.$current.withValue(self) { try body() }
        }
    }

    /// A pthread mutex, enough for the recorder (no dependency on Synchronization's availability).
    final class Mutex: @unchecked Sendable {
        private var mutex = pthread_mutex_t()
        init() { pthread_mutex_init(&mutex, nil) }
        deinit { pthread_mutex_destroy(&mutex) }
        func withLock<R>(_ body: () throws -> R) rethrows -> R {
            pthread_mutex_lock(&mutex)
            defer { pthread_mutex_unlock(&mutex) }
            return try body()
        }
    }
#endif
