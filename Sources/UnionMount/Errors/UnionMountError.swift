import SystemPackage

/// The one error UnionMount throws: what failed, on which input, and, for a system call, everything the
/// kernel said about it.
///
/// A failed mount carries the system call, its `Errno`, the kernel's own messages (the fs-context log of
/// fsconfig(2), and overlay's lines from `/dev/kmsg` when readable), the checks that explain a bare
/// `EINVAL`/`ENOENT`/`ELOOP` (``diagnoses``), the spec and the plan that was tried.
public struct UnionMountError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A category of failure; each means one thing. New codes may be added in any release (a struct with static
    /// members, not an enum, so adding one breaks no `switch`; compare with `==`).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name.
        public let name: String
        private init(_ name: String) { self.name = name }

        /// A mount spec (``UnionSpec``, ``OverlaySpec``, ``AufsSpec``) is not valid; ``UnionMountError/input`` names
        /// the offending field.
        public static let invalidSpec = Code("invalid spec")
        /// An argument other than a mount spec is not valid: an id, a relative path where an absolute one is
        /// needed, a path that is not a directory, an xattr prefix, a chain over overlay's layer limit.
        public static let invalidArgument = Code("invalid argument")
        /// The thing acted on is not in a state that allows it: a staged layer already committed, a store created
        /// for another backend, a directory that is neither empty nor a store.
        public static let invalidState = Code("invalid state")
        /// The options do not fit what the kernel accepts in one call.
        public static let optionsTooLong = Code("options too long")
        /// A system call failed; ``UnionMountError/systemCall`` and ``UnionMountError/errno`` say which and why.
        public static let systemCallFailed = Code("system call failed")
        /// The filesystem or feature is not available on this kernel.
        public static let unsupported = Code("unsupported")
        /// The target is not a mount point.
        public static let notMounted = Code("not mounted")
        /// The mount stayed busy through every retry.
        public static let busy = Code("busy")
        /// Input read from outside (a mount table, a sysfs file, an option string) is malformed.
        public static let malformedInput = Code("malformed input")
        /// A named layer, container or store does not exist.
        public static let notFound = Code("not found")
        /// A layer or container of that name already exists.
        public static let alreadyExists = Code("already exists")
        /// A layer or container is still used (by a layer built on it, a container, or a mount).
        public static let inUse = Code("in use")

        /// The code's name.
        public var description: String { name }
    }

    /// The category.
    public var code: Code
    /// A sentence for people.
    public var message: String
    /// The offending input, named. One of:
    ///
    /// - a spec field as a Swift key path without the root: `lowerDirectories[3]`, `upperDirectory`,
    ///   `options.nfsExport`, `options.additional[0]`, `branches[2]`, `strategy`, `flags`;
    /// - a file or directory, as its path (bytes that are not UTF-8 as `\xNN`): `/proc/self/mountinfo`,
    ///   `/sys/fs/aufs/si_1/br0`, a store root;
    /// - an option key of a parsed option string: `lowerdir`, `redirect_dir`;
    /// - a store id (a layer's or container's) or the name of the argument that held it.
    public var input: String?
    /// The 1-based line of ``input`` that is malformed, for line-oriented files.
    public var line: Int?
    /// The system call that failed, e.g. `"fsconfig"`.
    public var systemCall: String?
    /// The error number the system call returned.
    public var errno: Errno?
    /// What the kernel logged about the failure, oldest first (fs-context log, overlay's `/dev/kmsg` lines).
    public var kernelMessages: [String]
    /// The checks that explain a bare kernel error, when any applies.
    public var diagnoses: [Diagnosis]
    /// The spec that was being mounted.
    public var spec: UnionSpec?
    /// The plan that was tried.
    public var plan: MountPlan?
    /// The error this one wraps, when it was caused by another (a failed read under a store repair, say).
    public var cause: UnionMountError? {
        get { causes.first }
        set { causes = newValue.map { [$0] } ?? [] }
    }
    /// ``cause`` as storage (a struct cannot hold itself directly).
    private var causes: [UnionMountError] = []

    /// Creates an error.
    public init(
        code: Code,
        message: String,
        input: String? = nil,
        line: Int? = nil,
        systemCall: String? = nil,
        errno: Errno? = nil,
        kernelMessages: [String] = [],
        diagnoses: [Diagnosis] = [],
        spec: UnionSpec? = nil,
        plan: MountPlan? = nil,
        cause: UnionMountError? = nil
    ) {
        self.code = code
        self.message = message
        self.input = input
        self.line = line
        self.systemCall = systemCall
        self.errno = errno
        self.kernelMessages = kernelMessages
        self.diagnoses = diagnoses
        self.spec = spec
        self.plan = plan
        self.cause = cause
    }

    /// One paragraph: the message, the system call and errno, the kernel's words and the diagnoses.
    public var description: String {
        var text = message
        if let input {
            text += " [input: \(input)" + (line.map { ", line \($0)" } ?? "") + "]"
        }
        if let systemCall {
            text += " (\(systemCall)"
            if let errno { text += ": \(errno.symbolicName), \(errno)" }
            text += ")"
        }
        if let plan { text += " [strategy: \(plan.strategy.rawValue)]" }
        for message in kernelMessages { text += "\n  kernel: \(message)" }
        for diagnosis in diagnoses { text += "\n  cause: \(diagnosis)" }
        if let cause { text += "\n  because: \(cause)" }
        return text
    }
}

extension UnionMountError {
    package static func invalidSpec(_ message: String, input: String) -> UnionMountError {
        UnionMountError(code: .invalidSpec, message: message, input: input)
    }

    package static func invalidArgument(_ message: String, input: String) -> UnionMountError {
        UnionMountError(code: .invalidArgument, message: message, input: input)
    }

    package static func invalidState(_ message: String, input: String) -> UnionMountError {
        UnionMountError(code: .invalidState, message: message, input: input)
    }

    package static func malformed(_ message: String, input: String, line: Int? = nil) -> UnionMountError {
        UnionMountError(code: .malformedInput, message: message, input: input, line: line)
    }

    package static func systemCall(
        _ name: String, _ errno: Errno, message: String, input: String? = nil, kernelMessages: [String] = []
    ) -> UnionMountError {
        UnionMountError(
            code: errno == .resourceBusy ? .busy : .systemCallFailed, message: message, input: input,
            systemCall: name, errno: errno, kernelMessages: kernelMessages)
    }
}

extension Errno {
    /// The C name of the error (`"EINVAL"`), for messages and JSON.
    var symbolicName: String {
        switch self {
        case .notPermitted: "EPERM"
        case .noSuchFileOrDirectory: "ENOENT"
        case .interrupted: "EINTR"
        case .ioError: "EIO"
        case .badFileDescriptor: "EBADF"
        case .resourceTemporarilyUnavailable: "EAGAIN"
        case .noMemory: "ENOMEM"
        case .permissionDenied: "EACCES"
        case .badAddress: "EFAULT"
        case .resourceBusy: "EBUSY"
        case .fileExists: "EEXIST"
        case .improperLink: "EXDEV"
        case .operationNotSupportedByDevice: "ENODEV"
        case .notDirectory: "ENOTDIR"
        case .isDirectory: "EISDIR"
        case .invalidArgument: "EINVAL"
        case .noSpace: "ENOSPC"
        case .readOnlyFileSystem: "EROFS"
        case .tooManySymbolicLinkLevels: "ELOOP"
        case .fileNameTooLong: "ENAMETOOLONG"
        case .noFunction: "ENOSYS"
        case .argListTooLong: "E2BIG"
        case .outOfDomain: "EDOM"
        case .staleNFSFileHandle: "ESTALE"
        case .noData: "ENODATA"
        case .messageTooLong: "EMSGSIZE"
        case .notSupportedOnSocket: "EOPNOTSUPP"
        default: "errno \(rawValue)"
        }
    }
}
