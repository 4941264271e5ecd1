import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    #error("UnionMount supports Linux only")
#endif

// `system_foo` is UnionMount's wrapper for the system call `foo`: it returns the raw result, leaves errno
// set, and in debug builds lets a test's ``SyscallRecorder`` answer instead of the kernel. All policy
// (retries, messages, fallbacks) lives above this file.

#if ENABLE_MOCKING
    @inline(__always)
    private func mocked(_ name: String, _ arguments: @autoclosure () -> [String], _ real: () -> CInt) -> CInt {
        guard let recorder = SyscallRecorder.current else { return real() }
        return recorder.answer(name, arguments())
    }
#else
    @inline(__always)
    private func mocked(_ name: String, _ arguments: @autoclosure () -> [String], _ real: () -> CInt) -> CInt {
        real()
    }
#endif

package func system_errno() -> Errno { Errno(rawValue: errno) }

package func system_mount(
    _ source: UnsafePointer<CChar>, _ target: UnsafePointer<CChar>, _ type: UnsafePointer<CChar>, _ flags: UInt,
    _ data: UnsafeRawPointer?
) -> CInt {
    mocked("mount", mountArguments(source, target, type, flags, data)) { mount(source, target, type, flags, data) }
}

/// mount(2)'s arguments as a recorder shows them.
private func mountArguments(
    _ source: UnsafePointer<CChar>, _ target: UnsafePointer<CChar>, _ type: UnsafePointer<CChar>, _ flags: UInt,
    _ data: UnsafeRawPointer?
) -> [String] {
    [
        String(cString: source), String(cString: target), String(cString: type), String(flags),
        data.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? "",
    ]
}

package func system_mount_in_directory(
    _ directory: CInt, _ source: UnsafePointer<CChar>, _ target: UnsafePointer<CChar>, _ type: UnsafePointer<CChar>,
    _ flags: UInt, _ data: UnsafeRawPointer?, _ failedCall: inout String
) -> CInt {
    var error: CInt = 0
    var call: UnsafePointer<CChar>? = nil
    let result = mocked("mount", mountArguments(source, target, type, flags, data)) {
        CUnionMount_mount_in_directory(directory, source, target, type, flags, data, &error, &call)
    }
    if result != 0 {
        if let call {
            failedCall = String(cString: call)
            errno = error
        } else {
            failedCall = "mount"
        }
    }
    return result
}

/// mount(2) on a new thread with a private fs struct and descriptor table, after placing each of `paths` at
/// its number in `numbers` (open(2) `O_PATH|O_DIRECTORY|O_CLOEXEC`, dup3(2)) and chdir(2) to `directory`
/// (`CUnionMount_mount_with_descriptors`). On failure `failedCall` names the call and `failedIndex` the path of a
/// failed open or dup3. A test's ``SyscallRecorder`` sees the calls that thread makes, in its order: unshare,
/// then open and dup3 per path, chdir, mount (a task-local recorder cannot reach a C thread, so they are
/// answered here, the shim not being called).
package func system_mount_with_descriptors(
    _ paths: [FilePath], _ numbers: [Int32], _ directory: UnsafePointer<CChar>, _ source: UnsafePointer<CChar>,
    _ target: UnsafePointer<CChar>, _ type: UnsafePointer<CChar>, _ flags: UInt, _ data: UnsafeRawPointer?,
    _ failedCall: inout String, _ failedIndex: inout Int
) -> CInt {
    #if ENABLE_MOCKING
        if let recorder = SyscallRecorder.current {
            func fail(_ call: String, _ index: Int = 0) -> CInt {
                failedCall = call
                failedIndex = index
                return -1
            }
            if recorder.answer("unshare", ["CLONE_FS|CLONE_FILES"]) < 0 { return fail("unshare") }
            for (index, (path, number)) in zip(paths, numbers).enumerated() {
                let fd = recorder.answer("open", [path.readable])
                if fd < 0 { return fail("open", index) }
                if fd != number, recorder.answer("dup3", [String(fd), String(number)]) < 0 {
                    return fail("dup3", index)
                }
            }
            if recorder.answer("chdir", [String(cString: directory)]) < 0 { return fail("chdir") }
            if recorder.answer("mount", mountArguments(source, target, type, flags, data)) < 0 { return fail("mount") }
            return 0
        }
    #endif
    var joined: [UInt8] = []
    joined.reserveCapacity(paths.reduce(0) { $0 + $1.length + 1 })
    for path in paths { path.withNulTerminatedBytes { joined.append(contentsOf: $0) } }
    if joined.isEmpty { joined.append(0) }  // buffers with a base address even for no paths
    let numbers = numbers.isEmpty ? [-1] : numbers
    var error: CInt = 0
    var call: UnsafePointer<CChar>? = nil
    var index = 0
    let count = min(paths.count, numbers.count)
    let result = joined.withUnsafeBufferPointer { bytes in
        numbers.withUnsafeBufferPointer { numbers in
            CUnionMount_mount_with_descriptors(
                UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self), numbers.baseAddress!,
                count, directory, source, target, type, flags, data, &error, &call, &index)
        }
    }
    if result != 0 {
        failedCall = call.map { String(cString: $0) } ?? "mount"
        failedIndex = index
        errno = error
    }
    return result
}

package func system_umount2(_ target: UnsafePointer<CChar>, _ flags: CInt) -> CInt {
    mocked("umount2", [String(cString: target), String(flags)]) { umount2(target, flags) }
}

package func system_fsopen(_ name: UnsafePointer<CChar>, _ flags: UInt32) -> CInt {
    mocked("fsopen", [String(cString: name)]) { CUnionMount_fsopen(name, flags) }
}

package func system_fsconfig(
    _ fd: CInt, _ command: UInt32, _ key: UnsafePointer<CChar>?, _ value: UnsafeRawPointer?, _ aux: CInt
) -> CInt {
    mocked(
        "fsconfig",
        [
            String(command), key.map { String(cString: $0) } ?? "",
            command == 1 ? value.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? "" : String(aux),
        ]
    ) {
        CUnionMount_fsconfig(fd, command, key, value, aux)
    }
}

package func system_fsmount(_ fd: CInt, _ flags: UInt32, _ attributes: UInt32) -> CInt {
    mocked("fsmount", [String(attributes)]) { CUnionMount_fsmount(fd, flags, attributes) }
}

package func system_move_mount(_ fd: CInt, _ target: UnsafePointer<CChar>) -> CInt {
    mocked("move_mount", [String(cString: target)]) {
        CUnionMount_move_mount(fd, "", AT_FDCWD, target, CUnionMount_MOVE_MOUNT_F_EMPTY_PATH)
    }
}

package func system_open(_ path: UnsafePointer<CChar>, _ flags: CInt) -> CInt {
    mocked("open", [String(cString: path)]) { open(path, flags) }
}

package func system_close(_ fd: CInt) {
    #if ENABLE_MOCKING
        if SyscallRecorder.current != nil, fd >= 1_000_000 { return }
    #endif
    _ = close(fd)
}

package func system_read(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if ENABLE_MOCKING
        if let recorder = SyscallRecorder.current, fd >= 1_000_000 { return recorder.readMessage(into: buffer, count) }
    #endif
    return read(fd, buffer, count)
}

/// Runs `body` with a C string of the path's bytes (the path's own storage where the layout allows; see
/// `FilePath.withNulTerminatedBytes`).
@inline(__always)
package func withPathCString<R>(_ path: FilePath, _ body: (UnsafePointer<CChar>) -> R) -> R {
    path.withNulTerminatedBytes { body(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self)) }
}
