#ifndef _GNU_SOURCE
#error "CUnionMountShim must be built with _GNU_SOURCE (set in Package.swift cSettings)"
#endif

#ifdef __linux__

#include "CUnionMountShim.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

// System call numbers are the same on every architecture for these (asm-generic numbering since 5.x).
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_statmount
#define SYS_statmount 457
#endif
#ifndef SYS_listmount
#define SYS_listmount 458
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_statx
#error "statx is needed (Linux 4.11+ headers)"
#endif

// uapi values, stable ABI (include/uapi/linux/mount.h, stat.h).
const int CUnionMount_CLONE_NEWNS = CLONE_NEWNS;
const int CUnionMount_CLONE_NEWUSER = CLONE_NEWUSER;
const int CUnionMount_CLONE_FS = CLONE_FS;
const int CUnionMount_O_PATH = O_PATH;

const unsigned int CUnionMount_OPEN_TREE_CLONE = 1;
const unsigned int CUnionMount_OPEN_TREE_CLOEXEC = O_CLOEXEC;
const unsigned int CUnionMount_FSOPEN_CLOEXEC = 0x00000001;
const unsigned int CUnionMount_FSMOUNT_CLOEXEC = 0x00000001;
const unsigned int CUnionMount_FSCONFIG_SET_FLAG = 0;
const unsigned int CUnionMount_FSCONFIG_SET_STRING = 1;
const unsigned int CUnionMount_FSCONFIG_SET_BINARY = 2;
const unsigned int CUnionMount_FSCONFIG_SET_PATH = 3;
const unsigned int CUnionMount_FSCONFIG_SET_PATH_EMPTY = 4;
const unsigned int CUnionMount_FSCONFIG_SET_FD = 5;
const unsigned int CUnionMount_FSCONFIG_CMD_CREATE = 6;
const unsigned int CUnionMount_FSCONFIG_CMD_RECONFIGURE = 7;
const unsigned int CUnionMount_MOVE_MOUNT_F_EMPTY_PATH = 0x00000004;

const unsigned int CUnionMount_MOUNT_ATTR_RDONLY = 0x00000001;
const unsigned int CUnionMount_MOUNT_ATTR_NOSUID = 0x00000002;
const unsigned int CUnionMount_MOUNT_ATTR_NODEV = 0x00000004;
const unsigned int CUnionMount_MOUNT_ATTR_NOEXEC = 0x00000008;
const unsigned int CUnionMount_MOUNT_ATTR_RELATIME = 0x00000000;
const unsigned int CUnionMount_MOUNT_ATTR_NOATIME = 0x00000010;
const unsigned int CUnionMount_MOUNT_ATTR_STRICTATIME = 0x00000020;
const unsigned int CUnionMount_MOUNT_ATTR_NODIRATIME = 0x00000080;
const unsigned int CUnionMount_MOUNT_ATTR_NOSYMFOLLOW = 0x00200000;

const uint64_t CUnionMount_STATX_ATTR_MOUNT_ROOT = 0x00002000;
const uint64_t CUnionMount_STATX_MNT_ID = 0x00001000;
const uint64_t CUnionMount_STATX_MNT_ID_UNIQUE = 0x00004000;

int CUnionMount_fsopen(const char *fsname, unsigned int flags) {
    return (int)syscall(SYS_fsopen, fsname, flags);
}

int CUnionMount_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux) {
    return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}

int CUnionMount_fsmount(int fd, unsigned int flags, unsigned int attr_flags) {
    return (int)syscall(SYS_fsmount, fd, flags, attr_flags);
}

int CUnionMount_open_tree(int dfd, const char *path, unsigned int flags) {
    return (int)syscall(SYS_open_tree, dfd, path, flags);
}

/// `struct mount_attr` of <linux/mount.h> (MOUNT_ATTR_SIZE_VER0, 32 bytes), declared here: the uapi header
/// clashes with Glibc's.
struct CUnionMount_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

int CUnionMount_mount_setattr_idmap(int tree_fd, int userns_fd) {
    struct CUnionMount_mount_attr attr = {.attr_set = 0x00100000 /* MOUNT_ATTR_IDMAP */, .userns_fd = (uint64_t)userns_fd};
    return (int)syscall(SYS_mount_setattr, tree_fd, "", AT_EMPTY_PATH, &attr, sizeof attr);
}

int CUnionMount_clone_user_namespace_holder(int read_fd, int write_fd) {
    long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);
    if (pid == 0) {
        // The child of a possibly multithreaded process: raw system calls only, then exit.
        syscall(SYS_close, write_fd);
        char byte;
        for (;;) {
            long count = syscall(SYS_read, read_fd, &byte, 1);
            if (count == 0 || (count < 0 && errno != EINTR)) break;
        }
        syscall(SYS_exit_group, 0);
    }
    return (int)pid;
}

int CUnionMount_move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path, unsigned int flags) {
    return (int)syscall(SYS_move_mount, from_dfd, from_path, to_dfd, to_path, flags);
}

long CUnionMount_lgetxattr(const char *path, const char *name, void *value, size_t size) {
    return (long)lgetxattr(path, name, value, size);
}

int CUnionMount_lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags) {
    return lsetxattr(path, name, value, size, flags);
}

long CUnionMount_llistxattr(const char *path, char *list, size_t size) {
    return (long)llistxattr(path, list, size);
}

int CUnionMount_lremovexattr(const char *path, const char *name) {
    return lremovexattr(path, name);
}

int CUnionMount_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) {
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

const unsigned int CUnionMount_RENAME_NOREPLACE = 1; /* RENAME_NOREPLACE, <linux/fs.h> */
const unsigned int CUnionMount_RENAME_EXCHANGE = 2;  /* RENAME_EXCHANGE */

int CUnionMount_syncfs(int fd) { return syncfs(fd); }

int CUnionMount_setxattr(const char *path, const char *name, const void *value, size_t size, int flags) {
    return setxattr(path, name, value, size, flags);
}

struct CUnionMount_locale_token {
    locale_t previous;
    locale_t made;
};

void *CUnionMount_use_ctype_locale(const char *name) {
    locale_t made = newlocale(LC_CTYPE_MASK, name, (locale_t)0);
    if (made == (locale_t)0) return NULL;
    struct CUnionMount_locale_token *token = malloc(sizeof *token);
    if (token == NULL) {
        freelocale(made);
        return NULL;
    }
    token->made = made;
    token->previous = uselocale(made);
    return token;
}

void CUnionMount_restore_locale(void *token) {
    struct CUnionMount_locale_token *saved = token;
    uselocale(saved->previous);
    freelocale(saved->made);
    free(saved);
}

long CUnionMount_listxattr(const char *path, char *list, size_t size) {
    return (long)listxattr(path, list, size);
}

long CUnionMount_getxattr(const char *path, const char *name, void *value, size_t size) {
    return (long)getxattr(path, name, value, size);
}

int CUnionMount_fsetxattr(int fd, const char *name, const void *value, size_t size, int flags) {
    return fsetxattr(fd, name, value, size, flags);
}

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

// struct open_how (include/uapi/linux/openat2.h, extensible by size: 24 bytes in v0).
struct cunionmount_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

int CUnionMount_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct cunionmount_open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

// include/uapi/linux/openat2.h
const uint64_t CUnionMount_RESOLVE_NO_XDEV = 0x01;
const uint64_t CUnionMount_RESOLVE_NO_MAGICLINKS = 0x02;
const uint64_t CUnionMount_RESOLVE_NO_SYMLINKS = 0x04;
const uint64_t CUnionMount_RESOLVE_BENEATH = 0x08;
const uint64_t CUnionMount_RESOLVE_IN_ROOT = 0x10;

unsigned int CUnionMount_major(uint64_t device) { return major(device); }
unsigned int CUnionMount_minor(uint64_t device) { return minor(device); }

uint64_t CUnionMount_makedev(unsigned int major, unsigned int minor) {
    return (uint64_t)makedev(major, minor);
}

int CUnionMount_unshare(int flags) {
    return unshare(flags);
}

// struct mnt_id_req (uapi, versioned by size: 24 bytes v0, 32 bytes v1 with mnt_ns_id).
struct cunionmount_mnt_id_req {
    uint32_t size;
    uint32_t spare;
    uint64_t mnt_id;
    uint64_t param;
    uint64_t mnt_ns_id;
};
_Static_assert(sizeof(struct cunionmount_mnt_id_req) == 32, "mnt_id_req v1 is 32 bytes");

int CUnionMount_statmount(uint64_t mnt_id, uint64_t mnt_ns_id, uint64_t param, void *buf, size_t bufsize,
                          unsigned int flags) {
    struct cunionmount_mnt_id_req req = {
        .size = mnt_ns_id ? 32 : 24, .spare = 0, .mnt_id = mnt_id, .param = param, .mnt_ns_id = mnt_ns_id};
    return (int)syscall(SYS_statmount, &req, buf, bufsize, flags);
}

long CUnionMount_listmount(uint64_t mnt_id, uint64_t mnt_ns_id, uint64_t last_id, uint64_t *buf, size_t count,
                           unsigned int flags) {
    struct cunionmount_mnt_id_req req = {
        .size = mnt_ns_id ? 32 : 24, .spare = 0, .mnt_id = mnt_id, .param = last_id, .mnt_ns_id = mnt_ns_id};
    return syscall(SYS_listmount, &req, buf, count, flags);
}

int CUnionMount_statx_mount(int dirfd, const char *path, int flags, int unique, CUnionMount_statx_result *out) {
    struct statx stx;
    memset(&stx, 0, sizeof stx);
    unsigned int mask = STATX_TYPE | STATX_INO | (unique ? 0x00004000u : 0x00001000u);
    int rc = (int)syscall(SYS_statx, dirfd, path, flags, mask, &stx);
    if (rc != 0) return rc;
    out->mount_id = stx.stx_mnt_id;
    out->attributes = stx.stx_attributes;
    out->attributes_mask = stx.stx_attributes_mask;
    out->mask = stx.stx_mask;
    out->dev_major = stx.stx_dev_major;
    out->dev_minor = stx.stx_dev_minor;
    out->ino = stx.stx_ino;
    out->mode = stx.stx_mode;
    return 0;
}

struct cunionmount_mount_job {
    int dirfd;
    const char *source, *target, *fstype;
    unsigned long flags;
    const void *data;
    int err;
    const char *failed_call;
};

static void *cunionmount_mount_thread(void *arg) {
    struct cunionmount_mount_job *job = arg;
    // This thread gets its own fs struct (cwd, root, umask); the rest of the process is untouched,
    // and the thread exits right after, so the private cwd dies with it.
    if (unshare(CLONE_FS) != 0) {
        job->err = errno;
        job->failed_call = "unshare";
        return NULL;
    }
    if (fchdir(job->dirfd) != 0) {
        job->err = errno;
        job->failed_call = "fchdir";
        return NULL;
    }
    if (mount(job->source, job->target, job->fstype, job->flags, job->data) != 0) {
        job->err = errno;
        job->failed_call = "mount";
        return NULL;
    }
    return NULL;
}

int CUnionMount_mount_in_directory(int dirfd, const char *source, const char *target, const char *fstype,
                                   unsigned long flags, const void *data, int *err, const char **failed_call) {
    struct cunionmount_mount_job job = {dirfd, source, target, fstype, flags, data, 0, NULL};
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, cunionmount_mount_thread, &job);
    if (rc != 0) {
        *err = rc;
        *failed_call = "pthread_create";
        return -1;
    }
    pthread_join(thread, NULL);
    if (job.failed_call) {
        *err = job.err;
        *failed_call = job.failed_call;
        return -1;
    }
    *err = 0;
    *failed_call = NULL;
    return 0;
}

struct cunionmount_descriptor_job {
    const char *paths; // `count` NUL-terminated paths, one after the other
    const int *numbers;
    size_t count;
    const char *directory, *source, *target, *fstype;
    unsigned long flags;
    const void *data;
    int err;
    const char *failed_call;
    size_t failed_index;
};

static void *cunionmount_descriptor_thread(void *arg) {
    struct cunionmount_descriptor_job *job = arg;
    // A private fs struct and a private copy of the descriptor table: descriptors placed at fixed numbers here
    // replace nothing in the process's table, and the copy dies with this thread.
    if (unshare(CLONE_FS | CLONE_FILES) != 0) {
        job->err = errno;
        job->failed_call = "unshare";
        return NULL;
    }
    const char *path = job->paths;
    for (size_t i = 0; i < job->count && !job->failed_call; i++, path += strlen(path) + 1) {
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            job->err = errno;
            job->failed_call = "open";
            job->failed_index = i;
        } else if (fd != job->numbers[i]) {
            if (dup3(fd, job->numbers[i], O_CLOEXEC) < 0) {
                job->err = errno;
                job->failed_call = "dup3";
                job->failed_index = i;
            }
            close(fd);
        }
    }
    if (!job->failed_call && chdir(job->directory) != 0) {
        job->err = errno;
        job->failed_call = "chdir";
    }
    if (!job->failed_call && mount(job->source, job->target, job->fstype, job->flags, job->data) != 0) {
        job->err = errno;
        job->failed_call = "mount";
    }
    // Close the private table now rather than at thread exit (which may come after pthread_join returns), so no
    // copy pins a layer's mount once this call is back. Closing here never touches the process's own descriptors
    // or its POSIX locks (their owner is the process's table).
    if (syscall(SYS_close_range, 0u, ~0u, 0u) != 0) {
        for (size_t i = 0; i < job->count; i++) close(job->numbers[i]);
    }
    return NULL;
}

int CUnionMount_mount_with_descriptors(const char *paths, const int *numbers, size_t count, const char *directory,
                                       const char *source, const char *target, const char *fstype,
                                       unsigned long flags, const void *data, int *err, const char **failed_call,
                                       size_t *failed_index) {
    struct cunionmount_descriptor_job job = {paths, numbers, count, directory, source, target, fstype,
                                             flags, data, 0, NULL, 0};
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, cunionmount_descriptor_thread, &job);
    if (rc != 0) {
        *err = rc;
        *failed_call = "pthread_create";
        *failed_index = 0;
        return -1;
    }
    pthread_join(thread, NULL);
    *err = job.err;
    *failed_call = job.failed_call;
    *failed_index = job.failed_index;
    return job.failed_call ? -1 : 0;
}

#endif // __linux__
