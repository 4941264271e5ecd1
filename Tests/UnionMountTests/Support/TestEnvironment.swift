import SystemPackage
import Testing
import UnionMountBenchSupport

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

/// Whether mounting tests can run here: root, overlay available, and a private mount namespace (the test
/// run is wrapped in `unshare -m --propagation private` by `.ci/test`), so nothing leaks to the host.
enum TestEnvironment {
    static let isRoot = geteuid() == 0

    /// This process is in a private mount namespace, by the package's one check
    /// (`privateMountNamespaceFailure(madeBy:)` in Benchmarks/Support, shared with the benchmarks); `.ci/test`
    /// exports `UNIONMOUNT_TEST_MOUNT_NAMESPACE` with the namespace it created, for sandboxes where PID 1's
    /// cannot be read.
    static let inPrivateMountNamespace: Bool =
        privateMountNamespaceFailure(madeBy: getenv("UNIONMOUNT_TEST_MOUNT_NAMESPACE").map { String(cString: $0) })
        == nil

    /// Root in a private mount namespace. Kernel overlay is not needed for every mounting test (fuse-overlayfs,
    /// tmpfs): the suites that need it say so with ``KernelOverlay``.
    static let canMount = isRoot && inPrivateMountNamespace

    static let mountSkipReason: Comment =
        isRoot
        ? "needs a private mount namespace: run the tests with `bash .ci/test`"
        : "needs root (mounting tests skip for other users)"
}

/// What a suite or test that mounts kernel overlay needs: `overlay` in `/proc/filesystems`. A kernel without it
/// (the kernel matrix's `Tests/kernels/run 6.12-nooverlay`) skips those, saying why, and runs the rest: the
/// fuse-overlayfs suites, the layer store on the backend it probes, mount table queries over tmpfs.
enum KernelOverlay {
    static let available = KernelFeatures.current.overlay
    static let skipReason: Comment = "needs the kernel's overlay filesystem (\"overlay\" is not in /proc/filesystems)"
    /// The kernel matrix booted this guest without the overlay module (`UNIONMOUNT_GUEST_NO_OVERLAY=1`).
    static let removedByTheMatrix = getenv("UNIONMOUNT_GUEST_NO_OVERLAY").map { String(cString: $0) } == "1"
}

/// A fresh directory under /tmp, removed with everything mounted below it unmounted first.
final class Scratch {
    let path: FilePath

    init(_ name: String = "t") throws {
        var template = Array("/tmp/unionmount-\(name)-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw Errno(rawValue: errno) }
        path = FilePath(platformString: template)
    }

    deinit {
        _ = try? Mounter().unmountRecursively(path, options: UnmountOptions(retries: 5, detachWhenBusy: true))
        if (try? MountTable.entries(source: .mountinfo).contains(where: { $0.mountPoint.starts(with: path) })) == false
        {
            removeTree(path)
        }
    }

    /// Creates a directory (and its parents) below the scratch root; `name` may hold any bytes but NUL.
    @discardableResult
    func directory(_ name: [UInt8]) throws -> FilePath {
        let path = FilePath(bytes: self.path.bytes + [UInt8(ascii: "/")] + name)
        try makeDirectories(path)
        return path
    }

    @discardableResult
    func directory(_ name: String) throws -> FilePath { try directory(Array(name.utf8)) }
}

func makeDirectories(_ path: FilePath) throws {
    var current = FilePath("/")
    for component in path.components {
        current.append(component)
        if current.withPlatformString({ mkdir($0, 0o755) }) != 0 && errno != EEXIST { throw Errno(rawValue: errno) }
    }
}

func writeFile(_ path: FilePath, _ contents: String) throws {
    let fd = path.withPlatformString { open($0, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
    guard fd >= 0 else { throw Errno(rawValue: errno) }
    defer { close(fd) }
    _ = Array(contents.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

func readFile(_ path: FilePath) -> String? {
    readSmallFile(path).map { String(decoding: $0, as: UTF8.self) }
}

func fileExists(_ path: FilePath) -> Bool {
    var info = stat()
    return path.withPlatformString { lstat($0, &info) } == 0
}

/// `rm -rf` without following symlinks; used only on scratch trees with nothing mounted in them.
func removeTree(_ path: FilePath) {
    var info = stat()
    guard path.withPlatformString({ lstat($0, &info) }) == 0 else { return }
    if info.st_mode & S_IFMT == S_IFDIR {
        if let handle = path.withPlatformString({ opendir($0) }) {
            var names: [[UInt8]] = []
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
                if name != Array(".".utf8) && name != Array("..".utf8) { names.append(name) }
            }
            closedir(handle)
            for name in names { removeTree(FilePath(bytes: path.bytes + [UInt8(ascii: "/")] + name)) }
        }
        _ = path.withPlatformString { rmdir($0) }
    } else {
        _ = path.withPlatformString { unlink($0) }
    }
}

/// The last mountinfo entry whose mount point is `target`.
func mountEntry(at target: FilePath) throws -> MountEntry? {
    try MountTable.entries(source: .mountinfo).last { $0.mountPoint == target }
}
