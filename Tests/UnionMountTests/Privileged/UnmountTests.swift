import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// umount2(2) with retries, lazy detach, "not mounted", recursion and the scoped helpers.
    @Suite(.enabled(if: KernelOverlay.available, KernelOverlay.skipReason)) struct Unmounting {
        let mounter = Mounter()

        private func mountedStack() throws -> LayerStack {
            let stack = try LayerStack(count: 2, nameBytes: Array("l".utf8))
            try mounter.mount(.overlay(stack.spec()), at: stack.target)
            return stack
        }

        @Test("not mounted is an outcome, not an error")
        func notMounted() throws {
            let scratch = try Scratch("notmounted")
            #expect(try mounter.unmount(try scratch.directory("plain")) == .notMounted)
            #expect(try mounter.unmount(scratch.path.appending("absent")) == .notMounted)
        }

        @Test("busy: bounded retries, then a typed error; or a lazy detach when asked")
        func busy() throws {
            let stack = try mountedStack()
            let fd = open(stack.target.appending("x").string, O_RDONLY)
            #expect(fd >= 0)
            let error = try #require(throws: UnionMountError.self) {
                try mounter.unmount(stack.target, options: UnmountOptions(retries: 2, retryInterval: .milliseconds(1)))
            }
            #expect(error.code == .busy)
            #expect(error.errno == .resourceBusy)
            #expect(error.systemCall == "umount2")
            // The error names what holds the mount: this process's open file.
            let pid = getpid()
            #expect(
                error.diagnoses.contains {
                    if case .heldBy(let holder) = $0, holder.processID == pid, case .openFile = holder.kind {
                        return true
                    }
                    return false
                }, "\(error.diagnoses)")
            #expect(try mountEntry(at: stack.target) != nil)
            let outcome = try mounter.unmount(
                stack.target, options: UnmountOptions(retries: 1, retryInterval: .milliseconds(1), detachWhenBusy: true)
            )
            #expect(outcome == .detached)
            #expect(try mountEntry(at: stack.target) == nil)
            close(fd)
        }

        @Test("a busy mount freed during the retries is unmounted")
        func busyThenFree() async throws {
            let stack = try mountedStack()
            let fd = open(stack.target.appending("x").string, O_RDONLY)
            let closer = Task {
                try await Task.sleep(for: .milliseconds(60))
                close(fd)
            }
            let outcome = try mounter.unmount(
                stack.target, options: UnmountOptions(retries: 100, retryInterval: .milliseconds(5)))
            try await closer.value
            #expect(outcome == .unmounted)
        }

        @Test("lazy detach on request")
        func lazy() throws {
            let stack = try mountedStack()
            #expect(try mounter.unmount(stack.target, options: UnmountOptions(lazy: true)) == .detached)
            #expect(try mountEntry(at: stack.target) == nil)
        }

        @Test("recursive: everything under a path, deepest first; /a is not under /ab")
        func recursive() throws {
            let stack = try mountedStack()
            let inner = stack.target.appending("inner")
            try makeDirectories(inner)
            #expect(mount("tmpfs", inner.string, "tmpfs", 0, nil) == 0)
            #expect(mount("tmpfs", inner.string, "tmpfs", 0, nil) == 0)  // stacked on the same point
            let sibling = FilePath(stack.target.string + "b")
            try makeDirectories(sibling)
            #expect(mount("tmpfs", sibling.string, "tmpfs", 0, nil) == 0)
            defer { umount2(sibling.string, 0) }

            let unmounted = try mounter.unmountRecursively(stack.target)
            #expect(unmounted == [inner, inner, stack.target])
            #expect(try mountEntry(at: stack.target) == nil)
            #expect(try mountEntry(at: sibling) != nil)
        }

        @Test("withMount always unmounts, also when the body throws")
        func scoped() throws {
            let stack = try LayerStack(count: 2, nameBytes: Array("l".utf8))
            struct BodyFailed: Error {}
            #expect(throws: BodyFailed.self) {
                try mounter.withMount(.overlay(stack.spec()), at: stack.target) { _ in
                    #expect(readFile(stack.target.appending("x")) == "from 0")
                    throw BodyFailed()
                }
            }
            #expect(try mountEntry(at: stack.target) == nil)
            let seen = try mounter.withTemporaryMount(.overlay(stack.spec(writable: false))) { path in
                (path, readFile(path.appending("x")))
            }
            #expect(seen.1 == "from 0")
            #expect(!fileExists(seen.0))
            #expect(try mountEntry(at: seen.0) == nil)
            #expect(fileExists(stack.lowers[0].appending("x")))
        }

        @Test("a temporary mount point that stays mounted is never removed")
        func temporaryStaysMounted() throws {
            let stack = try LayerStack(count: 2, nameBytes: Array("l".utf8))
            var kept: FilePath?
            var fd: CInt = -1
            _ = try? mounter.withTemporaryMount(.overlay(stack.spec(writable: false)), in: stack.scratch.path) { path in
                kept = path
                // Stack a second mount on top; the helper unmounts only its own, so the point stays mounted.
                #expect(mount("tmpfs", path.string, "tmpfs", 0, nil) == 0)
                fd = open(path.string, O_RDONLY | O_DIRECTORY)
            }
            let path = try #require(kept)
            #expect(fileExists(path))
            close(fd)
            _ = try mounter.unmountRecursively(path)
        }
    }
}
