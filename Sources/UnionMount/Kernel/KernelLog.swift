import SystemPackage

/// Reads back what a filesystem logged to the kernel ring buffer (`/dev/kmsg`) since a point in time.
///
/// overlay reports most mount failures only with `pr_err` (kernel-interfaces §1.6): CMD_CREATE returns a
/// bare `EINVAL` while the reason ("workdir and upperdir must reside under the same mount") goes to dmesg.
/// Only the failure path reads the log; the fast path pays one `clock_gettime`. Lines from other mounts made
/// at the same moment can appear too; `/dev/kmsg` may be unreadable (containers), then nothing is returned.
enum KernelLog {
    /// CLOCK_MONOTONIC in microseconds, the clock `/dev/kmsg` stamps records with.
    static func now() -> UInt64 {
        ProcessFacts.monotonicMicroseconds()
    }

    /// The messages of `filesystem` (`overlayfs:` or `aufs` prefixed) logged at or after `since`.
    static func messages(since: UInt64, filesystem: String) -> [String] {
        let prefixes = filesystem == "overlay" ? ["overlayfs: ", "overlay: "] : ["aufs "]
        guard let fd = try? FileSystem.open("/dev/kmsg", .readOnly, options: [.nonBlocking]) else { return [] }
        defer { FileSystem.close(fd) }
        var found: [String] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let result = buffer.withUnsafeMutableBytes { space -> Result<Int, Errno> in
                do throws(Errno) {
                    return .success(try FileSystem.read(fd, into: space))
                } catch {
                    return .failure(error)
                }
            }
            guard case .success(let count) = result else {
                if case .failure(.brokenPipe) = result { continue }  // records were overwritten meanwhile
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
