/* tsexec_fs: see tsexec_fs.h. */
#include "tsexec_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define MAX_COVERS 32

/* Directories every user may write to on a usual system: each gets a
 * private copy, so nothing a task leaves there outlives it or reaches
 * another task. */
static const char *const private_dirs[] = {"/tmp", "/var/tmp", "/dev/shm"};
#define N_PRIVATE (sizeof private_dirs / sizeof private_dirs[0])

/* Something mounted over a path: a private directory (fd >= 0, bound) or,
 * for a path to hide (fd < 0), an empty tmpfs or /dev/null. */
struct cover {
    const char *path;
    int fd;
};

static int fail(char *step, size_t stepsz, const char *what, const char *path)
{
    int e = errno;
    snprintf(step, stepsz, "%s%s%s", what, path ? " " : "", path ? path : "");
    return -e;
}

/* Levels of directories copied at most: a request's file names have at
 * most 1024 bytes, so 512 components; no real tree goes near 32. */
#define COPY_MAX_DEPTH 32

/* Copies one regular file (src open) as name into to, with the mode
 * src has, owned by uid/gid unless uid is -1. */
static int copy_one(int src, const struct stat *st, int to, const char *name, uid_t uid, gid_t gid)
{
    int dst = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (dst < 0)
        return -errno;
    int rc = 0;
    off_t left = st->st_size;
    while (left > 0) {
        ssize_t n = sendfile(dst, src, NULL, (size_t)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        left -= n;
    }
    if (rc == 0 && uid != (uid_t)-1 && fchown(dst, uid, gid) < 0)
        rc = -errno;
    if (rc == 0 && fchmod(dst, st->st_mode & 0777) < 0)
        rc = -errno;
    close(dst);
    return rc;
}

/* Copies the regular files and directories of from (an open directory)
 * into to, owned by uid/gid unless uid is -1; anything else (a link, a
 * device) is left out. depth counts the levels above. Returns 0 or
 * -errno. */
static int copy_files(int from, int to, uid_t uid, gid_t gid, int depth)
{
    if (depth > COPY_MAX_DEPTH)
        return -ELOOP;
    int dfd = dup(from);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return -errno;
    }
    /* The copy shares the file offset of `from`, which a cell reads once
     * per task. */
    rewinddir(d);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        struct stat st;
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        int src = openat(from, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (src < 0 || fstat(src, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
            if (src >= 0)
                close(src);
            continue;
        }
        if (S_ISREG(st.st_mode)) {
            rc = copy_one(src, &st, to, de->d_name, uid, gid);
            close(src);
            continue;
        }
        /* A directory of the request's files (request_files.h). */
        int sub = -1;
        if (mkdirat(to, de->d_name, 0700) < 0 ||
            (sub = openat(to, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
            (uid != (uid_t)-1 && fchown(sub, uid, gid) < 0))
            rc = -errno;
        if (rc == 0)
            rc = copy_files(src, sub, uid, gid, depth + 1);
        if (sub >= 0)
            close(sub);
        close(src);
    }
    closedir(d);
    return rc;
}

/* mkdir -p for an absolute path, parents mode 0755. Returns 0 or -errno. */
static int mkdir_p(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (stat(buf, &st) < 0 && (mkdir(buf, 0755) < 0 && errno != EEXIST))
            return -errno;
        if (!c)
            return 0;
        *p = c;
    }
}

static int by_length(const void *a, const void *b)
{
    size_t la = strlen(((const struct cover *)a)->path),
           lb = strlen(((const struct cover *)b)->path);
    return la < lb ? -1 : la > lb;
}

/* Mounts the covers, parents first; a path already hidden by a parent's
 * cover no longer exists and is skipped. */
static int mount_covers(struct cover *cv, int n, char *step, size_t stepsz)
{
    qsort(cv, (size_t)n, sizeof *cv, by_length);
    for (int i = 0; i < n; i++) {
        struct stat st;
        char src[64];
        if (stat(cv[i].path, &st) < 0)
            continue;
        if (cv[i].fd >= 0) {
            snprintf(src, sizeof src, "/proc/self/fd/%d", cv[i].fd);
            if (mount(src, cv[i].path, NULL, MS_BIND, NULL) < 0)
                return fail(step, stepsz, "bind", cv[i].path);
        } else if (S_ISDIR(st.st_mode)) {
            if (mount("hidden", cv[i].path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      "size=64k,nr_inodes=64,mode=0755") < 0)
                return fail(step, stepsz, "hide", cv[i].path);
        } else if (mount("/dev/null", cv[i].path, NULL, MS_BIND, NULL) < 0) {
            return fail(step, stepsz, "hide", cv[i].path);
        }
    }
    return 0;
}

/* Makes the private tmpfs at fs->dir: "home" with a copy of the task's
 * files, one directory per entry of private_dirs. Opens them into
 * home_fd and priv[]. */
static int make_scratch(tsexec_fs *fs, int real, int *home_fd, int priv[N_PRIVATE], char *step,
                        size_t stepsz)
{
    char opts[128];
    if (fs->disk > 0)
        /* One inode per 4 KiB: enough for many small files, not for an
         * inode-exhaustion attack on kernel memory. */
        snprintf(opts, sizeof opts, "size=%lld,nr_inodes=%lld,mode=0755", (long long)fs->disk,
                 (long long)(fs->disk / 4096 + 64));
    else
        snprintf(opts, sizeof opts, "mode=0755");
    if (mount("task", fs->dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
        return fail(step, stepsz, "mount tmpfs on", fs->dir);
    int root = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return fail(step, stepsz, "open", fs->dir);
    fs->scratch = root;
    int rc = 0;
    char name[8];
    if (mkdirat(root, "home", 0700) < 0 ||
        (fs->uid != (uid_t)-1 && fchownat(root, "home", fs->uid, fs->gid, 0) < 0) ||
        (*home_fd = openat(root, "home", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = fail(step, stepsz, "make the task directory", NULL);
        goto out;
    }
    if (!fs->cell && (rc = copy_files(real, *home_fd, fs->uid, fs->gid, 0)) < 0) {
        errno = -rc;
        rc = fail(step, stepsz, "copy the task's files", NULL);
        goto out;
    }
    for (size_t i = 0; i < N_PRIVATE; i++) {
        snprintf(name, sizeof name, "p%zu", i);
        /* mkdir applies the umask; the sticky world-writable mode is set
         * explicitly. */
        if (mkdirat(root, name, 0700) < 0 || fchmodat(root, name, 01777, 0) < 0 ||
            (priv[i] = openat(root, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
            rc = fail(step, stepsz, "make a private", private_dirs[i]);
            goto out;
        }
    }
out:
    return rc;
}

int tsexec_fs_setup(tsexec_fs *fs, char *step, size_t stepsz)
{
    int rc, home = -1, priv[N_PRIVATE];
    fs->scratch = fs->real = fs->home = -1;
    struct cover cv[MAX_COVERS];
    int n = 0;
    for (size_t i = 0; i < N_PRIVATE; i++)
        priv[i] = -1;
    if (fs->nhide + (int)N_PRIVATE > MAX_COVERS) {
        errno = E2BIG;
        return fail(step, stepsz, "too many paths to hide", NULL);
    }
    /* Nothing mounted from here on may propagate to the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return fail(step, stepsz, "make / private", NULL);
    int real = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (real < 0)
        return fail(step, stepsz, "open", fs->dir);
    /* What the task may write is only what we mount below. (Linux >= 5.12;
     * older kernels keep the host's modes, which file permissions still
     * guard for an unprivileged user.) */
    struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID};
    if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof ro) < 0 && errno != ENOSYS) {
        rc = fail(step, stepsz, "make / read-only", NULL);
        goto out;
    }
    if ((rc = make_scratch(fs, real, &home, priv, step, stepsz)) < 0)
        goto out;
    for (size_t i = 0; i < N_PRIVATE; i++)
        cv[n++] = (struct cover){private_dirs[i], priv[i]};
    for (int i = 0; i < fs->nhide; i++)
        cv[n++] = (struct cover){fs->hide[i], -1};
    if ((rc = mount_covers(cv, n, step, stepsz)) < 0)
        goto out;
    /* The task directory itself was hidden with the work directory (or
     * with /tmp): bring back the task's own copy at the same path. */
    if ((rc = mkdir_p(fs->dir)) < 0) {
        errno = -rc;
        rc = fail(step, stepsz, "make", fs->dir);
        goto out;
    }
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", home);
    if (mount(src, fs->dir, NULL, MS_BIND, NULL) < 0) {
        rc = fail(step, stepsz, "bind the task directory on", fs->dir);
        goto out;
    }
    /* hidepid: the task does not see init (root, with our arguments). */
    if (fs->new_proc &&
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") < 0 &&
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
        rc = fail(step, stepsz, "mount", "/proc");
        goto out;
    }
    rc = 0;
    if (fs->cell) {
        struct statfs sf;
        if (fstatfs(fs->scratch, &sf) < 0) {
            rc = fail(step, stepsz, "statfs", fs->dir);
            goto out;
        }
        fs->base_inodes = (long)(sf.f_files - sf.f_ffree);
        for (size_t i = 0; i < N_PRIVATE; i++) {
            size_t pl = strlen(private_dirs[i]);
            if (strncmp(fs->dir, private_dirs[i], pl) == 0 && fs->dir[pl] == '/')
                fs->keep[i] = fs->dir + pl + 1;
        }
        /* Kept for the cell's life; the task gets none of them. */
        fs->real = real;
        fs->home = home;
        for (size_t i = 0; i < N_PRIVATE; i++)
            fs->priv[i] = priv[i];
        return 0;
    }
out:
    close(real);
    if (home >= 0)
        close(home);
    for (size_t i = 0; i < N_PRIVATE; i++)
        if (priv[i] >= 0)
            close(priv[i]);
    return rc;
}

int tsexec_fs_save(int from, int to)
{
    int dfd = dup(from);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return -errno;
    }
    rewinddir(d);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        struct stat st;
        if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
            continue;
        if (faccessat(to, de->d_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
            continue;
        /* O_NONBLOCK: a FIFO that replaced the file must not block init. */
        int src = openat(from, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (src < 0 || fstat(src, &st) < 0 || !S_ISREG(st.st_mode)) {
            if (src >= 0)
                close(src);
            continue;
        }
        int dst =
            openat(to, de->d_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (dst < 0) {
            rc = -errno;
            close(src);
            break;
        }
        off_t left = st.st_size;
        while (left > 0) {
            ssize_t n = sendfile(dst, src, NULL, (size_t)left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                rc = n < 0 ? -errno : 0;
                break;
            }
            left -= n;
        }
        if (rc == 0 && fchmod(dst, st.st_mode & 0755) < 0)
            rc = -errno;
        close(dst);
        close(src);
    }
    closedir(d);
    return rc;
}

int tsexec_fs_load(tsexec_fs *fs)
{
    return copy_files(fs->real, fs->home, fs->uid, fs->gid, 0);
}

/* Removes everything in the directory dfd, not dfd itself, over as many
 * passes as entries keep appearing (removing while reading may skip some).
 * keep: NULL, or a relative path below dfd that stays: the directories on
 * the way to the task directory when it lies in a private /tmp (set to
 * mode 0755 again, emptied of anything else) and the task directory's
 * mount point itself (left alone). Trees deeper than 256 levels are
 * refused (2 KiB of stack each): the cell is then rebuilt. getdents64 on a small stack buffer:
 * nothing allocated, and the common case, an empty directory, costs a
 * seek and one read. Returns 0 or -errno. */
static int empty_dir(int dfd, int depth, const char *keep)
{
    const char *rest = keep ? strchr(keep, '/') : NULL;
    size_t klen = keep ? (rest ? (size_t)(rest - keep) : strlen(keep)) : 0;
    if (rest)
        rest++;
    char buf[2048];
    for (int pass = 0; pass < 8; pass++) {
        int found = 0, rc = 0;
        if (lseek(dfd, 0, SEEK_SET) < 0)
            return -errno;
        ssize_t n;
        while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
            for (ssize_t off = 0; off < n;) {
                struct dirent64 *de = (struct dirent64 *)(void *)(buf + off);
                off += de->d_reclen;
                const char *nm = de->d_name;
                if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2])))
                    continue;
                if (keep && strlen(nm) == klen && strncmp(nm, keep, klen) == 0) {
                    if (!rest || !*rest)
                        continue;
                    int sub = openat(dfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                    int r = sub < 0 ? -errno : empty_dir(sub, depth + 1, rest);
                    if (r == 0 && fchmod(sub, 0755) < 0)
                        r = -errno;
                    if (sub >= 0)
                        close(sub);
                    if (r < 0)
                        rc = r;
                    continue;
                }
                found++;
                if (unlinkat(dfd, nm, 0) == 0 || errno == ENOENT)
                    continue;
                if (errno != EISDIR || depth >= 256) {
                    rc = errno == EISDIR ? -ELOOP : -errno;
                    continue;
                }
                int sub = openat(dfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                int r = sub < 0 ? -errno : empty_dir(sub, depth + 1, NULL);
                if (sub >= 0)
                    close(sub);
                if (r == 0 && unlinkat(dfd, nm, AT_REMOVEDIR) < 0 && errno != ENOENT)
                    r = -errno;
                if (r < 0)
                    rc = r;
            }
        }
        if (n < 0)
            return -errno;
        if (rc < 0)
            return rc;
        if (!found)
            return 0;
    }
    return -ENOTEMPTY;
}

int tsexec_fs_clean(tsexec_fs *fs, char *step, size_t stepsz)
{
    int rc;
    if ((rc = empty_dir(fs->home, 0, NULL)) < 0) {
        errno = -rc;
        return fail(step, stepsz, "empty", fs->dir);
    }
    /* The task owns its directory and may have changed its mode. */
    if ((fs->uid != (uid_t)-1 && fchown(fs->home, fs->uid, fs->gid) < 0) ||
        fchmod(fs->home, 0700) < 0)
        return fail(step, stepsz, "reset", fs->dir);
    /* Not the task's, but in a user namespace its owner has the task's
     * uid. */
    for (size_t i = 0; i < N_PRIVATE; i++)
        if (fchmod(fs->priv[i], 01777) < 0)
            return fail(step, stepsz, "reset", private_dirs[i]);
    struct statfs sf;
    if (fstatfs(fs->scratch, &sf) < 0)
        return fail(step, stepsz, "statfs", fs->dir);
    /* Most tasks leave nothing in /tmp and the like: the inode count of
     * the tmpfs tells without reading them. */
    if ((long)(sf.f_files - sf.f_ffree) == fs->base_inodes && sf.f_files > 0)
        return 0;
    for (size_t i = 0; i < N_PRIVATE; i++) {
        if ((rc = empty_dir(fs->priv[i], 0, fs->keep[i])) < 0) {
            errno = -rc;
            return fail(step, stepsz, "empty", private_dirs[i]);
        }
    }
    if (fstatfs(fs->scratch, &sf) < 0)
        return fail(step, stepsz, "statfs", fs->dir);
    if (sf.f_files > 0 && (long)(sf.f_files - sf.f_ffree) != fs->base_inodes) {
        errno = EBUSY;
        return fail(step, stepsz, "files left on the tmpfs of", fs->dir);
    }
    return 0;
}

int tsexec_fs_full(const tsexec_fs *fs)
{
    struct statfs sf;
    if (fs->scratch < 0 || fstatfs(fs->scratch, &sf) < 0)
        return 0;
    return sf.f_bavail == 0 || (sf.f_files > 0 && sf.f_ffree == 0);
}

/* Looks for a file of at least size bytes below the directory fd (closed
 * here); *budget bounds the entries looked at. */
static int find_big(int fd, int64_t size, int depth, long *budget)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 0;
    }
    /* A dup of the scratch fd shares its offset, which a cell reads once
     * per task. */
    rewinddir(d);
    int found = 0;
    struct dirent *de;
    while (!found && (de = readdir(d)) && --*budget > 0) {
        struct stat st;
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(st.st_mode))
            found = st.st_size >= size;
        else if (S_ISDIR(st.st_mode) && depth < 32) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                found = find_big(sub, size, depth + 1, budget);
        }
    }
    closedir(d);
    return found;
}

int tsexec_fs_has_file_of(const tsexec_fs *fs, int64_t size)
{
    long budget = 200000;
    int fd = fs->scratch >= 0 ? dup(fs->scratch) : -1;
    return fd >= 0 && size > 0 && find_big(fd, size, 0, &budget);
}
