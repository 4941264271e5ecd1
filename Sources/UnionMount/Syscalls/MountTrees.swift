import CUnionMountShim
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// Detached mount trees and their id mappings: open_tree(2) and mount_setattr(2). Raw results and errno, like
// the rest of Syscalls.swift; what they are used for is in Plan/IDMappedLayers.swift.

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)`: a detached copy of the mount at `path`
/// (that mount only, no submounts), as a descriptor; -1 with errno set.
package func system_open_tree_clone(_ path: UnsafePointer<CChar>) -> CInt {
    CUnionMount_open_tree(AT_FDCWD, path, CUnionMount_OPEN_TREE_CLONE | CUnionMount_OPEN_TREE_CLOEXEC)
}

/// `mount_setattr(tree, "", AT_EMPTY_PATH, {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = userNamespace})`:
/// the detached tree's ids are mapped through the user namespace from now on; -1 with errno set.
package func system_mount_setattr_idmap(_ tree: CInt, _ userNamespace: CInt) -> CInt {
    CUnionMount_mount_setattr_idmap(tree, userNamespace)
}

/// `move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`: attaches a detached tree at `target`.
package func system_attach_tree(_ tree: CInt, _ target: UnsafePointer<CChar>) -> CInt {
    CUnionMount_move_mount(tree, "", AT_FDCWD, target, CUnionMount_MOVE_MOUNT_F_EMPTY_PATH)
}

/// `mount(NULL, target, NULL, MS_PRIVATE, NULL)`: the mount at `target` stops propagating to and from its peers.
package func system_make_private(_ target: UnsafePointer<CChar>) -> CInt {
    mount(nil, target, nil, UInt(MS_PRIVATE), nil)
}
