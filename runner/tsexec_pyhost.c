/* tsexec_pyhost: see tsexec_pyhost.h. */
#include "tsexec_pyhost.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "timefmt.h"
#include "tsexec_lock.h"
#include "tsexec_task.h"

/* How long the server may take to be ready: a cold interpreter plus the
 * server's imports take 30-60 ms here; a loaded machine is given more. */
#define READY_MS 10000
/* Where the server finds its control socket (pyfork.py's protocol) and
 * its script. */
#define SOCK_FD 3
#define SCRIPT_FD 4

int tsexec_pyhost_running(const tsexec_pyhost *h)
{
    return h->pid > 0;
}

/* Forgets the server (reaped already). */
static void forget(tsexec_pyhost *h)
{
    pyfork_free(h->pf); /* adopted: only closes the socket */
    h->pf = NULL;
    h->pid = 0;
    h->spare = 0;
    free(h->path);
    free(h->argv0);
    h->path = h->argv0 = NULL;
}

void tsexec_pyhost_stop(tsexec_pyhost *h)
{
    if (h->pid <= 0)
        return;
    kill(h->pid, SIGKILL);
    while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    forget(h);
}

int tsexec_pyhost_reaped(tsexec_pyhost *h, pid_t pid)
{
    if (h->pid <= 0 || pid != h->pid)
        return 0;
    forget(h);
    return 1;
}

/* Takes the next pid from the top of the range, so that the server does
 * not hold a low one (tasks start as pid 2 after every cleanup). */
static void top_pid(tsexec_pyhost *h)
{
    if (!h->pid_max) {
        char buf[32] = "";
        int fd = open("/proc/sys/kernel/pid_max", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0)
            close(fd);
        h->pid_max = n > 0 ? atol(buf) : -1;
    }
    if (h->pid_max > 300) {
        char v[32];
        int len = snprintf(v, sizeof v, "%ld", h->pid_max - 2);
        ssize_t w = pwrite(h->last_pid, v, (size_t)len, 0);
        (void)w; /* a low pid then: tasks start one higher */
    }
}

/* What the server said on stderr before it gave up: its last line. */
static void last_line(int fd, char *out, size_t size)
{
    char buf[1024];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 &&
           ((n = read(fd, buf + len, sizeof buf - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
        len += n > 0 ? (size_t)n : 0;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    char *line = strrchr(buf, '\n');
    if (len && size)
        snprintf(out, size, "%s", line ? line + 1 : buf);
}

/* What the task process reported before exec (tsexec_task's lines). */
static void start_report(int fd, const char *path, char *why, size_t whysz)
{
    char rep[512];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof rep - 1 &&
           ((n = read(fd, rep + len, sizeof rep - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
        len += n > 0 ? (size_t)n : 0;
    rep[len] = '\0';
    int e = 0;
    if (!len)
        return;
    rep[strcspn(rep, "\n")] = '\0';
    if (sscanf(rep, "exec %d", &e) == 1)
        snprintf(why, whysz, "cannot execute %s: %s", path, strerror(e));
    else
        snprintf(why, whysz, "%s", strncmp(rep, "fail ", 5) == 0 ? rep + 5 : rep);
}

/* Starts a server and waits until it is ready. Returns 0 or -errno with
 * why set. */
static int spawn(tsexec_pyhost *h, const char *path, const char *argv0, char *const *envp,
                 char *why, size_t whysz)
{
    int sv[2] = {-1, -1}, ep[2] = {-1, -1}, rp[2] = {-1, -1}, keep[2] = {-1, -1}, rep = -1, rc;
    char *p = strdup(path), *a0 = strdup(argv0);
    if (!p || !a0) {
        rc = -ENOMEM;
        snprintf(why, whysz, "out of memory");
        goto fail_alloc;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(ep, O_CLOEXEC) < 0 ||
        pipe2(rp, O_CLOEXEC) < 0) {
        rc = -errno;
        snprintf(why, whysz, "socket or pipe: %s", strerror(errno));
        goto fail_fds;
    }
    /* Above the fds they become, so that none is overwritten on the way. */
    if ((keep[0] = fcntl(sv[1], F_DUPFD_CLOEXEC, SCRIPT_FD + 1)) < 0 ||
        (keep[1] = fcntl(h->script, F_DUPFD_CLOEXEC, SCRIPT_FD + 1)) < 0 ||
        (rep = fcntl(rp[1], F_DUPFD_CLOEXEC, SCRIPT_FD + 1)) < 0) {
        rc = -errno;
        snprintf(why, whysz, "fcntl: %s", strerror(errno));
        goto fail_fds;
    }
    char script_arg[32];
    snprintf(script_arg, sizeof script_arg, "/proc/self/fd/%d", SCRIPT_FD);
    char *argv[] = {(char *)argv0, script_arg, NULL};
    const tsexec_limits none = {0, 0, 0, 0, 0};
    const uint64_t caps =
        (UINT64_C(1) << CAP_SETUID) | (UINT64_C(1) << CAP_SETGID) | (UINT64_C(1) << CAP_KILL);
    tsexec_task t = {
        .dir = "/",
        .path = path,
        .argv = argv,
        .envp = envp,
        .lim = &none,
        .uid = (uid_t)-1,
        .gid = (gid_t)-1,
        .fd = {h->null, h->null, ep[1]},
        .keep_fds = keep,
        .nkeep = 2,
        .caps = &caps,
        .report_fd = rep,
    };
    top_pid(h);
    pid_t pid = tsexec_task_start(&t);
    int e = errno;
    /* Back to where every cleanup puts it: the task comes next. */
    ssize_t w = pwrite(h->last_pid, "1", 1, 0);
    (void)w;
    close(rep);
    close(rp[1]);
    close(ep[1]);
    close(sv[1]);
    close(keep[0]);
    close(keep[1]);
    rep = rp[1] = ep[1] = sv[1] = keep[0] = keep[1] = -1;
    if (pid < 0) {
        rc = -e;
        snprintf(why, whysz, "fork: %s", strerror(e));
        goto fail_fds;
    }
    /* By now the server has executed python (end of file) or said why not. */
    why[0] = '\0';
    start_report(rp[0], path, why, whysz);
    if (why[0]) {
        rc = -ENOEXEC;
        goto fail_started;
    }
    h->pid = pid;
    rc = pyfork_adopt(sv[0], READY_MS, &h->pf, why, whysz);
    sv[0] = -1; /* the client's now, closed on failure too */
    if (rc < 0) {
        /* Python's own words are better than "exited before it was ready"
         * (Python 3.8 or older, for one). */
        fcntl(ep[0], F_SETFL, O_NONBLOCK);
        last_line(ep[0], why, whysz);
        h->pid = 0;
        goto fail_started;
    }
    close(ep[0]); /* its stderr from now on: nothing it writes matters */
    close(rp[0]);
    h->path = p;
    h->argv0 = a0;
    return 0;

fail_started:
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
fail_fds:
    for (int i = 0; i < 2; i++) {
        int *fds[] = {&sv[i], &ep[i], &rp[i], &keep[i]};
        for (size_t k = 0; k < sizeof fds / sizeof fds[0]; k++)
            if (*fds[k] >= 0)
                close(*fds[k]);
    }
    if (rep >= 0)
        close(rep);
fail_alloc:
    free(p);
    free(a0);
    return rc;
}

int tsexec_pyhost_start(tsexec_pyhost *h, const char *path, const char *argv0, char *const *envp,
                        char *why, size_t whysz)
{
    why[0] = '\0';
    if (h->pid > 0 && strcmp(h->path, path) == 0 && strcmp(h->argv0, argv0) == 0)
        return 0;
    /* Reaped by the server, the spare leaves pid 2 free for the task the
     * new server forks (killed with it, it would exit on its own time). */
    tsexec_pyhost_drop_spare(h);
    tsexec_pyhost_stop(h);
    if (h->script < 0) {
        if (!h->script_errno)
            return -ENOSYS;
        /* Said once: the cell will not have the script later either. */
        snprintf(why, whysz, "its script could not be opened: %s", strerror(h->script_errno));
        h->script_errno = 0;
        return -ENOENT;
    }
    if (time_mono_us() < h->retry_us)
        return -EAGAIN;
    int rc = spawn(h, path, argv0, envp, why, whysz);
    if (rc < 0)
        h->retry_us = time_mono_us() + TSEXEC_PYHOST_RETRY_S * INT64_C(1000000);
    return rc;
}

int tsexec_pyhost_run(tsexec_pyhost *h, const pyfork_task *t, pid_t *pid, char *why, size_t whysz)
{
    why[0] = '\0';
    if (h->pid <= 0) {
        snprintf(why, whysz, "no fork server runs");
        return -ESRCH;
    }
    int rc = pyfork_run(h->pf, t, pid);
    if (rc == 0 && *pid > 0) {
        h->spare = 0; /* the task took it, or a new fork */
        return 0;
    }
    if (rc == 0) {
        pyfork_result r;
        pyfork_wait(h->pf, 0, &r); /* the refusal, at once */
        snprintf(why, whysz, "the fork server refused the task: %s", r.why);
        return -ECANCELED;
    }
    if (rc == -EINVAL) {
        snprintf(why, whysz, "the task cannot be sent to the fork server");
        return rc;
    }
    snprintf(why, whysz, "the fork server %s",
             rc == -ETIMEDOUT ? "did not answer"
             : rc == -EPIPE   ? "was gone"
                              : "broke its protocol");
    tsexec_pyhost_stop(h);
    return rc;
}

int tsexec_pyhost_prefork(tsexec_pyhost *h)
{
    if (h->pid <= 0)
        return -ESRCH;
    int rc = pyfork_prefork(h->pf);
    if (rc == 0)
        h->spare = 1;
    return rc;
}

int tsexec_pyhost_drop_spare(tsexec_pyhost *h)
{
    if (h->pid <= 0 || !h->spare)
        return 0;
    h->spare = 0;
    int rc = pyfork_drop_spare(h->pf);
    if (rc < 0)
        tsexec_pyhost_stop(h);
    return rc;
}

int tsexec_pyhost_is_spare(const tsexec_pyhost *h, pid_t ppid)
{
    /* Tasks are never children of the server's but the one it reaps
     * before it reports the task's end. */
    return h->pid > 0 && h->spare && ppid == h->pid;
}

int tsexec_pyhost_fd(const tsexec_pyhost *h)
{
    return h->pid > 0 ? pyfork_fd(h->pf) : -1;
}

int tsexec_pyhost_wait(tsexec_pyhost *h, pyfork_result *r)
{
    if (h->pid <= 0)
        return -ESRCH;
    int rc = pyfork_wait(h->pf, 0, r);
    if (rc < 0)
        tsexec_pyhost_stop(h);
    return rc;
}
