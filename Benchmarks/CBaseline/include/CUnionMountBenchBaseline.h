//===----------------------------------------------------------------------===//
// CUnionMountBenchBaseline: the overlay mount+unmount cycle written directly
// against the kernel, as the yardstick for unionmount-bench.
//
// Each function performs one complete cycle with no allocation on the heap:
// mount an overlay at `target`, then umount2(target, UMOUNT_NOFOLLOW). They
// return 0, or -1 with errno set and `*failed_call` naming the system call
// that failed. Paths must be at most 255 bytes and contain no `\`, `,` or
// `:` (check once with cumbench_paths_are_plain); nothing is escaped here.
//===----------------------------------------------------------------------===//
#ifndef C_UNION_MOUNT_BENCH_BASELINE_H
#define C_UNION_MOUNT_BENCH_BASELINE_H

#include <stddef.h>

/// The longest value fsconfig(2) copies for FSCONFIG_SET_STRING (the kernel takes 256 bytes with the NUL).
#define CUMBENCH_FSCONFIG_VALUE_LIMIT 255
/// The longest mount(2) data string that reaches the kernel whole (one 4096-byte page with its NUL).
#define CUMBENCH_LEGACY_DATA_LIMIT 4095

/// Returns 1 when every path is at most 255 bytes and holds none of the bytes the legacy escaping would
/// change (`\`, `,`, `:`), so the cycles below can pass it raw; 0 otherwise.
int cumbench_paths_are_plain(const char *_Nonnull const *_Nonnull paths, size_t count);

/// One cycle through the new mount API: fsopen("overlay"), fsconfig SET_STRING `source`, one `lowerdir+` per
/// layer (top first), `upperdir`, `workdir`, FSCONFIG_CMD_CREATE, fsmount, move_mount onto `target`, close
/// both fds, umount2(target, UMOUNT_NOFOLLOW).
int cumbench_cycle_new_mount_api(const char *_Nonnull const *_Nonnull lowers, size_t lower_count,
                                 const char *_Nonnull upper, const char *_Nonnull work,
                                 const char *_Nonnull target, const char *_Nullable *_Nonnull failed_call);

/// cumbench_cycle_new_mount_api with the layer store's own system calls around it, as
/// `LayerStore.mount(container:)` and `unmount(container:)` make them (17 calls, Benchmarks/README.md): flock
/// `lock_fd`; openat, fstat, read, close of `container_record`; openat and read of `mounts_record`, pwrite of
/// `pending=mount`; the mount; pwrite of `count=1`; close; unlock; then flock; openat and read of `mounts_record`;
/// umount2; pwrite of `count=0`; close; unlock. The floor of the store's overhead: the calls without the Swift.
int cumbench_cycle_store_shaped(int lock_fd, const char *_Nonnull container_record,
                                const char *_Nonnull mounts_record, const char *_Nonnull const *_Nonnull lowers,
                                size_t lower_count, const char *_Nonnull upper, const char *_Nonnull work,
                                const char *_Nonnull target, const char *_Nullable *_Nonnull failed_call);

/// One cycle through mount(2): builds `lowerdir=l0:l1:…,upperdir=u,workdir=w` in a stack buffer, calls
/// mount("overlay", target, "overlay", 0, data), then umount2(target, UMOUNT_NOFOLLOW). Fails with E2BIG
/// (failed call "options") when the string would exceed CUMBENCH_LEGACY_DATA_LIMIT bytes.
int cumbench_cycle_legacy_mount(const char *_Nonnull const *_Nonnull lowers, size_t lower_count,
                                const char *_Nonnull upper, const char *_Nonnull work,
                                const char *_Nonnull target, const char *_Nullable *_Nonnull failed_call);

#endif // C_UNION_MOUNT_BENCH_BASELINE_H
