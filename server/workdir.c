/* workdir: see workdir.h. */
#include "workdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "rmtree.h"

#define WORKDIR_PREFIX "tasksolver."

/* Reads /proc/PID/comm (the program's name) into out. Returns 0 or -errno. */
static int read_comm(const char *pid, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/comm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, out, size - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

/* The PID in a name "tasksolver.PID", or -1 for any other name. */
static long name_pid(const char *name)
{
    size_t pl = strlen(WORKDIR_PREFIX);
    if (strncmp(name, WORKDIR_PREFIX, pl) != 0 || name[pl] < '1' || name[pl] > '9')
        return -1;
    char *end;
    errno = 0;
    long pid = strtol(name + pl, &end, 10);
    return *end || errno ? -1 : pid;
}

/* Whether PID is a live process running this program (by name), i.e.
 * possibly a server that has not locked its directory yet or that takes
 * no lock. */
static int same_program_runs(long pid, const char *self_comm)
{
    char key[24], comm[64];
    snprintf(key, sizeof key, "%ld", pid);
    return read_comm(key, comm, sizeof comm) == 0 && strcmp(comm, self_comm) == 0;
}

int workdir_remove_stale(const char *parent, long self)
{
    char self_comm[64] = "";
    read_comm("self", self_comm, sizeof self_comm);
    DIR *d = opendir(parent);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        long pid = name_pid(de->d_name);
        if (pid < 0)
            continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue; /* gone already, a symlink, or not a directory */
        struct stat st;
        /* Held until the directory is gone, so that two servers starting
         * at once do not both work on it. */
        if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || flock(fd, LOCK_EX | LOCK_NB) < 0 ||
            (pid != self && same_program_runs(pid, self_comm))) {
            close(fd);
            continue;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", parent, de->d_name);
        int rc = rmtree_path(path);
        close(fd);
        if (rc < 0)
            log_warn("could not remove %s, left by a server that is gone: %s", path, strerror(-rc));
        else
            removed++;
    }
    closedir(d);
    return removed;
}

/* Opens dir and takes its lock. Returns the descriptor, or -EBUSY if
 * another process holds the lock, or -errno. */
static int lock_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno == EWOULDBLOCK ? EBUSY : errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Makes parent/tasksolver.PID, locked from the moment it has that name:
 * it is made and locked as tasksolver.PID.new, a name no server removes,
 * then renamed. Returns 0 with wd->lock_fd set, or -errno (-EEXIST: a
 * directory of that name is still there, a live server's or another
 * user's). */
static int make_locked(workdir *wd, const char *parent)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/" WORKDIR_PREFIX "%ld.new", parent, (long)getpid());
    if (mkdir(tmp, 0700) < 0 && (errno != EEXIST || rmtree_path(tmp) < 0 || mkdir(tmp, 0700) < 0))
        return -errno;
    int fd = lock_dir(tmp);
    if (fd < 0) {
        rmdir(tmp);
        return fd;
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, wd->path, RENAME_NOREPLACE) < 0) {
        int e = errno;
        rmdir(tmp);
        close(fd);
        return -e;
    }
    wd->lock_fd = fd;
    wd->created = 1;
    return 0;
}

int workdir_prepare(workdir *wd, config *c)
{
    memset(wd, 0, sizeof *wd);
    wd->lock_fd = -1;
    if (c->work_dir[0]) {
        wd->path = c->work_dir;
        if (mkdir(wd->path, 0700) == 0) {
            wd->created = 1;
            return 0;
        }
        if (errno != EEXIST)
            return -errno;
        struct stat st;
        if (stat(wd->path, &st) < 0)
            return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    }
    const char *tmp = getenv("TMPDIR");
    const char *parent = tmp && *tmp ? tmp : "/tmp";
    wd->stale_removed = workdir_remove_stale(parent, (long)getpid());
    char path[4096];
    snprintf(path, sizeof path, "%s/" WORKDIR_PREFIX "%ld", parent, (long)getpid());
    char *dup = strdup(path);
    if (!dup)
        return -ENOMEM;
    free(c->work_dir);
    c->work_dir = dup;
    wd->path = c->work_dir;
    return make_locked(wd, parent);
}

void workdir_release(workdir *wd)
{
    /* Removed before the lock is dropped: a server starting meanwhile
     * sees a locked directory or none. */
    if (wd->created) {
        int rc = rmtree_path(wd->path);
        if (rc < 0)
            log_warn("could not remove the work directory %s: %s", wd->path, strerror(-rc));
    }
    if (wd->lock_fd >= 0)
        close(wd->lock_fd);
    wd->lock_fd = -1;
    wd->created = 0;
}
