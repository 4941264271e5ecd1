import SystemPackage
import UnionMount

// assemble-rootfs: a container's root filesystem from image layers, the way a runtime builds one.
//
//     assemble-rootfs CONTAINER LAYER...       layers top first; prints the strategy and the rootfs path
//     assemble-rootfs --teardown CONTAINER     unmounts CONTAINER/rootfs and removes it if it is empty
//
// CONTAINER/upper takes the container's writes and CONTAINER/work is overlay's scratch space; teardown keeps
// both (the runtime decides whether the container's changes are committed or thrown away).
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Prints `message` on stderr and exits with `status` (1: failed, 64: bad usage).
func fail(_ message: String, status: Int32 = 1) -> Never {
    let line = Array("assemble-rootfs: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    exit(status)
}

var arguments = Array(CommandLine.arguments.dropFirst())
let teardown = arguments.first == "--teardown"
if teardown { arguments.removeFirst() }
guard let container = arguments.first.map({ FilePath($0) }), teardown ? arguments.count == 1 : arguments.count >= 2
else {
    fail("usage: assemble-rootfs CONTAINER LAYER... | assemble-rootfs --teardown CONTAINER", status: 64)
}
let rootfs = container.appending("rootfs")
let mounter = Mounter()

do {
    if teardown {
        let outcome = try mounter.unmount(rootfs)  // retries while busy; `not-mounted` if it was not
        print("unmounted: \(outcome.rawValue)")
        // rmdir(2), never a recursive delete: if anything is still mounted or written there, it stays.
        if rootfs.withPlatformString({ rmdir($0) }) == 0 {
            print("removed: \(rootfs)")
        } else {
            print("kept: \(rootfs) (\(String(cString: strerror(errno))))")
        }
    } else {
        let upper = container.appending("upper")
        let work = container.appending("work")
        for directory in [container, upper, work, rootfs]
        where directory.withPlatformString({ mkdir($0, 0o755) }) != 0 && errno != EEXIST {
            fail("cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        let spec = OverlaySpec(
            lowerDirectories: arguments.dropFirst().map { FilePath($0) }, upperDirectory: upper,
            workDirectory: work, source: "assemble-rootfs")
        // Plans for this kernel (fsopen/fsconfig/fsmount, or mount(2)), mounts, explains a refusal.
        let plan = try mounter.mount(.overlay(spec), at: rootfs)
        print("strategy: \(plan.strategy.rawValue)")
        print("rootfs: \(rootfs)")
    }
} catch {
    fail("\(error)")
}
