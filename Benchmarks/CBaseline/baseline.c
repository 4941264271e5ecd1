#ifndef _GNU_SOURCE
#error "CUnionMountBenchBaseline must be built with _GNU_SOURCE (set in Package.swift cSettings)"
#endif

#include "CUnionMountBenchBaseline.h"
#include "CUnionMountShim.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

// The same one-syscall entry points the library uses (CUnionMountShim: raw syscall() per call), so both sides
// issue identical calls; the uapi values come from there too.
enum { CUMBENCH_UMOUNT_NOFOLLOW = 0x00000008 };

int cumbench_paths_are_plain(const char *const *paths, size_t count) {
    for (size_t i = 0; i < count; i++) {
        size_t length = strlen(paths[i]);
        if (length == 0 || length > CUMBENCH_FSCONFIG_VALUE_LIMIT) return 0;
        if (strpbrk(paths[i], "\\,:") != NULL) return 0;
    }
    return 1;
}

static int cumbench_set_string(int fc, const char *key, const char *value) {
    return CUnionMount_fsconfig(fc, CUnionMount_FSCONFIG_SET_STRING, key, value, 0);
}

// Closes `fd` when it is open without disturbing errno from the call that failed.
static void cumbench_close_quietly(int fd) {
    if (fd < 0) return;
    int saved = errno;
    close(fd);
    errno = saved;
}

// The mount half of a new-mount-API cycle: fsopen … move_mount, both fds closed.
static int cumbench_mount_new_api(const char *const *lowers, size_t lower_count, const char *upper, const char *work,
                                  const char *target, const char **failed_call) {
    *failed_call = NULL;
    int fc = CUnionMount_fsopen("overlay", CUnionMount_FSOPEN_CLOEXEC);
    if (fc < 0) {
        *failed_call = "fsopen";
        return -1;
    }
    if (cumbench_set_string(fc, "source", "overlay") != 0) goto config_failed;
    for (size_t i = 0; i < lower_count; i++) {
        if (cumbench_set_string(fc, "lowerdir+", lowers[i]) != 0) goto config_failed;
    }
    if (cumbench_set_string(fc, "upperdir", upper) != 0) goto config_failed;
    if (cumbench_set_string(fc, "workdir", work) != 0) goto config_failed;
    if (CUnionMount_fsconfig(fc, CUnionMount_FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) goto config_failed;

    int mfd = CUnionMount_fsmount(fc, CUnionMount_FSMOUNT_CLOEXEC, 0);
    if (mfd < 0) {
        *failed_call = "fsmount";
        cumbench_close_quietly(fc);
        return -1;
    }
    if (CUnionMount_move_mount(mfd, "", AT_FDCWD, target, CUnionMount_MOVE_MOUNT_F_EMPTY_PATH) != 0) {
        *failed_call = "move_mount";
        cumbench_close_quietly(mfd);
        cumbench_close_quietly(fc);
        return -1;
    }
    close(mfd);
    close(fc);
    return 0;

config_failed:
    *failed_call = "fsconfig";
    cumbench_close_quietly(fc);
    return -1;
}

int cumbench_cycle_new_mount_api(const char *const *lowers, size_t lower_count, const char *upper, const char *work,
                                 const char *target, const char **failed_call) {
    if (cumbench_mount_new_api(lowers, lower_count, upper, work, target, failed_call) != 0) return -1;
    if (umount2(target, CUMBENCH_UMOUNT_NOFOLLOW) != 0) {
        *failed_call = "umount2";
        return -1;
    }
    return 0;
}

// One store record write: the fixed-width `mounts` record at offset 0, as StoreMountRecordFile writes it.
static int cumbench_write_record(int fd, const char *record, const char **failed_call) {
    if (pwrite(fd, record, strlen(record), 0) < 0) {
        *failed_call = "pwrite";
        return -1;
    }
    return 0;
}

int cumbench_cycle_store_shaped(int lock_fd, const char *container_record, const char *mounts_record,
                                const char *const *lowers, size_t lower_count, const char *upper, const char *work,
                                const char *target, const char **failed_call) {
    static const char pending[] = "count=0000000000\npending=mount  \n";
    static const char counted[] = "count=0000000001\npending=none   \n";
    static const char unmounted[] = "count=0000000000\npending=none   \n";
    char buffer[4096];
    *failed_call = NULL;
    // mount: the lock, container.conf (openat, fstat, read, close), the mounts record (openat, read, pwrite
    // pending), the mount, pwrite count, close, unlock.
    if (flock(lock_fd, LOCK_EX) != 0) return (*failed_call = "flock"), -1;
    int record = open(container_record, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (record < 0) return (*failed_call = "open"), -1;
    struct stat info;
    if (fstat(record, &info) != 0 || read(record, buffer, sizeof buffer) < 0) {
        *failed_call = "read";
        cumbench_close_quietly(record);
        return -1;
    }
    close(record);
    int mounts = open(mounts_record, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (mounts < 0) return (*failed_call = "open"), -1;
    if (read(mounts, buffer, 66) < 0 || cumbench_write_record(mounts, pending, failed_call) != 0
        || cumbench_mount_new_api(lowers, lower_count, upper, work, target, failed_call) != 0
        || cumbench_write_record(mounts, counted, failed_call) != 0) {
        if (*failed_call == NULL) *failed_call = "read";
        cumbench_close_quietly(mounts);
        return -1;
    }
    close(mounts);
    flock(lock_fd, LOCK_UN);
    // unmount: the lock, the mounts record (openat, read), umount2, pwrite count 0, close, unlock.
    if (flock(lock_fd, LOCK_EX) != 0) return (*failed_call = "flock"), -1;
    mounts = open(mounts_record, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (mounts < 0) return (*failed_call = "open"), -1;
    if (read(mounts, buffer, 66) < 0) {
        *failed_call = "read";
        cumbench_close_quietly(mounts);
        return -1;
    }
    if (umount2(target, CUMBENCH_UMOUNT_NOFOLLOW) != 0) {
        *failed_call = "umount2";
        cumbench_close_quietly(mounts);
        return -1;
    }
    int written = cumbench_write_record(mounts, unmounted, failed_call);
    close(mounts);
    flock(lock_fd, LOCK_UN);
    return written;
}

// Appends `length` bytes of `text` at `*used`; 0 when they do not fit in `capacity` bytes plus a NUL.
static int cumbench_append(char *buffer, size_t capacity, size_t *used, const char *text, size_t length) {
    if (*used + length > capacity) return 0;
    memcpy(buffer + *used, text, length);
    *used += length;
    return 1;
}

#define CUMBENCH_APPEND_LITERAL(buffer, used, literal) \
    cumbench_append(buffer, CUMBENCH_LEGACY_DATA_LIMIT, used, literal, sizeof(literal) - 1)
#define CUMBENCH_APPEND_STRING(buffer, used, string) \
    cumbench_append(buffer, CUMBENCH_LEGACY_DATA_LIMIT, used, string, strlen(string))

int cumbench_cycle_legacy_mount(const char *const *lowers, size_t lower_count, const char *upper, const char *work,
                                const char *target, const char **failed_call) {
    *failed_call = NULL;
    char data[CUMBENCH_LEGACY_DATA_LIMIT + 1];
    size_t used = 0;
    int fits = CUMBENCH_APPEND_LITERAL(data, &used, "lowerdir=");
    for (size_t i = 0; fits && i < lower_count; i++) {
        if (i > 0) fits = CUMBENCH_APPEND_LITERAL(data, &used, ":");
        fits = fits && CUMBENCH_APPEND_STRING(data, &used, lowers[i]);
    }
    fits = fits && CUMBENCH_APPEND_LITERAL(data, &used, ",upperdir=") && CUMBENCH_APPEND_STRING(data, &used, upper)
        && CUMBENCH_APPEND_LITERAL(data, &used, ",workdir=") && CUMBENCH_APPEND_STRING(data, &used, work);
    if (!fits) {
        *failed_call = "options";
        errno = E2BIG;
        return -1;
    }
    data[used] = '\0';
    if (mount("overlay", target, "overlay", 0, data) != 0) {
        *failed_call = "mount";
        return -1;
    }
    if (umount2(target, CUMBENCH_UMOUNT_NOFOLLOW) != 0) {
        *failed_call = "umount2";
        return -1;
    }
    return 0;
}
