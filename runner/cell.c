/* cell: see cell.h. */
#include "cell.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cell_proto.h"
#include "timefmt.h"

extern char **environ;

/* How long init may take to say STARTED once it has a RUN: it copies the
 * program (up to --max-body) into the task directory first. */
#define START_TIMEOUT_MS 30000
/* How long a new cell may take to set up. */
#define SETUP_TIMEOUT_MS 10000

struct cell {
    char *dir;
    runner_proc proc; /* the tasksolver-exec --cell process */
    int sock;         /* our end of the socket pair */
    cgroup_task cg;
    cgroup_watch watch;
    int have_cg;
    int64_t cg_memory; /* the cgroup's limits now, and the cell's own */
    long cg_pids;
    int64_t own_memory;
    long own_pids;
    cell_limits next; /* the rlimits of every RUN until cell_set_limits */
    int ready;        /* READY received: a RUN may be sent */
    int running;      /* STARTED received, EXIT not yet */
    int broken;       /* damaged: only cell_free is left */
};

/* Receives one reply (blocking or not). Returns 1 with it, 0 if none is
 * there (not blocking), or -errno (EPIPE: end of file, EPROTO: not a
 * reply). */
static int recv_reply(cell *c, cell_reply *r, int block)
{
    for (;;) {
        ssize_t n = recv(c->sock, r, sizeof *r, block ? 0 : MSG_DONTWAIT);
        if (n == (ssize_t)sizeof *r) {
            r->text[sizeof r->text - 1] = '\0';
            return 1;
        }
        if (n == 0)
            return -EPIPE;
        if (n > 0)
            return -EPROTO;
        if (errno != EINTR)
            return errno == EAGAIN && !block ? 0 : -errno;
    }
}

/* Waits until the socket is readable, up to timeout_ms. 1, 0 or -errno. */
static int wait_readable(const cell *c, int timeout_ms)
{
    int64_t end = time_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        int64_t left = (end - time_mono_us()) / 1000;
        struct pollfd pf = {c->sock, POLLIN, 0};
        int n = poll(&pf, 1, left < 0 ? 0 : (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -errno : n;
    }
}

/* Waits for one reply of the given type. Returns 0, or -errno with the
 * cell marked damaged (and a FAIL's text in why, if given). */
static int expect(cell *c, uint32_t type, int timeout_ms, cell_reply *r, char *why, size_t whysz)
{
    int rc = wait_readable(c, timeout_ms);
    if (rc == 0)
        rc = -ETIMEDOUT;
    if (rc > 0)
        rc = recv_reply(c, r, 0);
    if (rc == 0)
        rc = -EAGAIN;
    if (rc > 0 && r->type == type)
        return 0;
    if (rc > 0)
        rc = r->type == CELL_FAIL ? -EIO : -EPROTO;
    if (why && rc == -EIO)
        snprintf(why, whysz, "%s", r->text);
    else if (why)
        snprintf(why, whysz, "the cell %s",
                 rc == -ETIMEDOUT ? "did not answer"
                 : rc == -EPIPE   ? "exited"
                                  : "broke its protocol");
    c->broken = 1;
    return rc;
}

/* The helper's command line: cfg's, then --dir and the task group. */
static char **full_argv(const cell_config *cfg, const cgroup_task *ct)
{
    size_t n = 0;
    while (cfg->argv[n])
        n++;
    char **v = calloc(n + 8, sizeof *v);
    if (!v)
        return NULL;
    memcpy(v, cfg->argv, n * sizeof *v);
    v[n++] = "--dir";
    v[n++] = (char *)cfg->dir;
    if (ct->mem_dir) {
        v[n++] = "--cgroup";
        v[n++] = ct->mem_dir;
    }
    if (ct->pids_dir && (!ct->mem_dir || strcmp(ct->pids_dir, ct->mem_dir) != 0)) {
        v[n++] = "--cgroup";
        v[n++] = ct->pids_dir;
    }
    return v;
}

int cell_new(const cell_config *cfg, cell **out, char *why, size_t whysz)
{
    int rc, sp[2] = {-1, -1};
    char **argv = NULL;
    cell *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c || !(c->dir = strdup(cfg->dir))) {
        rc = -ENOMEM;
        snprintf(why, whysz, "out of memory");
        goto fail_alloc;
    }
    c->sock = -1;
    c->proc.pidfd = -1;
    if (cfg->cg && cfg->cg->version != CGROUP_NONE) {
        if ((rc = cgroup_task_create(cfg->cg, cfg->cg_name, cfg->memory, cfg->pids, &c->cg)) < 0) {
            snprintf(why, whysz, "cgroup for the cell: %s", strerror(-rc));
            goto fail_alloc;
        }
        c->have_cg = 1;
        c->cg_memory = c->own_memory = cfg->memory;
        c->cg_pids = c->own_pids = cfg->pids;
        if ((rc = cgroup_watch_open(&c->cg, &c->watch)) < 0) {
            snprintf(why, whysz, "cgroup counters of the cell: %s", strerror(-rc));
            goto fail_cgroup;
        }
    }
    if (!(argv = full_argv(cfg, &c->cg))) {
        rc = -ENOMEM;
        snprintf(why, whysz, "out of memory");
        goto fail_watch;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
        rc = -errno;
        snprintf(why, whysz, "socketpair: %s", strerror(errno));
        goto fail_watch;
    }
    /* The helper's end becomes its fd 0; nothing of the server's
     * environment goes in. */
    char *no_env[] = {NULL};
    runner_opts o = {.path = argv[0], .argv = argv, .envp = no_env, .cwd = "/", .stdin_fd = sp[1]};
    rc = runner_spawn(&o, &c->proc);
    close(sp[1]);
    free(argv);
    if (rc < 0) {
        snprintf(why, whysz, "%s: %s", cfg->argv[0], strerror(-rc));
        close(sp[0]);
        goto fail_watch;
    }
    c->sock = sp[0];
    cell_reply r;
    if ((rc = expect(c, CELL_READY, SETUP_TIMEOUT_MS, &r, why, whysz)) < 0) {
        cell_free(c);
        return rc;
    }
    c->ready = 1;
    *out = c;
    return 0;

fail_watch:
    if (c->have_cg)
        cgroup_watch_close(&c->watch);
fail_cgroup:
    if (c->have_cg)
        cgroup_task_remove(&c->cg);
fail_alloc:
    if (c)
        free(c->dir);
    free(c);
    return rc;
}

void cell_free(cell *c)
{
    if (!c)
        return;
    if (c->sock >= 0)
        close(c->sock); /* init's end of file: it kills the rest and exits */
    if (c->proc.pidfd >= 0) {
        struct pollfd pf = {c->proc.pidfd, POLLIN, 0};
        if (poll(&pf, 1, 1000) <= 0)
            runner_kill(&c->proc, SIGKILL);
        runner_reap(&c->proc, NULL, 0);
        runner_proc_close(&c->proc);
    }
    if (c->have_cg) {
        cgroup_watch_close(&c->watch);
        cgroup_task_remove(&c->cg);
    }
    free(c->dir);
    free(c);
}

const char *cell_dir(const cell *c)
{
    return c->dir;
}

int cell_usable(const cell *c)
{
    return !c->broken;
}

int cell_wait_ready(cell *c, int timeout_ms)
{
    if (c->broken)
        return -EPIPE;
    if (c->ready)
        return 0;
    cell_reply r;
    int rc = expect(c, CELL_READY, timeout_ms, &r, NULL, 0);
    if (rc == -ETIMEDOUT)
        cell_abandon(c);
    if (rc < 0)
        return rc;
    /* An init that died after its READY (killed from outside) has closed
     * its end: better found now than by a task that cannot start. */
    struct pollfd pf = {c->sock, POLLRDHUP, 0};
    if (poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
        c->broken = 1;
        return -EPIPE;
    }
    c->ready = 1;
    return 0;
}

void cell_events(cell *c, cgroup_events *ev)
{
    memset(ev, 0, sizeof *ev);
    if (!c->have_cg)
        return;
    cgroup_watch_events(&c->watch, ev);
    cgroup_watch_reset_peaks(&c->watch);
}

int cell_set_limits(cell *c, const cell_limits *l)
{
    c->next = *l;
    if (!c->have_cg)
        return 0;
    int64_t memory = l->memory > 0 ? l->memory : c->own_memory;
    long pids = l->pids > 0 ? l->pids : c->own_pids;
    if (memory == c->cg_memory && pids == c->cg_pids)
        return 0;
    int rc = cgroup_task_set_limits(&c->cg, memory, pids);
    if (rc < 0) {
        c->broken = 1;
        return rc;
    }
    c->cg_memory = memory;
    c->cg_pids = pids;
    return 0;
}

/* Copies the strings of a RUN after each other into to (len bytes). */
static void put_strings(char *to, const char *path, char *const *argv, char *const *envp)
{
    size_t l = strlen(path) + 1;
    memcpy(to, path, l);
    to += l;
    for (size_t i = 0; argv[i]; i++) {
        l = strlen(argv[i]) + 1;
        memcpy(to, argv[i], l);
        to += l;
    }
    for (size_t i = 0; envp[i]; i++) {
        l = strlen(envp[i]) + 1;
        memcpy(to, envp[i], l);
        to += l;
    }
}

/* A memfd holding len bytes of data. Returns the fd or -errno. */
static int memfd_with(const char *data, size_t len)
{
    int fd = memfd_create("tasksolver-run", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            return -e;
        }
        off += (size_t)n;
    }
    return fd;
}

int cell_start(cell *c, const runner_opts *o, int in_fd, int out_fd, int err_fd, pid_t *pid)
{
    if (c->broken || !c->ready || c->running)
        return -EPIPE;
    if (o->cwd && strcmp(o->cwd, c->dir) != 0)
        return -EINVAL;
    char *const *envp = o->envp ? o->envp : environ;
    cell_run_msg m = {.op = CELL_RUN,
                      .flags = (o->sh_fallback ? CELL_SH : 0) | (o->warm_python ? CELL_PYTHON : 0),
                      .cpu = c->next.cpu,
                      .fsize = c->next.fsize,
                      .as = c->next.as,
                      .nproc = c->next.nproc};
    size_t len = strlen(o->path) + 1;
    for (; o->argv[m.argc]; m.argc++)
        len += strlen(o->argv[m.argc]) + 1;
    for (; envp[m.envc]; m.envc++)
        len += strlen(envp[m.envc]) + 1;
    if (m.argc == 0)
        return -EINVAL;
    if (len > CELL_STRINGS_MAX)
        return -E2BIG;
    m.len = (uint32_t)len;
    int inline_strings = len <= CELL_INLINE_MAX;
    char *body = malloc(sizeof m + len);
    if (!body)
        return -ENOMEM;
    put_strings(body + sizeof m, o->path, o->argv, envp);
    int fds[4], nfds = 0, memfd = -1, rc;
    const int std[3] = {in_fd, out_fd, err_fd};
    const uint32_t flag[3] = {CELL_STDIN, CELL_STDOUT, CELL_STDERR};
    for (int i = 0; i < 3; i++)
        if (std[i] >= 0) {
            fds[nfds++] = std[i];
            m.flags |= flag[i];
        }
    if (!inline_strings) {
        if ((memfd = memfd_with(body + sizeof m, len)) < 0) {
            free(body);
            return memfd;
        }
        fds[nfds++] = memfd;
        m.flags |= CELL_MEMFD;
    }
    memcpy(body, &m, sizeof m);

    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {body, sizeof m + (inline_strings ? len : 0)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(c->sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    rc = n < 0 ? -errno : 0;
    free(body);
    if (memfd >= 0)
        close(memfd);
    c->ready = 0;
    if (rc < 0) {
        c->broken = 1;
        return rc;
    }
    cell_reply r;
    if ((rc = expect(c, CELL_STARTED, START_TIMEOUT_MS, &r, NULL, 0)) < 0) {
        cell_abandon(c);
        return rc;
    }
    c->running = 1;
    *pid = r.pid;
    return 0;
}

int cell_event_fd(const cell *c)
{
    return c->sock;
}

int cell_signal(cell *c, int sig)
{
    if (!c->running || c->broken)
        return 0;
    cell_kill_msg k = {.op = CELL_KILL, .sig = sig};
    ssize_t n;
    do
        n = send(c->sock, &k, sizeof k, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof k)
        return 0;
    c->broken = 1;
    return n < 0 ? -errno : -EIO;
}

int cell_reap(cell *c, int nohang, int *wstatus, int64_t *cpu_us, char *report, size_t size)
{
    if (!c->running)
        return -ECHILD;
    cell_reply r;
    int rc = recv_reply(c, &r, !nohang);
    if (rc == 0)
        return 0;
    c->running = 0;
    if (rc > 0 && r.type == CELL_EXIT) {
        *wstatus = r.status;
        *cpu_us = r.cpu_us;
        snprintf(report, size, "%s", r.text);
        return 1;
    }
    /* Died, or broke the protocol: the task went with it. */
    c->broken = 1;
    *wstatus = SIGKILL;
    *cpu_us = 0;
    if (size)
        report[0] = '\0';
    return 1;
}

void cell_abandon(cell *c)
{
    c->broken = 1;
    if (c->proc.pidfd >= 0)
        runner_kill(&c->proc, SIGKILL); /* the helper and init: the cell's end */
}
