//===----------------------------------------------------------------------===//
// CUnionMountShim: the few things Swift cannot call directly.
//
// - raw syscall() entry points for the new mount API, statmount/listmount and
//   statx (so UnionMount works with any libc, wrapper or not);
// - unshare(2), which Swift's Glibc module hides (it needs _GNU_SOURCE);
// - a mount(2) performed from another working directory, on a thread of its
//   own that first unshares its fs struct, so the process cwd never moves
//   (and, for mount-fd, its descriptor table, so descriptors at fixed numbers
//   replace none of the process's);
// - constants from kernel uapi headers. Those headers stay out of this file:
//   they clash with Glibc's (ambiguous MS_BIND), so values are exported as
//   `extern const` and defined in shim.c.
//
// Every function is one system call: it returns what the kernel returned and
// leaves errno set on failure. Policy lives in Swift.
//===----------------------------------------------------------------------===//
#ifndef C_UNION_MOUNT_SHIM_H
#define C_UNION_MOUNT_SHIM_H

#ifdef __linux__

#include <stddef.h>
#include <stdint.h>

/// fsopen(2).
int CUnionMount_fsopen(const char *_Nonnull fsname, unsigned int flags);
/// fsconfig(2); `key` and `value` may be NULL as the command requires.
int CUnionMount_fsconfig(int fd, unsigned int cmd, const char *_Nullable key, const void *_Nullable value, int aux);
/// fsmount(2).
int CUnionMount_fsmount(int fd, unsigned int flags, unsigned int attr_flags);
/// move_mount(2).
int CUnionMount_move_mount(int from_dfd, const char *_Nonnull from_path, int to_dfd, const char *_Nonnull to_path,
                           unsigned int flags);
/// unshare(2).
int CUnionMount_unshare(int flags);
/// open_tree(2) (Linux 5.2+).
int CUnionMount_open_tree(int dfd, const char *_Nonnull path, unsigned int flags);
/// mount_setattr(2) (Linux 5.12+) of `tree_fd` itself (`""`, `AT_EMPTY_PATH`) setting `MOUNT_ATTR_IDMAP` with the
/// user namespace `userns_fd`.
int CUnionMount_mount_setattr_idmap(int tree_fd, int userns_fd);
/// clone(2) with `CLONE_NEWUSER | SIGCHLD` (fork-like, no shared memory): the child, in a new user namespace,
/// closes `write_fd`, reads `read_fd` until end of file and exits 0; it runs no other code. Returns the child's
/// pid (or -1) in the caller. For writing `/proc/<pid>/uid_map` and opening `/proc/<pid>/ns/user` from outside.
int CUnionMount_clone_user_namespace_holder(int read_fd, int write_fd);

/// statmount(2) (Linux 6.8+): fills `buf` with a `struct statmount` for the mount whose unique id is `mnt_id`.
/// `mnt_ns_id` 0 means the caller's namespace.
int CUnionMount_statmount(uint64_t mnt_id, uint64_t mnt_ns_id, uint64_t param, void *_Nonnull buf, size_t bufsize,
                          unsigned int flags);
/// listmount(2) (Linux 6.8+): writes up to `count` unique mount ids of the children of `mnt_id` after `last_id`.
long CUnionMount_listmount(uint64_t mnt_id, uint64_t mnt_ns_id, uint64_t last_id, uint64_t *_Nonnull buf,
                           size_t count, unsigned int flags);

/// The mount facts statx(2) gives for one path.
typedef struct {
    uint64_t mount_id;        ///< STATX_MNT_ID (or STATX_MNT_ID_UNIQUE when asked and known)
    uint64_t attributes;      ///< stx_attributes
    uint64_t attributes_mask; ///< stx_attributes_mask
    uint32_t mask;            ///< stx_mask: what the kernel filled
    uint32_t dev_major, dev_minor;
    uint64_t ino;
    uint16_t mode;
} CUnionMount_statx_result;

/// statx(2) asking for the mount id (unique id when `unique` is non-zero and the kernel has it).
int CUnionMount_statx_mount(int dirfd, const char *_Nonnull path, int flags, int unique,
                            CUnionMount_statx_result *_Nonnull out);

/// Performs mount(2) on a new thread that first calls unshare(CLONE_FS) and fchdir(dirfd), so relative
/// paths in `data` resolve against that directory while the process working directory never changes.
/// Returns 0, or -1 with the failing call's errno in `*err` and its name in `*failed_call`
/// ("pthread_create", "unshare", "fchdir" or "mount").
int CUnionMount_mount_in_directory(int dirfd, const char *_Nonnull source, const char *_Nonnull target,
                                   const char *_Nonnull fstype, unsigned long flags, const void *_Nullable data,
                                   int *_Nonnull err, const char *_Nullable *_Nonnull failed_call);

/// Performs mount(2) on a new thread that first calls unshare(CLONE_FS | CLONE_FILES) (a private fs struct and
/// a private copy of the descriptor table), then for each of the `count` NUL-terminated `paths` (stored one after
/// the other) open(2) with O_PATH|O_DIRECTORY|O_CLOEXEC and, unless that returned `numbers[i]`, dup3(2) onto
/// `numbers[i]` and close(2) of the first descriptor; then chdir(`directory`) and mount(2). The private table is
/// closed (close_range(2), else each number) before the thread ends, so the process's descriptors never change.
/// Returns 0, or -1 with the failing call's errno in `*err`, its name in `*failed_call` ("pthread_create",
/// "unshare", "open", "dup3", "chdir" or "mount") and, for open and dup3, the path's index in `*failed_index`.
int CUnionMount_mount_with_descriptors(const char *_Nonnull paths, const int *_Nonnull numbers, size_t count,
                                       const char *_Nonnull directory, const char *_Nonnull source,
                                       const char *_Nonnull target, const char *_Nonnull fstype, unsigned long flags,
                                       const void *_Nullable data, int *_Nonnull err,
                                       const char *_Nullable *_Nonnull failed_call, size_t *_Nonnull failed_index);

/// lgetxattr(2); Swift's Glibc module does not import `<sys/xattr.h>`.
long CUnionMount_lgetxattr(const char *_Nonnull path, const char *_Nonnull name, void *_Nullable value, size_t size);
/// lsetxattr(2).
int CUnionMount_lsetxattr(const char *_Nonnull path, const char *_Nonnull name, const void *_Nullable value,
                          size_t size, int flags);
/// llistxattr(2): the NUL-separated names of a file's extended attributes (symbolic links not followed).
long CUnionMount_llistxattr(const char *_Nonnull path, char *_Nullable list, size_t size);
/// lremovexattr(2).
int CUnionMount_lremovexattr(const char *_Nonnull path, const char *_Nonnull name);
/// renameat2(2), called through syscall(2); `flags` is 0, `CUnionMount_RENAME_NOREPLACE` or
/// `CUnionMount_RENAME_EXCHANGE`.
int CUnionMount_renameat2(int olddirfd, const char *_Nonnull oldpath, int newdirfd, const char *_Nonnull newpath,
                          unsigned int flags);
/// `RENAME_NOREPLACE`: fail with EEXIST instead of replacing the new path.
extern const unsigned int CUnionMount_RENAME_NOREPLACE;
/// `RENAME_EXCHANGE`: swap the two paths atomically.
extern const unsigned int CUnionMount_RENAME_EXCHANGE;
/// setxattr(2): follows a final symbolic link (or /proc magic link, which is what it is for here).
int CUnionMount_setxattr(const char *_Nonnull path, const char *_Nonnull name, const void *_Nullable value,
                         size_t size, int flags);
/// Makes this thread's `LC_CTYPE` the locale `name` (newlocale(3) + uselocale(3)), leaving the process locale
/// alone; returns a token for `CUnionMount_restore_locale`, or NULL when the locale does not exist.
void *_Nullable CUnionMount_use_ctype_locale(const char *_Nonnull name);
/// Gives the thread back the locale it had before `CUnionMount_use_ctype_locale` and frees the one it made.
void CUnionMount_restore_locale(void *_Nonnull token);
/// listxattr(2): follows a final symbolic link (or /proc magic link: the names of what an O_PATH descriptor holds).
long CUnionMount_listxattr(const char *_Nonnull path, char *_Nullable list, size_t size);
/// getxattr(2): follows a final symbolic link (or /proc magic link, as listxattr).
long CUnionMount_getxattr(const char *_Nonnull path, const char *_Nonnull name, void *_Nullable value, size_t size);
/// fsetxattr(2) on an open file (not an O_PATH descriptor).
int CUnionMount_fsetxattr(int fd, const char *_Nonnull name, const void *_Nullable value, size_t size, int flags);
/// openat2(2) (Linux 5.6+), called through syscall(2) with a `struct open_how` of `flags`, `mode` and `resolve`
/// (`CUnionMount_RESOLVE_*`).
int CUnionMount_openat2(int dirfd, const char *_Nonnull path, uint64_t flags, uint64_t mode, uint64_t resolve);
/// `RESOLVE_NO_XDEV`: the path may not cross a mount point.
extern const uint64_t CUnionMount_RESOLVE_NO_XDEV;
/// `RESOLVE_NO_MAGICLINKS`: no /proc magic links (`/proc/self/fd/N` and the like).
extern const uint64_t CUnionMount_RESOLVE_NO_MAGICLINKS;
/// `RESOLVE_NO_SYMLINKS`: no symbolic link at all, in any component.
extern const uint64_t CUnionMount_RESOLVE_NO_SYMLINKS;
/// `RESOLVE_BENEATH`: the path may not leave the directory (`..` past it and absolute links fail).
extern const uint64_t CUnionMount_RESOLVE_BENEATH;
/// `RESOLVE_IN_ROOT`: the directory is the root for the lookup (`..`, absolute paths and links stay inside it).
extern const uint64_t CUnionMount_RESOLVE_IN_ROOT;
/// syncfs(2): writes out the filesystem holding `fd`.
int CUnionMount_syncfs(int fd);
/// major(3) and minor(3) of a device number.
unsigned int CUnionMount_major(uint64_t device);
unsigned int CUnionMount_minor(uint64_t device);
/// makedev(3) of a major and minor device number.
uint64_t CUnionMount_makedev(unsigned int major, unsigned int minor);

extern const int CUnionMount_CLONE_NEWNS;
extern const int CUnionMount_CLONE_NEWUSER;
extern const int CUnionMount_CLONE_FS;
extern const int CUnionMount_O_PATH;

extern const unsigned int CUnionMount_OPEN_TREE_CLONE;
extern const unsigned int CUnionMount_OPEN_TREE_CLOEXEC;
extern const unsigned int CUnionMount_FSOPEN_CLOEXEC;
extern const unsigned int CUnionMount_FSMOUNT_CLOEXEC;
extern const unsigned int CUnionMount_FSCONFIG_SET_FLAG;
extern const unsigned int CUnionMount_FSCONFIG_SET_STRING;
extern const unsigned int CUnionMount_FSCONFIG_SET_BINARY;
extern const unsigned int CUnionMount_FSCONFIG_SET_PATH;
extern const unsigned int CUnionMount_FSCONFIG_SET_PATH_EMPTY;
extern const unsigned int CUnionMount_FSCONFIG_SET_FD;
extern const unsigned int CUnionMount_FSCONFIG_CMD_CREATE;
extern const unsigned int CUnionMount_FSCONFIG_CMD_RECONFIGURE;
extern const unsigned int CUnionMount_MOVE_MOUNT_F_EMPTY_PATH;

extern const unsigned int CUnionMount_MOUNT_ATTR_RDONLY;
extern const unsigned int CUnionMount_MOUNT_ATTR_NOSUID;
extern const unsigned int CUnionMount_MOUNT_ATTR_NODEV;
extern const unsigned int CUnionMount_MOUNT_ATTR_NOEXEC;
extern const unsigned int CUnionMount_MOUNT_ATTR_RELATIME;
extern const unsigned int CUnionMount_MOUNT_ATTR_NOATIME;
extern const unsigned int CUnionMount_MOUNT_ATTR_STRICTATIME;
extern const unsigned int CUnionMount_MOUNT_ATTR_NODIRATIME;
extern const unsigned int CUnionMount_MOUNT_ATTR_NOSYMFOLLOW;

extern const uint64_t CUnionMount_STATX_ATTR_MOUNT_ROOT;
extern const uint64_t CUnionMount_STATX_MNT_ID;
extern const uint64_t CUnionMount_STATX_MNT_ID_UNIQUE;

#endif // __linux__
#endif // C_UNION_MOUNT_SHIM_H

// The byte scan of the mountinfo parser (scan.c): no system call, no policy.
#ifndef C_UNION_MOUNT_SHIM_SCAN_H
#define C_UNION_MOUNT_SHIM_SCAN_H
#include <stddef.h>
#include <stdint.h>
/// Finds the end of the line that starts at `base[from]`: the position of the next `\n` before `total`, or `total`.
/// Sets `*count` to the number of spaces (0x20) in the line and writes the positions of the first `capacity` of
/// them to `spaces`, in order. Reads only `base[from..<total]`. Uses AVX2 when the CPU has it, SSE2 otherwise on
/// x86-64, a byte loop elsewhere.
size_t CUnionMount_scan_line(const uint8_t *_Nonnull base, size_t from, size_t total, size_t *_Nonnull spaces,
                             size_t capacity, size_t *_Nonnull count);

/// One line found by `CUnionMount_scan_lines`; positions count from the scan's `from`.
typedef struct {
    uint32_t end;    ///< where the line's `\n` is (for a last line without one: `total`)
    uint32_t spaces; ///< the spaces recorded up to the line's end: its own are those after the previous line's
    uint64_t digits; ///< bit i: the line's byte i (i < 64, before `total`) is an ASCII digit or a space
} CUnionMount_line;

/// Scans the lines from `base[from]` on in 64-byte blocks and returns how many complete lines it recorded in
/// `lines`, each with its spaces (0x20) appended in order to `spaces`. A last line without `\n` counts when
/// the scan reaches `total`. Stops at the first block that starts once `space_capacity` spaces or
/// `line_capacity` lines are recorded or 4 GiB are read; the caller resumes after the last line returned (0
/// lines: a single line too large for one call). `spaces` must have room for `space_capacity + 64` entries
/// and `lines` for `line_capacity + 65`. `implementation`: 0 the best the CPU has (AVX-512 with VBMI2, AVX2,
/// a byte loop); 1, 2, 3 one of those, or the best below it. All write the same records.
size_t CUnionMount_scan_lines(const uint8_t *_Nonnull base, size_t from, size_t total, uint32_t *_Nonnull spaces,
                              size_t space_capacity, CUnionMount_line *_Nonnull lines, size_t line_capacity,
                              int implementation);
#endif // C_UNION_MOUNT_SHIM_SCAN_H
