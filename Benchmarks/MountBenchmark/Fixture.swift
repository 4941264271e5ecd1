import SystemPackage
import UnionMountBenchSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The on-disk layout the benchmark mounts: a temporary directory under `/tmp` holding lower layers (each
/// with one file), and per stack size an upper, a work and a mount-point directory.
///
/// With `tmpfs`, a tmpfs is mounted on the temporary directory first (inside the private mount namespace),
/// so that unmounting an overlay does not wait for `sync_filesystem` of the disk its upper layer is on.
///
/// Every path is absolute, exactly ``pathLength`` bytes long and free of `\`, `,` and `:`, so both sides
/// can pass it to the kernel unescaped, as one fsconfig(2) string (≤ 255 bytes) or inside one mount(2)
/// option string.
struct Fixture {
    /// The length of every layer, upper, work and target path.
    static let pathLength = 100

    /// One stack size's directories.
    struct Stack {
        /// How many lower layers the stack has.
        var layers: Int
        /// The lower layers, top first.
        var lowers: [FilePath]
        /// The writable layer, shared by the C and the library side.
        var upper: FilePath
        /// The work directory, next to ``upper``.
        var work: FilePath
        /// The mount point.
        var target: FilePath
    }

    /// The temporary directory everything lives in.
    let root: FilePath
    /// Whether ``root`` has a tmpfs of the benchmark's own mounted on it.
    let isTmpfs: Bool
    /// The stacks, one per requested size, in the order asked for.
    private(set) var stacks: [Stack] = []

    /// Creates the temporary directory and every layer the largest stack needs.
    ///
    /// - Parameters:
    ///   - sizes: the lower-layer counts to prepare.
    ///   - tmpfs: mount a tmpfs on the temporary directory and build everything in it.
    init(sizes: [Int], tmpfs: Bool) throws(BenchmarkError) {
        var template = Array("/tmp/unionmount-bench-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw .systemCall("mkdtemp /tmp/unionmount-bench-XXXXXX") }
        root = template.withUnsafeBufferPointer { FilePath(platformString: $0.baseAddress!) }
        isTmpfs = tmpfs
        let rootString = root.string
        if tmpfs {
            guard mount("tmpfs", rootString, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=0700") == 0 else {
                let error = BenchmarkError.systemCall("mount tmpfs on \(rootString)")
                rmdir(rootString)
                throw error
            }
        }
        try Self.makeDirectory(rootString + "/lower")
        let lowerCount = sizes.max() ?? 0
        var lowers: [FilePath] = []
        lowers.reserveCapacity(lowerCount)
        for index in 0..<lowerCount {
            let path = Self.padded(rootString + "/lower/layer-\(Self.digits(index))-")
            try Self.makeDirectory(path)
            try Self.writeFile(path + "/file-\(Self.digits(index))", contents: "layer \(index)\n")
            lowers.append(FilePath(path))
        }
        for size in sizes {
            let name = "stack-\(Self.digits(size))"
            try Self.makeDirectory(rootString + "/" + name)
            let upper = Self.padded(rootString + "/\(name)/upper-")
            let work = Self.padded(rootString + "/\(name)/work-")
            let target = Self.padded(rootString + "/\(name)/merged-")
            for path in [upper, work, target] { try Self.makeDirectory(path) }
            stacks.append(
                Stack(
                    layers: size, lowers: Array(lowers.prefix(size)), upper: FilePath(upper), work: FilePath(work),
                    target: FilePath(target)))
        }
    }

    /// Removes the temporary directory, but only once nothing is mounted below it.
    ///
    /// Anything still mounted there (after a failed run) is unmounted first; if a mount cannot be removed the
    /// directory is left in place and the error says so, so no layer data is ever deleted through a mount.
    /// The benchmark's own tmpfs (``isTmpfs``) is unmounted last, which discards its contents.
    func remove() throws(BenchmarkError) {
        func strays() throws(BenchmarkError) -> [FilePath] {
            try mountPoints(under: root).filter { !(isTmpfs && $0 == root) }
        }
        for mountPoint in try strays().reversed() {
            _ = mountPoint.withPlatformString { umount2($0, 8 /* UMOUNT_NOFOLLOW */) }
        }
        var mounted = try strays()
        if mounted.isEmpty && isTmpfs {
            if root.withPlatformString({ umount2($0, 8 /* UMOUNT_NOFOLLOW */) }) != 0 {
                throw .systemCall("unmount the tmpfs on \(root), so it was left in place")
            }
            mounted = try mountPoints(under: root)
        }
        guard mounted.isEmpty else {
            throw BenchmarkError(
                description: "still mounted, so \(root) was left in place: "
                    + mounted.map(\.string).joined(separator: ", "))
        }
        try removeTree(root)
    }

    /// `index` as four decimal digits, so names of equal rank have equal length.
    private static func digits(_ index: Int) -> String {
        let text = String(index)
        return String(repeating: "0", count: max(0, 4 - text.count)) + text
    }

    /// `prefix` padded with `x` to ``pathLength`` bytes.
    private static func padded(_ prefix: String) -> String {
        precondition(prefix.utf8.count <= pathLength, "temporary path prefix too long: \(prefix)")
        return prefix + String(repeating: "x", count: pathLength - prefix.utf8.count)
    }

    private static func makeDirectory(_ path: String) throws(BenchmarkError) {
        guard mkdir(path, 0o755) == 0 else { throw .systemCall("mkdir \(path)") }
    }

    private static func writeFile(_ path: String, contents: String) throws(BenchmarkError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .systemCall("create \(path)") }
        defer { close(fd) }
        let bytes = Array(contents.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw .systemCall("write \(path)") }
    }
}

/// The mount points at or below `directory` (by path components), from `/proc/self/mountinfo`, in the order
/// the kernel lists them (parents before children).
func mountPoints(under directory: FilePath) throws(BenchmarkError) -> [FilePath] {
    let fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .systemCall("open /proc/self/mountinfo") }
    defer { close(fd) }
    var contents: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { throw .systemCall("read /proc/self/mountinfo") }
        if count == 0 { break }
        contents += chunk[0..<count]
    }
    var result: [FilePath] = []
    for line in contents.split(separator: UInt8(ascii: "\n")) {
        // "<id> <parent> <major:minor> <root> <mount point> …"; the kernel writes space, tab, newline and
        // backslash in paths as three octal digits after a backslash.
        let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: false)
        guard fields.count >= 5 else { continue }
        let mountPoint = FilePath(String(decoding: unescapeOctal(fields[4]), as: UTF8.self))
        if mountPoint.starts(with: directory) { result.append(mountPoint) }
    }
    return result
}

/// Decodes mountinfo's `\ooo` escapes.
private func unescapeOctal(_ field: ArraySlice<UInt8>) -> [UInt8] {
    var out: [UInt8] = []
    var index = field.startIndex
    while index < field.endIndex {
        let byte = field[index]
        if byte == UInt8(ascii: "\\"), index + 3 < field.endIndex,
            let value = UInt8(String(decoding: field[(index + 1)..<(index + 4)], as: UTF8.self), radix: 8)
        {
            out.append(value)
            index += 4
        } else {
            out.append(byte)
            index += 1
        }
    }
    return out
}

/// Deletes `path` and everything below it without following symlinks or crossing into another filesystem.
private func removeTree(_ path: FilePath) throws(BenchmarkError) {
    var info = stat()
    guard path.withPlatformString({ lstat($0, &info) }) == 0 else { throw .systemCall("lstat \(path)") }
    let fd = path.withPlatformString { open($0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
    guard fd >= 0 else { throw .systemCall("open \(path)") }
    try removeContents(of: fd, device: info.st_dev, path: path)
    guard path.withPlatformString({ rmdir($0) }) == 0 else { throw .systemCall("rmdir \(path)") }
}

/// Empties the directory open as `fd` (and closes it); refuses entries on another device than `device`.
private func removeContents(of fd: CInt, device: dev_t, path: FilePath) throws(BenchmarkError) {
    guard let handle = fdopendir(fd) else {
        close(fd)
        throw .systemCall("fdopendir \(path)")
    }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    for name in names {
        var info = stat()
        guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { throw .systemCall("stat \(path)/\(name)") }
        guard info.st_dev == device else {
            throw BenchmarkError(description: "\(path)/\(name) is on another filesystem; not removing it")
        }
        if info.st_mode & S_IFMT == S_IFDIR {
            let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard child >= 0 else { throw .systemCall("open \(path)/\(name)") }
            try removeContents(of: child, device: device, path: path.appending(name))
            guard unlinkat(fd, name, AT_REMOVEDIR) == 0 else { throw .systemCall("rmdir \(path)/\(name)") }
        } else {
            guard unlinkat(fd, name, 0) == 0 else { throw .systemCall("unlink \(path)/\(name)") }
        }
    }
}
