import Foundation
import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// `MountTable.holders(of:)` for real: a process's working directory, a process in another mount namespace
    /// holding a copy, an open file of this process, a mount on top; and nothing once they are gone.
    @Suite(.enabled(if: KernelOverlay.available, KernelOverlay.skipReason)) struct MountHolders {
        let mounter = Mounter()

        /// A child process started in `directory`, stopped when the test ends.
        final class Child {
            let process = Process()

            init(_ arguments: [String], in directory: FilePath) throws {
                process.executableURL = URL(fileURLWithPath: arguments[0])
                process.arguments = Array(arguments.dropFirst())
                process.currentDirectoryURL = URL(fileURLWithPath: directory.string)
                try process.run()
            }

            var pid: Int32 { process.processIdentifier }

            deinit {
                // SIGKILL: a child may inherit a mask that blocks SIGTERM.
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }

        /// The holders of `target` once `condition` holds for them (children take a moment to start), or the last
        /// answer after two seconds.
        func holders(of target: FilePath, until condition: ([MountHolder]) -> Bool) throws -> [MountHolder] {
            var search = try MountTable.holders(of: target)
            for _ in 0..<200 where !condition(search.holders) {
                usleep(10_000)
                search = try MountTable.holders(of: target)
            }
            return search.holders
        }

        @Test("a cwd, a copy in another namespace, an open file and a child mount are named; then nothing")
        func holdersFound() throws {
            let stack = try LayerStack(count: 2, nameBytes: Array("h".utf8))
            try mounter.mount(.overlay(stack.spec()), at: stack.target)
            defer { _ = try? mounter.unmountRecursively(stack.target, options: UnmountOptions(lazy: true)) }
            let inside = stack.target.appending("inside")
            try makeDirectories(inside)
            #expect(try MountTable.holders(of: stack.target).holders.isEmpty)

            // A working directory.
            var sleeper: Child? = try Child(["/bin/sleep", "30"], in: inside)
            let sleeperPID = try #require(sleeper?.pid)
            var found = try holders(of: stack.target) { $0.contains { $0.processID == sleeperPID } }
            #expect(
                found.contains(MountHolder(kind: .workingDirectory(inside), processID: sleeperPID, command: "sleep")))

            // A copy in a new mount namespace (unshare(1) execs sleep in the same process).
            var namespaced: Child? = try Child(["/usr/bin/unshare", "-m", "/bin/sleep", "30"], in: "/")
            let namespacedPID = try #require(namespaced?.pid)
            found = try holders(of: stack.target) { holders in
                holders.contains {
                    guard $0.processID == namespacedPID, case .copyInMountNamespace(_, let mountPoint) = $0.kind else {
                        return false
                    }
                    return mountPoint == stack.target
                }
            }
            #expect(
                found.contains {
                    if case .copyInMountNamespace = $0.kind { return $0.processID == namespacedPID }
                    return false
                }, "\(found)")

            // An open file of this process, and a mount on top.
            let fd = open(stack.target.appending("x").string, O_RDONLY)
            #expect(fd >= 0)
            let top = stack.target.appending("inside")
            #expect(mount("tmpfs", top.string, "tmpfs", 0, nil) == 0)
            found = try MountTable.holders(of: stack.target).holders
            #expect(
                found.contains(
                    MountHolder(
                        kind: .openFile(descriptor: Int(fd), path: stack.target.appending("x")), processID: getpid(),
                        command: found.first { $0.processID == getpid() }?.command)))
            #expect(found.contains(MountHolder(kind: .childMount(top), processID: nil, command: nil)))
            #expect(umount2(top.string, 0) == 0)
            close(fd)

            // Gone: nothing holds it, and it unmounts.
            sleeper = nil
            namespaced = nil
            #expect(try holders(of: stack.target) { $0.isEmpty } == [])
            #expect(try mounter.unmount(stack.target) == .unmounted)
        }

        @Test("not a mount point is a typed error")
        func notAMountPoint() throws {
            let scratch = try Scratch("holders-plain")
            let plain = try scratch.directory("plain")
            #expect(thrown { try MountTable.holders(of: plain) }?.code == .notMounted)
        }
    }
}
