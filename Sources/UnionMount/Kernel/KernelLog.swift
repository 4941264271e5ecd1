#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reads back what a filesystem logged to the kernel ring buffer (`/dev/kmsg`) since a point in time.
///
/// overlay reports most mount failures only with `pr_err` (kernel-interfaces §1.6): CMD_CREATE returns a
/// bare `EINVAL` while the reason ("workdir and upperdir must reside under the same mount") goes to dmesg.
/// Only the failure path reads the log; the fast path pays one `clock_gettime`. Lines from other mounts made
/// at the same moment can appear too; `/dev/kmsg` may be unreadable (containers), then nothing is returned.
enum KernelLog {
    /// CLOCK_MONOTONIC in microseconds, the clock `/dev/kmsg` stamps records with.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000 + UInt64(time.tv_nsec) / 1000
    }

    /// The messages of `filesystem` (`overlayfs:` or `aufs` prefixed) logged at or after `since`.
    static func messages(since: UInt64, filesystem: String) -> [String] {
        let prefixes = filesystem == "overlay" ? ["overlayfs: ", "overlay: "] : ["aufs "]
        let fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var found: [String] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EPIPE || errno == EINTR { continue }  // EPIPE: records were overwritten meanwhile
                break
            }
            if count == 0 { break }
            // "<prio>,<seq>,<usec>,<flags>[,…];<message>\n"
            let record = buffer[0..<count]
            guard let semicolon = record.firstIndex(of: UInt8(ascii: ";")) else { continue }
            let header = record[..<semicolon].split(separator: UInt8(ascii: ","))
            guard header.count >= 3, let stamp = UInt64(String(decoding: header[2], as: UTF8.self)),
                stamp + 1000 >= since
            else { continue }
            var text = String(decoding: record[(semicolon + 1)...], as: UTF8.self)
            if let newline = text.firstIndex(of: "\n") { text = String(text[..<newline]) }
            if prefixes.contains(where: text.hasPrefix) { found.append(text) }
        }
        return found
    }
}
