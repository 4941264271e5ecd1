#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The command that runs the benchmark the way it must be run: as root, in a private mount namespace.
let benchmarkCommand = "unshare -m --propagation private swift run -c release unionmount-table-bench"

/// The initial mount namespace's fixed inode number (`MNT_NS_INIT_INO`, Linux 6.18+ `uapi/linux/nsfs.h`).
private let initialMountNamespace = "mnt:[\(0xEFFF_FFF8 as UInt32)]"

/// Checks that the benchmark may mount here, or explains why not.
///
/// The same rule as `unionmount-bench` (Benchmarks/MountBenchmark/Preflight.swift): root, a mount namespace other
/// than PID 1's (or, where PID 1 cannot be inspected, other than the kernel's initial one and other than an
/// ancestor's), and no shared mount, so that none of the 10,000 mounts can propagate out and all of them vanish
/// with the process even if it crashes.
///
/// - Returns: `nil` when the benchmark may run, otherwise the message to print before exiting.
func preflightFailure() -> String? {
    guard geteuid() == 0 else {
        return "unionmount-table-bench makes 10,000 mounts and must run as root, in a private mount namespace:\n"
            + "    sudo \(benchmarkCommand)"
    }
    guard let own = readLink("/proc/self/ns/mnt") else {
        return "cannot read /proc/self/ns/mnt, so cannot tell whether this mount namespace is private; run:\n"
            + "    \(benchmarkCommand)"
    }
    let shared = "unionmount-table-bench runs only in a private mount namespace (this process shares \(own) with "
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
        return "this mount namespace has shared mounts, so mounts made here could propagate out of it; "
            + "run:\n    \(benchmarkCommand)"
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
func readWholeFile(_ path: String) -> [UInt8]? {
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
