/* gather_wproc: see gather_wproc.h. */
#include "gather_wproc.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "timefmt.h"

#define GWPROC_MAX_EXTRA 64

void gwproc_init(gwproc *w)
{
    memset(w, 0, sizeof *w);
    w->p.pid = -1;
    w->p.pidfd = w->p.out_fd = w->p.err_fd = -1;
}

/* 1 if a listening socket could be bound to port now. SO_REUSEADDR lets
 * a port whose old connections are in TIME_WAIT count as free, as it is for
 * a server that sets it (Go's and civetweb's do); binding the wildcard
 * address fails if anything listens on the port on any local address. */
static int gwproc_port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1; /* cannot tell: let the worker find out */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

int gwproc_pick_port(int *cursor, int base, int (*used)(void *arg, int port), void *arg)
{
    for (int tries = 0; tries < 1000; tries++) {
        int port = *cursor;
        *cursor = port >= 65535 ? base : port + 1;
        if (!(used && used(arg, port)) && gwproc_port_free(port))
            return port;
    }
    return -EADDRINUSE;
}

int gwproc_start(gwproc *w, const char *path, int id, int port, char *const *extra, size_t n_extra)
{
    if (n_extra > GWPROC_MAX_EXTRA)
        return -E2BIG;
    char ids[16], ports[16];
    snprintf(ids, sizeof ids, "%d", id);
    snprintf(ports, sizeof ports, "%d", port);
    char *argv[5 + GWPROC_MAX_EXTRA + 1];
    size_t k = 0;
    argv[k++] = (char *)path;
    argv[k++] = "-workerId";
    argv[k++] = ids;
    argv[k++] = "-port";
    argv[k++] = ports;
    for (size_t i = 0; i < n_extra; i++)
        argv[k++] = extra[i];
    argv[k] = NULL;
    runner_opts o = {
        .path = path,
        .argv = argv,
        .stdin_fd = -1,
        .sh_fallback = 1,
        .capture_stdout = 1,
        .capture_stderr = 1,
    };
    gwproc_init(w);
    int rc = runner_spawn(&o, &w->p);
    if (rc < 0) {
        gwproc_init(w);
        return rc;
    }
    w->running = 1;
    w->id = id;
    w->port = port;
    w->spawn_us = time_mono_us();
    return 0;
}

/* Handles one complete output line. Returns 1 if it says "started". */
static int gwproc_line(gwproc *w, char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    line[len] = '\0';
    if (len == 0)
        return 0;
    log_debug("worker %d: %s", w->id, line);
    snprintf(w->last_line, sizeof w->last_line, "%s", line);
    return strcasestr(line, "started") != NULL;
}

int gwproc_drain(gwproc *w, int stream)
{
    int *fdp = stream == 1 ? &w->p.out_fd : &w->p.err_fd;
    if (*fdp < 0)
        return 0;
    char *lb = w->partial[stream - 1].buf;
    size_t *ll = &w->partial[stream - 1].len;
    int started = 0;
    char data[4096];
    for (;;) {
        ssize_t n = read(*fdp, data, sizeof data);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                if (*ll > 0)
                    started |= gwproc_line(w, lb, *ll);
                *ll = 0;
                close(*fdp);
                *fdp = -1;
            }
            return started;
        }
        for (ssize_t i = 0; i < n; i++) {
            /* A line longer than the buffer is cut: it is only read for
             * "started" and error reports. */
            if (data[i] == '\n' || *ll == GWPROC_LINE_MAX - 1) {
                started |= gwproc_line(w, lb, *ll);
                *ll = 0;
                if (data[i] == '\n')
                    continue;
            }
            lb[(*ll)++] = data[i];
        }
    }
}

static void gwproc_describe(int wstatus, char *how, size_t size)
{
    if (WIFEXITED(wstatus))
        snprintf(how, size, "exited with code %d", WEXITSTATUS(wstatus));
    else if (WIFSIGNALED(wstatus))
        snprintf(how, size, "was killed by signal %d (%s)", WTERMSIG(wstatus),
                 strsignal(WTERMSIG(wstatus)));
    else
        snprintf(how, size, "ended (status 0x%x)", (unsigned)wstatus);
}

int gwproc_exited(const gwproc *w)
{
    if (!w->running)
        return 0;
    struct pollfd pfd = {.fd = w->p.pidfd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

void gwproc_end(gwproc *w, int force, char *how, size_t how_size)
{
    if (how_size)
        how[0] = '\0';
    if (!w->running)
        return;
    if (!force) {
        /* Read its last words (e.g. "address already in use") first. */
        gwproc_drain(w, 1);
        gwproc_drain(w, 2);
    }
    /* Also when it exited by itself: a descendant may live on in its group. */
    runner_kill(&w->p, SIGKILL);
    int wstatus = 0;
    int rc;
    while ((rc = runner_reap(&w->p, &wstatus, 0)) == -EINTR)
        ;
    if (rc == 1)
        gwproc_describe(wstatus, how, how_size);
    else
        snprintf(how, how_size, "could not be reaped: %s", strerror(-rc));
    gwproc_drain(w, 1);
    gwproc_drain(w, 2);
    runner_proc_close(&w->p);
    w->running = 0;
    w->p.pidfd = w->p.out_fd = w->p.err_fd = -1;
}

void gwproc_end_all(gwproc **ws, int n, int grace_ms)
{
    if (n > 256)
        n = 256;
    int exited[256] = {0};
    for (int i = 0; i < n; i++)
        if (ws[i]->running)
            runner_kill(&ws[i]->p, SIGTERM);
    /* Wait on the pidfds without reaping: while a leader is an unreaped
     * zombie its pid cannot be reused, so the SIGKILL below cannot reach
     * an unrelated group. */
    int64_t deadline = time_mono_us() + (int64_t)grace_ms * 1000;
    for (;;) {
        struct pollfd pfd[256];
        int idx[256];
        int m = 0;
        for (int i = 0; i < n; i++) {
            if (ws[i]->running && !exited[i]) {
                pfd[m] = (struct pollfd){.fd = ws[i]->p.pidfd, .events = POLLIN};
                idx[m++] = i;
            }
        }
        int64_t left = deadline - time_mono_us();
        if (m == 0 || left <= 0)
            break;
        if (poll(pfd, (nfds_t)m, (int)((left + 999) / 1000)) < 0 && errno != EINTR)
            break;
        for (int k = 0; k < m; k++)
            if (pfd[k].revents)
                exited[idx[k]] = 1;
    }
    char how[96];
    for (int i = 0; i < n; i++) {
        if (!ws[i]->running)
            continue;
        gwproc_end(ws[i], 1, how, sizeof how);
        log_debug("worker %d %s", ws[i]->id, how);
    }
}
