#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The command that runs a benchmark the way it must be run: as root, in a private mount namespace.
public func benchmarkCommand(_ program: String) -> String {
    "unshare -m --propagation private swift run -c release \(program)"
}

/// The initial mount namespace's fixed inode number (`MNT_NS_INIT_INO`, Linux 6.18+ `uapi/linux/nsfs.h`).
private let initialMountNamespace = "mnt:[\(0xEFFF_FFF8 as UInt32)]"

/// Checks that a benchmark may mount here, or explains why not: root, and a private mount namespace
/// (``privateMountNamespaceFailure(madeBy:)``).
///
/// - Parameter program: the benchmark's executable name, for the messages.
/// - Returns: `nil` when the benchmark may run, otherwise the message to print before exiting.
public func preflightFailure(program: String) -> String? {
    let benchmarkCommand = benchmarkCommand(program)
    guard geteuid() == 0 else {
        return "\(program) mounts and must run as root, in a private mount namespace:\n"
            + "    sudo \(benchmarkCommand)"
    }
    guard let reason = privateMountNamespaceFailure() else { return nil }
    return "\(program) runs only in a private mount namespace: \(reason); run:\n    \(benchmarkCommand)"
}

/// Why this process's mount namespace is not private, or `nil` when it is. The one check of the package: the
/// benchmarks' preflight and the tests' `TestEnvironment` both call it, and `.ci/test` makes the namespace it
/// accepts (`unshare -m --propagation private`, exporting the namespace it made as `madeBy`).
///
/// Private means: a mount namespace other than PID 1's (or, where PID 1 cannot be inspected — a sandbox's PID 1
/// may refuse even root — the one `madeBy` names, or one other than the kernel's initial one and other than an
/// ancestor's), and no shared mount, since a shared mount would propagate mounts made here to its peers. So a
/// crash can never leave mounts behind in the host's namespace: the namespace dies with the process.
///
/// - Parameter madeBy: the namespace (`mnt:[inode]`) a wrapper says it created for this process, if any.
public func privateMountNamespaceFailure(madeBy expected: String? = nil) -> String? {
    guard let own = readLink("/proc/self/ns/mnt") else {
        return "cannot read /proc/self/ns/mnt, so cannot tell whether this mount namespace is private"
    }
    if let initial = readLink("/proc/1/ns/mnt") {
        guard own != initial else { return "this process shares \(own) with PID 1" }
    } else if expected != own {
        guard own != initialMountNamespace else { return "this process is in the initial namespace \(own)" }
        guard ancestorInOtherNamespace(than: own) != nil else {
            return "/proc/1/ns/mnt is unreadable and no ancestor process is in another mount namespace than "
                + "\(own), so it may not be private"
        }
    }
    if hasSharedMount() {
        return "this mount namespace has shared mounts, so mounts made here could propagate out of it"
    }
    return nil
}

/// The first ancestor process (below PID 1) whose mount namespace differs from `namespace`, or `nil`.
private func ancestorInOtherNamespace(than namespace: String) -> pid_t? {
    var pid = getppid()
    while pid > 1 {
        if let other = readLink("/proc/\(pid)/ns/mnt"), other != namespace { return pid }
        guard let parent = parentProcess(of: pid) else { return nil }
        pid = parent
    }
    return nil
}

/// The parent of `pid`, from field 4 of `/proc/<pid>/stat` (after the parenthesized command name).
private func parentProcess(of pid: pid_t) -> pid_t? {
    guard let bytes = readWholeFile("/proc/\(pid)/stat") else { return nil }
    let stat = String(decoding: bytes, as: UTF8.self)
    guard let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    return fields.count > 1 ? pid_t(fields[1]) : nil
}

/// Whether any mount of this namespace carries a `shared:` propagation tag (mountinfo's optional fields).
private func hasSharedMount() -> Bool {
    guard let bytes = readWholeFile("/proc/self/mountinfo") else { return true }
    for line in bytes.split(separator: UInt8(ascii: "\n")) {
        // "<id> <parent> <dev> <root> <mount point> <options> [optional fields…] - <type> <source> <super options>"
        for field in line.split(separator: UInt8(ascii: " ")).dropFirst(6) {
            if field.elementsEqual("-".utf8) { break }
            if field.starts(with: "shared:".utf8) { return true }
        }
    }
    return false
}

/// A file read whole with read(2) (procfs files included), or `nil` when it cannot be read.
public func readWholeFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { return nil }
        if count == 0 { return bytes }
        bytes += chunk[0..<count]
    }
}

/// The target of a symbolic link (for `/proc/*/ns/*`: `mnt:[inode]`), or `nil` when it cannot be read.
func readLink(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 256)
    let count = buffer.withUnsafeMutableBufferPointer { readlink(path, $0.baseAddress!, $0.count - 1) }
    guard count > 0 else { return nil }
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A warning when the overlay module turns `index` on by default; the benchmark's specs never ask for it,
/// and with the index on, reusing one upper directory under different lower stacks can be refused.
public func overlayIndexWarning() -> String? {
    let fd = open("/sys/module/overlay/parameters/index", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var byte: UInt8 = 0
    guard read(fd, &byte, 1) == 1, byte == UInt8(ascii: "Y") else { return nil }
    return "warning: the overlay module parameter index=Y makes every mount index=on; results may differ"
}

/// Writes a progress line to standard error.
public func progress(_ text: String) {
    var line = Array((text + "\n").utf8)
    _ = line.withUnsafeMutableBytes { write(2, $0.baseAddress!, $0.count) }
}

/// The running kernel's release string.
public func kernelRelease() -> String {
    var name = utsname()
    uname(&name)
    return withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}
