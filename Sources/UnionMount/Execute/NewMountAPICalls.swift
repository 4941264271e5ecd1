import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Makes the system calls of a ``NewMountAPIRecipe`` as ``NewMountAPIRecipe/walk(_:)`` visits its steps, and
/// remembers the first that fails (its step index, errno, and whether the fs context has log messages to read).
///
/// Values go to fsconfig(2) from where they already are (a layer's bytes from its `FilePath`, keys from string
/// literals): nothing is allocated or copied per step. The caller closes ``mountFD`` then ``context``.
struct NewMountAPICalls: NewMountAPIVisitor {
    /// The fs-context fd from fsopen(2), or -1.
    var context: CInt = -1
    /// The mount fd from fsmount(2), or -1.
    var mountFD: CInt = -1
    /// The index of the step being made.
    var index = 0
    /// The failed step: its index, errno, the call's name when it is not the step's own (`open` for a layer
    /// fd), and whether the fs context logged something about it.
    var failure: (index: Int, errno: Errno, call: String?, drain: Bool)? = nil

    /// Records the outcome of one step's call; `false` stops the walk.
    private mutating func finish(_ succeeded: Bool, drain: Bool, call: String? = nil) -> Bool {
        guard succeeded else {
            failure = (index, system_errno(), call, drain)
            return false
        }
        index += 1
        return true
    }

    mutating func fsopen(_ type: StaticString) -> Bool {
        context = system_fsopen(type.cString, CUnionMount_FSOPEN_CLOEXEC)
        return finish(context >= 0, drain: false)
    }

    mutating func setString(_ key: StaticString, _ value: UnsafeBufferPointer<UInt8>) -> Bool {
        let result = system_fsconfig(
            context, CUnionMount_FSCONFIG_SET_STRING, key.cString, UnsafeRawPointer(value.baseAddress!), 0)
        return finish(result == 0, drain: true)
    }

    mutating func setOption(_ key: String, _ value: String?) -> Bool {
        let context = self.context
        let result = key.withCString { key in
            guard let value else { return system_fsconfig(context, CUnionMount_FSCONFIG_SET_FLAG, key, nil, 0) }
            return value.withCString { system_fsconfig(context, CUnionMount_FSCONFIG_SET_STRING, key, $0, 0) }
        }
        return finish(result == 0, drain: true)
    }

    mutating func setFileDescriptor(_ key: StaticString, _ path: FilePath) -> Bool {
        let layer = withPathCString(path) { system_open($0, CUnionMount_O_PATH | O_DIRECTORY | O_CLOEXEC) }
        guard layer >= 0 else { return finish(false, drain: false, call: "open") }
        let result = system_fsconfig(context, CUnionMount_FSCONFIG_SET_FD, key.cString, nil, layer)
        let error = errno
        system_close(layer)
        errno = error
        return finish(result == 0, drain: true)
    }

    mutating func create() -> Bool {
        finish(system_fsconfig(context, CUnionMount_FSCONFIG_CMD_CREATE, nil, nil, 0) == 0, drain: true)
    }

    mutating func fsmount(_ attributes: MountFlags) -> Bool {
        mountFD = system_fsmount(context, CUnionMount_FSMOUNT_CLOEXEC, attributes.mountAttributes)
        return finish(mountFD >= 0, drain: true)
    }

    mutating func moveMount(_ target: FilePath) -> Bool {
        let mountFD = self.mountFD
        return finish(withPathCString(target) { system_move_mount(mountFD, $0) } == 0, drain: false)
    }
}

extension StaticString {
    /// The literal's NUL-terminated bytes as a C string.
    fileprivate var cString: UnsafePointer<CChar> {
        UnsafeRawPointer(utf8Start).assumingMemoryBound(to: CChar.self)
    }
}
