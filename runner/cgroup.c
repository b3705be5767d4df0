/* cgroup: see cgroup.h. Discovery of the hierarchies, per-task groups,
 * their counters, and removal. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Writes text into dir/file. Returns 0 or -errno. */
static int write_file(const char *dir, const char *file, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int err = n < 0 ? -errno : (size_t)n == len ? 0 : -EIO;
    close(fd);
    return err;
}

/* Reads dir/file into out (NUL-terminated, cut to size). Returns the
 * length or -errno. */
static ssize_t read_file(const char *dir, const char *file, char *out, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    while (len < size - 1) {
        ssize_t n = read(fd, out + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    out[len] = '\0';
    return (ssize_t)len;
}

/* The number after "key " on a line of a flat keyed file, or 0. */
static long keyed_value(const char *dir, const char *file, const char *key)
{
    char text[4096];
    if (read_file(dir, file, text, sizeof text) < 0)
        return 0;
    size_t klen = strlen(key);
    for (char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            return strtol(line + klen + 1, NULL, 10);
    return 0;
}

/* 1 if the comma-separated list has the word. */
static int has_word(const char *list, const char *word, char sep)
{
    size_t wl = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == wl && strncmp(p, word, wl) == 0)
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* Our group in the hierarchy holding `ctrl` (v1), or the v2 one (ctrl
 * NULL), from /proc/self/cgroup. Returns a malloc'ed path or NULL. */
static char *own_group(const char *ctrl)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return NULL;
    char line[4096], *found = NULL;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        int match = ctrl ? has_word(c1 + 1, ctrl, ',') : (strcmp(line, "0:") == 0 && !c1[1]);
        if (match)
            found = strdup(c2 + 1);
    }
    fclose(f);
    return found;
}

/* The mount of the v1 hierarchy with `ctrl`, or of cgroup2 (ctrl NULL),
 * from /proc/self/mountinfo: sets *mnt and *root (malloc'ed). 0 or -ENOENT. */
static int find_mount(const char *ctrl, char **mnt, char **root)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    char line[4096];
    int rc = -ENOENT;
    while (rc && fgets(line, sizeof line, f)) {
        char *sep = strstr(line, " - ");
        char r[1024], m[1024], fstype[64], src[256], opts[1024];
        if (!sep || sscanf(line, "%*s %*s %*s %1023s %1023s", r, m) != 2 ||
            sscanf(sep + 3, "%63s %255s %1023s", fstype, src, opts) != 3)
            continue;
        if (ctrl ? strcmp(fstype, "cgroup") != 0 || !has_word(opts, ctrl, ',')
                 : strcmp(fstype, "cgroup2") != 0)
            continue;
        *mnt = strdup(m);
        *root = strdup(r);
        if (!*mnt || !*root) {
            free(*mnt);
            free(*root);
            rc = -ENOMEM;
            break;
        }
        rc = 0;
    }
    fclose(f);
    return rc;
}

/* The directory of our own group for ctrl (NULL: v2). Returns malloc'ed
 * or NULL. */
static char *own_dir(const char *ctrl)
{
    char *mnt = NULL, *root = NULL, *grp = own_group(ctrl), *dir = NULL;
    if (!grp || find_mount(ctrl, &mnt, &root) < 0)
        goto out;
    const char *rel = grp;
    size_t rl = strlen(root);
    /* A bind-mounted subtree or a cgroup namespace: paths are relative to
     * the mount's root. */
    if (strcmp(root, "/") != 0 && strncmp(grp, root, rl) == 0)
        rel = grp + rl;
    if (asprintf(&dir, "%s%s", mnt, strcmp(rel, "/") == 0 ? "" : rel) < 0)
        dir = NULL;
out:
    free(grp);
    free(mnt);
    free(root);
    return dir;
}

/* Kills every process listed in dir/cgroup.procs. Returns how many were
 * listed. A pid read from the list may have exited and been reused by the
 * time we signal it, so each is pinned with a pidfd and signalled only if
 * it is still listed afterwards. */
static int kill_listed(const char *dir)
{
    char text[8192];
    if (read_file(dir, "cgroup.procs", text, sizeof text) <= 0)
        return 0;
    int n = 0;
    for (char *p = text; *p;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        p = end + (*end != '\0');
        if (pid <= 1)
            continue;
        n++;
        int pfd = pidfd_open((pid_t)pid, 0);
        if (pfd < 0)
            continue;
        char again[8192], key[32];
        snprintf(key, sizeof key, "%ld", pid);
        if (read_file(dir, "cgroup.procs", again, sizeof again) > 0 && has_word(again, key, '\n'))
            pidfd_send_signal(pfd, SIGKILL, NULL, 0);
        close(pfd);
    }
    return n;
}

/* Empties and removes one group directory, waiting up to ~2 s for killed
 * processes to leave it. Returns 0 or -errno. */
static int remove_group(const char *dir, int v2)
{
    if (v2)
        write_file(dir, "cgroup.kill", "1"); /* Linux >= 5.14; else kill_listed */
    for (int i = 0; i < 200; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return -errno;
        kill_listed(dir);
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return -EBUSY;
}

/* Removes groups left by servers that died without cleaning up: entries
 * "PREFIX.PID" in dir whose PID no longer runs. */
static void remove_stale(const char *dir, const char *prefix, int v2)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t pl = strlen(prefix);
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        if (strncmp(de->d_name, prefix, pl) != 0 || de->d_name[pl] != '.')
            continue;
        long pid = strtol(de->d_name + pl + 1, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char parent[4096];
        snprintf(parent, sizeof parent, "%s/%s", dir, de->d_name);
        DIR *sub = opendir(parent);
        struct dirent *te;
        while (sub && (te = readdir(sub))) {
            if (te->d_type != DT_DIR || te->d_name[0] == '.')
                continue;
            char *child;
            if (asprintf(&child, "%s/%s", parent, te->d_name) < 0)
                continue;
            remove_group(child, v2);
            free(child);
        }
        if (sub)
            closedir(sub);
        remove_group(parent, v2);
    }
    closedir(d);
}

/* Makes the parent group PREFIX.PID in own. Returns malloc'ed path or NULL
 * with errno set. */
static char *make_parent(const char *own, const char *prefix, int v2)
{
    char *dir;
    remove_stale(own, prefix, v2);
    if (asprintf(&dir, "%s/%s.%ld", own, prefix, (long)getpid()) < 0)
        return NULL;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        int e = errno;
        free(dir);
        errno = e;
        return NULL;
    }
    return dir;
}

static int init_v1(cgroup_root *cr, const char *prefix, char *why, size_t whysz)
{
    const char *ctrl[2] = {"memory", "pids"};
    char **slot[2] = {&cr->mem_dir, &cr->pids_dir};
    char miss[256] = "";
    for (int i = 0; i < 2; i++) {
        char *own = own_dir(ctrl[i]);
        if (!own) {
            snprintf(miss + strlen(miss), sizeof miss - strlen(miss), "%sno v1 %s hierarchy",
                     miss[0] ? "; " : "", ctrl[i]);
            continue;
        }
        *slot[i] = make_parent(own, prefix, 0);
        if (!*slot[i])
            snprintf(miss + strlen(miss), sizeof miss - strlen(miss), "%s%s/%s.*: %s",
                     miss[0] ? "; " : "", own, prefix, strerror(errno));
        free(own);
    }
    snprintf(why, whysz, "%s", miss);
    if (!cr->mem_dir && !cr->pids_dir)
        return -ENOENT;
    cr->version = CGROUP_V1;
    return 0;
}

static int init_v2(cgroup_root *cr, const char *prefix, char *why, size_t whysz)
{
    char *own = own_dir(NULL), text[512];
    if (!own) {
        snprintf(why, whysz, "no cgroup hierarchy with the memory or pids controller");
        return -ENOENT;
    }
    /* Child groups only get the controllers our group enables for them;
     * a group holding processes (ours does) may not enable any unless it
     * is the root, so this works where they were delegated already. */
    if (read_file(own, "cgroup.subtree_control", text, sizeof text) < 0 ||
        ((!has_word(text, "memory", ' ') || !has_word(text, "pids", ' ')) &&
         write_file(own, "cgroup.subtree_control", "+memory +pids") < 0)) {
        snprintf(why, whysz,
                 "cgroup v2: memory and pids are not enabled for child groups of %s "
                 "(give the server a delegated subtree)",
                 own);
        free(own);
        return -EPERM;
    }
    char *dir = make_parent(own, prefix, 1);
    if (!dir || write_file(dir, "cgroup.subtree_control", "+memory +pids") < 0) {
        snprintf(why, whysz, "cgroup v2: %s/%s.*: %s", own, prefix, strerror(errno));
        if (dir)
            rmdir(dir);
        free(dir);
        free(own);
        return -EPERM;
    }
    free(own);
    cr->mem_dir = dir;
    cr->pids_dir = strdup(dir);
    if (!cr->pids_dir) {
        cgroup_root_destroy(cr);
        return -ENOMEM;
    }
    cr->version = CGROUP_V2;
    why[0] = '\0';
    return 0;
}

int cgroup_root_init(cgroup_root *cr, const char *prefix, char *why, size_t whysz)
{
    memset(cr, 0, sizeof *cr);
    char *mnt, *root;
    /* v1 wherever a v1 hierarchy has one of the controllers (hybrid
     * systems mount an empty cgroup2 next to them). */
    if (find_mount("memory", &mnt, &root) == 0 || find_mount("pids", &mnt, &root) == 0) {
        free(mnt);
        free(root);
        return init_v1(cr, prefix, why, whysz);
    }
    return init_v2(cr, prefix, why, whysz);
}

void cgroup_root_destroy(cgroup_root *cr)
{
    if (cr->mem_dir)
        remove_group(cr->mem_dir, cr->version == CGROUP_V2);
    if (cr->pids_dir && cr->version == CGROUP_V1)
        remove_group(cr->pids_dir, 0);
    free(cr->mem_dir);
    free(cr->pids_dir);
    memset(cr, 0, sizeof *cr);
}

/* mkdir parent/name and write the limits. Returns malloc'ed path or NULL
 * with errno set. */
static char *make_task_dir(const char *parent, const char *name)
{
    char *dir;
    if (asprintf(&dir, "%s/%s", parent, name) < 0)
        return NULL;
    if (mkdir(dir, 0755) < 0) {
        int e = errno;
        free(dir);
        errno = e;
        return NULL;
    }
    return dir;
}

int cgroup_task_create(const cgroup_root *cr, const char *name, int64_t memory, long pids,
                       cgroup_task *ct)
{
    memset(ct, 0, sizeof *ct);
    int v2 = cr->version == CGROUP_V2, err;
    char num[32];
    if (cr->mem_dir) {
        if (!(ct->mem_dir = make_task_dir(cr->mem_dir, name)))
            return -errno;
        if (memory > 0) {
            snprintf(num, sizeof num, "%lld", (long long)memory);
            if ((err = write_file(ct->mem_dir, v2 ? "memory.max" : "memory.limit_in_bytes", num)))
                goto fail;
            /* Swap would let a task go past the limit: none for v2, and
             * memory+swap equal to memory for v1 (absent when the kernel
             * does not account swap). */
            write_file(ct->mem_dir, v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes",
                       v2 ? "0" : num);
            /* v2: an out-of-memory kill takes the whole task down at once. */
            if (v2)
                write_file(ct->mem_dir, "memory.oom.group", "1");
        }
    }
    if (cr->pids_dir) {
        if (v2)
            ct->pids_dir = strdup(ct->mem_dir);
        else
            ct->pids_dir = make_task_dir(cr->pids_dir, name);
        if (!ct->pids_dir) {
            err = errno ? -errno : -ENOMEM;
            goto fail;
        }
        if (pids > 0) {
            snprintf(num, sizeof num, "%ld", pids);
            if ((err = write_file(ct->pids_dir, "pids.max", num)))
                goto fail;
        }
    }
    return 0;

fail:
    cgroup_task_remove(ct);
    return err;
}

/* Writes the memory limit in v1's order: memory+swap may never be below
 * memory, so the one that grows goes first. */
static int set_memory_v1(const char *dir, const char *num)
{
    int err = write_file(dir, "memory.limit_in_bytes", num);
    if (err == -EINVAL) {
        /* Raising memory above memsw: memsw first, then memory. */
        write_file(dir, "memory.memsw.limit_in_bytes", num);
        return write_file(dir, "memory.limit_in_bytes", num);
    }
    if (!err)
        write_file(dir, "memory.memsw.limit_in_bytes", num); /* absent without swap accounting */
    return err;
}

int cgroup_task_set_limits(const cgroup_task *ct, int64_t memory, long pids)
{
    int v2 = ct->mem_dir && ct->pids_dir && strcmp(ct->mem_dir, ct->pids_dir) == 0, err = 0, e;
    char num[32];
    if (ct->mem_dir) {
        if (memory > 0)
            snprintf(num, sizeof num, "%lld", (long long)memory);
        else
            snprintf(num, sizeof num, "%s", v2 ? "max" : "-1");
        if (v2) {
            err = write_file(ct->mem_dir, "memory.max", num);
            write_file(ct->mem_dir, "memory.swap.max", memory > 0 ? "0" : "max");
            write_file(ct->mem_dir, "memory.oom.group", "1");
        } else {
            err = set_memory_v1(ct->mem_dir, num);
        }
    }
    if (ct->pids_dir) {
        if (pids > 0)
            snprintf(num, sizeof num, "%ld", pids);
        else
            snprintf(num, sizeof num, "max");
        if ((e = write_file(ct->pids_dir, "pids.max", num)) < 0 && !err)
            err = e;
    }
    return err;
}

/* The number in dir/file, or 0. */
static int64_t number_in(const char *dir, const char *file)
{
    char text[64];
    if (read_file(dir, file, text, sizeof text) <= 0)
        return 0;
    return strtoll(text, NULL, 10);
}

void cgroup_task_events(const cgroup_task *ct, cgroup_events *ev)
{
    memset(ev, 0, sizeof *ev);
    if (ct->mem_dir) {
        ev->peak = number_in(ct->mem_dir, "memory.peak");
        if (!ev->peak)
            ev->peak = number_in(ct->mem_dir, "memory.max_usage_in_bytes");
        /* v1 has the count in memory.oom_control (Linux >= 4.13), v2 in
         * memory.events. */
        ev->oom_kills = keyed_value(ct->mem_dir, "memory.events", "oom_kill");
        if (!ev->oom_kills)
            ev->oom_kills = keyed_value(ct->mem_dir, "memory.oom_control", "oom_kill");
    }
    if (ct->pids_dir)
        ev->pids_max = keyed_value(ct->pids_dir, "pids.events", "max");
}

int cgroup_task_remove(cgroup_task *ct)
{
    int rc = 0, r;
    int v2 = ct->mem_dir && ct->pids_dir && strcmp(ct->mem_dir, ct->pids_dir) == 0;
    if (ct->pids_dir && !v2 && (r = remove_group(ct->pids_dir, 0)) < 0)
        rc = r;
    if (ct->mem_dir && (r = remove_group(ct->mem_dir, v2)) < 0 && !rc)
        rc = r;
    free(ct->mem_dir);
    free(ct->pids_dir);
    memset(ct, 0, sizeof *ct);
    return rc;
}

/* Opens dir/file (O_RDONLY or O_WRONLY); -1 if it is not there. */
static int open_in(const char *dir, const char *file, int flags)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return open(path, flags | O_CLOEXEC);
}

/* The number after "key " in an open flat keyed file, read from its
 * start, or 0. */
static long keyed_fd(int fd, const char *key)
{
    char text[1024];
    ssize_t n = fd >= 0 ? pread(fd, text, sizeof text - 1, 0) : -1;
    if (n <= 0)
        return 0;
    text[n] = '\0';
    size_t klen = strlen(key);
    for (char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            return strtol(line + klen + 1, NULL, 10);
    return 0;
}

static void watch_read(const cgroup_watch *w, cgroup_events *ev)
{
    ev->oom_kills = keyed_fd(w->oom_fd, "oom_kill");
    ev->pids_max = keyed_fd(w->pids_fd, "max");
    char text[64];
    ssize_t n = w->peak_rd >= 0 ? pread(w->peak_rd, text, sizeof text - 1, 0) : -1;
    if (n > 0)
        text[n] = '\0';
    ev->peak = n > 0 ? strtoll(text, NULL, 10) : 0;
}

int cgroup_watch_open(const cgroup_task *ct, cgroup_watch *w)
{
    static const char *const peaks[4] = {"memory.max_usage_in_bytes", "memory.failcnt",
                                         "memory.memsw.max_usage_in_bytes", "memory.memsw.failcnt"};
    memset(w, 0, sizeof *w);
    w->oom_fd = w->pids_fd = w->peak_rd = -1;
    for (int i = 0; i < 4; i++)
        w->peak_fd[i] = -1;
    if (ct->mem_dir) {
        /* v1 has the count in memory.oom_control (Linux >= 4.13), v2 in
         * memory.events. */
        if ((w->oom_fd = open_in(ct->mem_dir, "memory.events", O_RDONLY)) < 0)
            w->oom_fd = open_in(ct->mem_dir, "memory.oom_control", O_RDONLY);
        if (w->oom_fd < 0)
            goto fail;
        /* Absent on v2, and memsw where swap is not accounted. */
        for (int i = 0; i < 4; i++)
            w->peak_fd[i] = open_in(ct->mem_dir, peaks[i], O_WRONLY);
        if ((w->peak_rd = open_in(ct->mem_dir, "memory.peak", O_RDWR)) < 0)
            w->peak_rd = open_in(ct->mem_dir, peaks[0], O_RDONLY);
    }
    if (ct->pids_dir && (w->pids_fd = open_in(ct->pids_dir, "pids.events", O_RDONLY)) < 0)
        goto fail;
    watch_read(w, &w->at);
    return 0;

fail:;
    int e = errno;
    cgroup_watch_close(w);
    return -e;
}

void cgroup_watch_events(cgroup_watch *w, cgroup_events *ev)
{
    cgroup_events now;
    watch_read(w, &now);
    ev->oom_kills = now.oom_kills - w->at.oom_kills;
    ev->pids_max = now.pids_max - w->at.pids_max;
    ev->peak = now.peak;
    w->at = now;
}

void cgroup_watch_reset_peaks(const cgroup_watch *w)
{
    for (int i = 0; i < 4; i++)
        if (w->peak_fd[i] >= 0 && pwrite(w->peak_fd[i], "0", 1, 0) < 0)
            continue; /* the kernel refused: the mark stays, nothing else */
    /* v2: any text resets the peak this fd reads (v1's is read-only). */
    if (w->peak_fd[0] < 0 && w->peak_rd >= 0 && pwrite(w->peak_rd, "reset\n", 6, 0) < 0)
        return; /* before Linux 6.12: the group's peak since it was made */
}

void cgroup_watch_close(cgroup_watch *w)
{
    int *fds[7] = {&w->oom_fd,     &w->pids_fd,    &w->peak_fd[0], &w->peak_fd[1],
                   &w->peak_fd[2], &w->peak_fd[3], &w->peak_rd};
    for (int i = 0; i < 7; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}
