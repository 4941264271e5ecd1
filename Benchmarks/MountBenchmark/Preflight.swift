#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The command that runs the benchmark the way it must be run: as root, in a private mount namespace.
let benchmarkCommand = "unshare -m --propagation private swift run -c release unionmount-bench"

/// The initial mount namespace's fixed inode number (`MNT_NS_INIT_INO`, Linux 6.18+ `uapi/linux/nsfs.h`).
private let initialMountNamespace = "mnt:[\(0xEFFF_FFF8 as UInt32)]"

/// Checks that the benchmark may mount here, or explains why not.
///
/// Mounting needs root, and every mount is made inside a private mount namespace so that a crash can never
/// leave overlays behind in the host's namespace (the namespace dies with the process). The namespace is
/// private when `/proc/self/ns/mnt` names another namespace than `/proc/1/ns/mnt`. Where PID 1 cannot be
/// inspected (a sandbox's PID 1 may refuse even root), it is private when it is not the kernel's fixed
/// initial namespace and an ancestor process is in another one. Either way no mount may be shared, since a
/// shared mount would propagate the benchmark's overlays to its peers.
///
/// - Returns: `nil` when the benchmark may run, otherwise the message to print before exiting.
func preflightFailure() -> String? {
    guard geteuid() == 0 else {
        return "unionmount-bench mounts overlays and must run as root, in a private mount namespace:\n"
            + "    sudo \(benchmarkCommand)"
    }
    guard let own = readLink("/proc/self/ns/mnt") else {
        return "cannot read /proc/self/ns/mnt, so cannot tell whether this mount namespace is private; run:\n"
            + "    \(benchmarkCommand)"
    }
    let shared = "unionmount-bench runs only in a private mount namespace (this process shares \(own) with "
    if let initial = readLink("/proc/1/ns/mnt") {
        guard own != initial else { return shared + "PID 1); run:\n    \(benchmarkCommand)" }
    } else {
        guard own != initialMountNamespace else {
            return shared + "the initial namespace); run:\n    \(benchmarkCommand)"
        }
        guard ancestorInOtherNamespace(than: own) != nil else {
            return "/proc/1/ns/mnt is unreadable and no ancestor process is in another mount namespace than "
                + "\(own), so it may not be private; run:\n    \(benchmarkCommand)"
        }
    }
    if hasSharedMount() {
        return "this mount namespace has shared mounts, so overlays mounted here could propagate out of it; "
            + "run:\n    \(benchmarkCommand)"
    }
    return nil
}

/// The first ancestor process (parent, grandparent, …, below PID 1) whose mount namespace differs from
/// `namespace`, or `nil` when every readable ancestor shares it.
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
    guard let stat = readSmallTextFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    return fields.count > 1 ? pid_t(fields[1]) : nil
}

/// Whether any mount of this namespace carries a `shared:` propagation tag (mountinfo's optional fields).
private func hasSharedMount() -> Bool {
    guard let mountinfo = readSmallTextFile("/proc/self/mountinfo") else { return true }
    for line in mountinfo.split(separator: "\n") {
        // "<id> <parent> <dev> <root> <mount point> <options> [optional fields…] - <type> <source> <super options>"
        let fields = line.split(separator: " ")
        for field in fields.dropFirst(6) {
            if field == "-" { break }
            if field.hasPrefix("shared:") { return true }
        }
    }
    return false
}

/// A procfs file read whole as text, or `nil` when it cannot be read.
private func readSmallTextFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { return nil }
        if count == 0 { return String(decoding: bytes, as: UTF8.self) }
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
func overlayIndexWarning() -> String? {
    let fd = open("/sys/module/overlay/parameters/index", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var byte: UInt8 = 0
    guard read(fd, &byte, 1) == 1, byte == UInt8(ascii: "Y") else { return nil }
    return "warning: the overlay module parameter index=Y makes every mount index=on; results may differ"
}
