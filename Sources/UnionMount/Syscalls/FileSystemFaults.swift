#if ENABLE_MOCKING
    import SystemPackage

    /// A test's hand on ``FileSystem`` (debug builds only): records every file-system call made in the current
    /// task and fails those its script says, with the `Errno` it says, before the kernel sees them.
    ///
    ///     let faults = FileSystemFaults { $0.name == "rename" ? .noSpace : nil }
    ///     #expect(throws: UnionMountError.self) { try faults.run { try store.createLayer("a") { _ in } } }
    ///
    /// It is the file-system counterpart of ``SyscallRecorder`` (which answers the mount calls): the layer store
    /// and the layer tools make every file call through ``FileSystem``, so one task-local hook reaches them all.
    /// A release build has neither the type nor the check.
    package final class FileSystemFaults: @unchecked Sendable {
        /// The faults answering calls made in the current task, if any.
        @TaskLocal package static var current: FileSystemFaults?

        /// One call: the system call's name (`"rename"`, `"lstat"`, `"open"`…) and the path it was given (nil for
        /// calls on a descriptor).
        package struct Call: Equatable, Sendable, CustomStringConvertible {
            /// The system call.
            package var name: String
            /// Its path.
            package var path: FilePath?
            /// `name(path)`.
            package var description: String { "\(name)(\(path.map { $0.readable } ?? ""))" }
        }

        private let lock = Mutex()
        private var _calls: [Call] = []
        private let decide: @Sendable (Call) -> Errno?

        /// Faults that fail each call for which `decide` returns an `Errno` (and let the others through).
        package init(_ decide: @escaping @Sendable (Call) -> Errno?) {
            self.decide = decide
        }

        /// Every call made so far under ``run(_:)``, in order.
        package var calls: [Call] { lock.withLock { _calls } }

        /// Records the call and returns the `Errno` to fail it with, if any.
        func answer(_ name: StaticString, _ path: FilePath?) -> Errno? {
            let call = Call(name: "\(name)", path: path)
            lock.withLock { _calls.append(call) }
            return decide(call)
        }

        /// Runs `body` with these faults answering every ``FileSystem`` call made in the task.
        package func run<R>(_ body: () throws -> R) rethrows -> R {
            try FileSystemFaults.$current.withValue(self) { try body() }
        }
    }
#endif
