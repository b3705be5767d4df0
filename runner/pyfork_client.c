/* pyfork_client: see pyfork_client.h. Starts the fork server through the
 * runner (vfork, new session, fd 3 passed on), encodes run requests and
 * parses the replies. */
#include "pyfork_client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "runner_proc.h"
#include "selfpath.h"

/* Request bytes per datagram. The server reads up to 128 KiB; 32 KiB
 * stays well under the default socket buffer (208 KiB), so a send never
 * fails for size, whatever the caller's limits. */
#define PYFORK_CHUNK 32768
/* How long the server may take to answer a run request with "pid": it
 * forks at once, so only a stuck server takes this long. */
#define PYFORK_REPLY_MS 10000
/* How long pyfork_free waits for the server to exit after EOF. */
#define PYFORK_EXIT_MS 1000

struct pyfork {
    int sock;             /* our end of the control socket */
    runner_proc proc;     /* the process we started; pid 0 when adopted */
    pid_t server_pid;     /* from "ready" */
    int busy;             /* a run was sent and its end not yet read */
    int refused;          /* the run was refused at once: result holds why */
    pyfork_result result; /* with refused */
};

static void set_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || !whylen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* Waits up to timeout_ms (-1: forever) for the socket to be readable, or
 * for pidfd (if >= 0) to say the process exited. Returns 1 (socket), 2
 * (exited), 0 (time out) or -errno. */
static int wait_readable(int sock, int pidfd, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = sock, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
    int rc;
    do
        rc = poll(p, pidfd >= 0 ? 2 : 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    if (rc == 0)
        return 0;
    if (p[0].revents)
        return 1;
    return 2;
}

/* Reads one reply into out (NUL-terminated). Returns its length, or
 * -EPIPE when the server is gone. */
static int read_reply(pyfork *pf, char *out, size_t size)
{
    ssize_t n;
    do
        n = recv(pf->sock, out, size - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n == 0 || errno == ECONNRESET ? -EPIPE : -errno;
    out[n] = '\0';
    return (int)n;
}

/* Parses "ready PID". */
static int take_ready(pyfork *pf, int timeout_ms, char *why, size_t whylen)
{
    char msg[256];
    int rc = wait_readable(pf->sock, pf->proc.pid > 0 ? pf->proc.pidfd : -1, timeout_ms);
    if (rc == 0) {
        set_why(why, whylen, "the fork server was not ready after %d ms", timeout_ms);
        return -ETIMEDOUT;
    }
    if (rc == 1)
        rc = read_reply(pf, msg, sizeof msg);
    if (rc == 2 || rc == -EPIPE) {
        set_why(why, whylen, "the fork server exited before it was ready");
        return -ECHILD;
    }
    if (rc < 0) {
        set_why(why, whylen, "waiting for the fork server: %s", strerror(-rc));
        return rc;
    }
    long pid;
    char end;
    if (sscanf(msg, "ready %ld%c", &pid, &end) != 1 || pid <= 0) {
        set_why(why, whylen, "the fork server said \"%.80s\" instead of ready", msg);
        return -EPROTO;
    }
    pf->server_pid = (pid_t)pid;
    return 0;
}

/* Ends the process we started: it should exit on EOF; SIGKILL otherwise. */
static void stop_server(pyfork *pf)
{
    if (pf->proc.pid <= 0)
        return;
    if (wait_readable(pf->proc.pidfd, -1, PYFORK_EXIT_MS) != 1)
        runner_kill(&pf->proc, SIGKILL);
    int st;
    runner_reap(&pf->proc, &st, 0);
    runner_proc_close(&pf->proc);
    pf->proc.pid = 0;
}

int pyfork_start(const pyfork_config *c, pyfork **out, char *why, size_t whylen)
{
    char script[4096];
    int sv[2], rc;
    pyfork *pf = calloc(1, sizeof *pf);
    if (!pf) {
        rc = -ENOMEM;
        set_why(why, whylen, "out of memory");
        goto fail_alloc;
    }
    if (!c->script && (rc = selfpath_sibling("pyfork.py", script, sizeof script)) < 0) {
        set_why(why, whylen, "cannot find pyfork.py: %s", strerror(-rc));
        goto fail_socket;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = -errno;
        set_why(why, whylen, "socketpair: %s", strerror(errno));
        goto fail_socket;
    }
    pf->sock = sv[0];
    /* runner_spawn wants a source above 2 for fd 3 (ours may be 0-2 when
     * the caller runs without standard fds). */
    if (sv[1] < 3) {
        int fd = fcntl(sv[1], F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
            rc = -errno;
            set_why(why, whylen, "fcntl: %s", strerror(errno));
            goto fail_spawn;
        }
        close(sv[1]);
        sv[1] = fd;
    }
    char *argv[] = {(char *)c->python, (char *)(c->script ? c->script : script), NULL};
    char *empty[] = {NULL};
    runner_opts o = {
        .path = c->python,
        .argv = argv,
        .envp = c->envp ? c->envp : empty,
        .cwd = "/",
        .stdin_fd = -1,
        .wrapper = c->wrapper,
        .fd3 = sv[1],
    };
    rc = runner_spawn(&o, &pf->proc);
    close(sv[1]);
    sv[1] = -1;
    if (rc < 0) {
        set_why(why, whylen, "could not execute %s: %s", c->python, strerror(-rc));
        goto fail_spawn;
    }
    if ((rc = take_ready(pf, c->ready_ms > 0 ? c->ready_ms : 10000, why, whylen)) < 0)
        goto fail_ready;
    *out = pf;
    return 0;

fail_ready:
    close(pf->sock);
    pf->sock = -1;
    stop_server(pf);
fail_spawn:
    if (sv[1] >= 0)
        close(sv[1]);
    if (pf->sock >= 0)
        close(pf->sock);
fail_socket:
    free(pf);
fail_alloc:
    return rc;
}

int pyfork_adopt(int sock, int ready_ms, pyfork **out, char *why, size_t whylen)
{
    pyfork *pf = calloc(1, sizeof *pf);
    if (!pf) {
        close(sock);
        set_why(why, whylen, "out of memory");
        return -ENOMEM;
    }
    pf->sock = sock;
    pf->proc.pid = 0;
    pf->proc.pidfd = pf->proc.out_fd = pf->proc.err_fd = pf->proc.report_fd = -1;
    int rc = take_ready(pf, ready_ms > 0 ? ready_ms : 10000, why, whylen);
    if (rc < 0) {
        close(sock);
        free(pf);
        return rc;
    }
    *out = pf;
    return 0;
}

pid_t pyfork_server_pid(const pyfork *pf)
{
    return pf->server_pid;
}

int pyfork_fd(const pyfork *pf)
{
    return pf->sock;
}

/* Appends one field: tag, bytes, NUL. A string holding a NUL cannot be
 * encoded, and cannot be an argument or environment entry anyway. */
static void put_field(buf *b, char tag, const char *s)
{
    buf_putc(b, tag);
    buf_puts(b, s);
    buf_putc(b, '\0');
}

/* The request's fields. Returns 0 or -EINVAL / -ENOMEM. */
static int encode_task(const pyfork_task *t, buf *b)
{
    if (!t->dir || !t->dir[0] || !t->main || !t->main[0])
        return -EINVAL;
    put_field(b, 'D', t->dir);
    put_field(b, 'M', t->main);
    for (char *const *a = t->args; a && *a; a++)
        put_field(b, 'A', *a);
    for (char *const *e = t->envp; e && *e; e++)
        put_field(b, 'E', *e);
    if (t->switch_user)
        buf_printf(b, "U%lu%cG%lu%c", (unsigned long)t->uid, '\0', (unsigned long)t->gid, '\0');
    for (size_t i = 0; i < t->nlimits; i++) {
        const pyfork_rlimit *l = &t->limits[i];
        if (!l->name || !l->name[0] || strpbrk(l->name, " \n"))
            return -EINVAL;
        buf_printf(b, "L%s ", l->name);
        if (l->soft == RLIM_INFINITY)
            buf_puts(b, "inf ");
        else
            buf_printf(b, "%ju ", (uintmax_t)l->soft);
        if (l->hard == RLIM_INFINITY)
            buf_puts(b, "inf");
        else
            buf_printf(b, "%ju", (uintmax_t)l->hard);
        buf_putc(b, '\0');
    }
    for (char *const *c = t->cgroups; c && *c; c++)
        put_field(b, 'C', *c);
    return buf_failed(b) ? -ENOMEM : 0;
}

/* Sends one datagram, with nfds fds (none: 0). */
static int send_msg(int sock, const char *verb, const char *data, size_t len, const int *fds,
                    size_t nfds)
{
    struct iovec iov[2] = {{.iov_base = (void *)verb, .iov_len = strlen(verb) + 1},
                           {.iov_base = (void *)data, .iov_len = len}};
    union {
        char buf[CMSG_SPACE((3 + PYFORK_MAX_CGROUP_FDS) * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    if (nfds) {
        memset(&ctl, 0, sizeof ctl);
        m.msg_control = ctl.buf;
        m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == ECONNRESET || errno == ENOTCONN ? -EPIPE : -errno;
    return 0;
}

/* Parses an "exit" or "fail" reply into r. Returns 0 or -EPROTO. */
static int parse_end(const char *msg, pyfork_result *r)
{
    memset(r, 0, sizeof *r);
    if (strncmp(msg, "fail ", 5) == 0) {
        snprintf(r->why, sizeof r->why, "%s", msg + 5);
        return 0;
    }
    int st;
    int64_t ut, stime;
    long rss;
    char end;
    if (sscanf(msg, "exit %d %" SCNd64 " %" SCNd64 " %ld%c", &st, &ut, &stime, &rss, &end) != 4)
        return -EPROTO;
    r->started = 1;
    r->wstatus = st;
    r->utime_us = ut;
    r->stime_us = stime;
    r->maxrss_kb = rss;
    return 0;
}

int pyfork_run(pyfork *pf, const pyfork_task *t, pid_t *pid)
{
    if (pf->busy)
        return -EBUSY;
    buf b = BUF_INIT;
    int rc = encode_task(t, &b);
    if (rc == 0 && t->ncgroup_fds > PYFORK_MAX_CGROUP_FDS)
        rc = -EINVAL;
    if (rc < 0)
        goto out;
    int fds[3 + PYFORK_MAX_CGROUP_FDS] = {t->stdin_fd, t->stdout_fd, t->stderr_fd};
    if (t->ncgroup_fds)
        memcpy(fds + 3, t->cgroup_fds, t->ncgroup_fds * sizeof *fds);
    size_t off = 0;
    do {
        size_t n = b.len - off > PYFORK_CHUNK ? PYFORK_CHUNK : b.len - off;
        int last = off + n == b.len;
        rc = send_msg(pf->sock, last ? "run" : "part", b.data + off, n, fds,
                      off == 0 ? 3 + t->ncgroup_fds : 0);
        off += n;
    } while (rc == 0 && off < b.len);
    if (rc < 0)
        goto out;
    pf->busy = 1;

    char msg[512];
    rc = wait_readable(pf->sock, -1, PYFORK_REPLY_MS);
    if (rc == 0)
        rc = -ETIMEDOUT;
    if (rc > 0)
        rc = read_reply(pf, msg, sizeof msg);
    if (rc < 0)
        goto out;
    long n;
    char end;
    if (sscanf(msg, "pid %ld%c", &n, &end) == 1 && n > 0) {
        *pid = (pid_t)n;
        rc = 0;
    } else if (strncmp(msg, "fail ", 5) == 0) {
        parse_end(msg, &pf->result);
        pf->refused = 1;
        *pid = 0;
        rc = 0;
    } else {
        rc = -EPROTO;
    }
out:
    buf_destroy(&b);
    return rc;
}

int pyfork_wait(pyfork *pf, int timeout_ms, pyfork_result *r)
{
    if (!pf->busy)
        return -EINVAL;
    if (pf->refused) {
        *r = pf->result;
        pf->refused = pf->busy = 0;
        return 1;
    }
    char msg[512];
    int rc = wait_readable(pf->sock, -1, timeout_ms);
    if (rc <= 0)
        return rc;
    if ((rc = read_reply(pf, msg, sizeof msg)) < 0)
        return rc;
    if (parse_end(msg, r) < 0)
        return -EPROTO;
    pf->busy = 0;
    return 1;
}

/* Sends a verb that has no reply. */
static int send_verb(pyfork *pf, const char *msg)
{
    ssize_t n;
    do
        n = send(pf->sock, msg, strlen(msg), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == ECONNRESET || errno == ENOTCONN || errno == EPIPE ? -EPIPE : -errno;
    return 0;
}

int pyfork_prefork(pyfork *pf)
{
    return pf->busy ? -EBUSY : send_verb(pf, "spare");
}

int pyfork_drop_spare(pyfork *pf)
{
    if (pf->busy)
        return -EBUSY;
    int rc = send_verb(pf, "drop");
    if (rc == 0)
        rc = wait_readable(pf->sock, -1, PYFORK_REPLY_MS);
    if (rc == 0)
        return -ETIMEDOUT;
    char msg[64];
    if (rc > 0)
        rc = read_reply(pf, msg, sizeof msg);
    if (rc < 0)
        return rc;
    return strcmp(msg, "dropped") == 0 ? 0 : -EPROTO;
}

int pyfork_kill(pyfork *pf, int sig)
{
    char msg[32];
    snprintf(msg, sizeof msg, "kill %d", sig);
    return send_verb(pf, msg);
}

void pyfork_free(pyfork *pf)
{
    if (!pf)
        return;
    if (pf->sock >= 0)
        close(pf->sock);
    stop_server(pf);
    free(pf);
}
