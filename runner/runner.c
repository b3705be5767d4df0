/* runner: see runner.h. The capture loop of one run and how it ended. */
#include "runner.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cell.h"
#include "timefmt.h"

/* Pipes still held by descendants that left the process group are read
 * for this long after the main process has exited, then abandoned. */
#define DRAIN_US 100000
/* One read per wake-up; the size of a default pipe buffer, so a flooding
 * child costs one poll and one read per 64 KiB. */
#define READ_CHUNK 65536
#define NEVER INT64_MAX
/* A cell told to SIGKILL a task reports its end within milliseconds; one
 * that has not after this long is killed itself. */
#define CELL_KILL_WAIT_US (5 * 1000000)

/* One read buffer per thread, kept from run to run: a malloc and a free
 * of READ_CHUNK per run made glibc grow the worker's arena (mprotect) and
 * trim it again (madvise, then page faults on the next run) on every
 * task: ~1.5 % of the server's CPU on trivial tasks (perf, --sandbox off).
 * The key's destructor frees it when the thread ends. */
static pthread_key_t chunk_key;
static int chunk_key_ok;
static pthread_once_t chunk_once = PTHREAD_ONCE_INIT;

static void chunk_key_make(void)
{
    chunk_key_ok = pthread_key_create(&chunk_key, free) == 0;
}

/* The calling thread's read buffer, or NULL when out of memory. Sets
 * *owned when the caller must free it (no key could be made). */
static char *chunk_get(int *owned)
{
    pthread_once(&chunk_once, chunk_key_make);
    char *b = chunk_key_ok ? pthread_getspecific(chunk_key) : NULL;
    *owned = 0;
    if (b)
        return b;
    b = malloc(READ_CHUNK);
    if (b && (!chunk_key_ok || pthread_setspecific(chunk_key, b) != 0))
        *owned = 1;
    return b;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* State of one runner_run capture loop. */
typedef struct run_loop {
    runner_proc p;
    runner_result *r;
    runner_chunk_fn fn;
    void *arg;
    size_t cap;       /* max_output, 0: unlimited */
    int64_t grace_us; /* kill_grace_us */
    int cancel_fd;
    int exited;       /* main process reaped */
    int stopping;     /* SIGTERM or SIGKILL sent for a timeout/cancel */
    int killed;       /* SIGKILL sent for a timeout/cancel */
    int64_t deadline; /* monotonic: timeout, SIGKILL escalation, or end of drain */
    int64_t t0;       /* monotonic time at spawn */
} run_loop;

/* Reads once from a readable stream. Returns 0 or -ENOMEM. */
static int read_stream(run_loop *s, int *fd, int stream, char *tmp)
{
    buf *b = stream == 1 ? &s->r->out : &s->r->err;
    size_t *total = stream == 1 ? &s->r->out_total : &s->r->err_total;
    ssize_t n = read(*fd, tmp, READ_CHUNK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) { /* end of file, or an error that no retry will fix */
        close_fd(fd);
        return 0;
    }
    *total += (size_t)n;
    if (s->fn)
        s->fn(s->arg, stream, tmp, (size_t)n);
    size_t keep = (size_t)n;
    if (s->cap) {
        size_t room = b->len < s->cap ? s->cap - b->len : 0;
        if (keep > room)
            keep = room;
    }
    return keep ? buf_append(b, tmp, keep) : 0;
}

/* SIGKILL for a timeout or a cancel. A process of ours is reaped for
 * sure; a cell gets a deadline to report it. */
static void kill_now(run_loop *s, int64_t now)
{
    runner_kill(&s->p, SIGKILL);
    s->killed = 1;
    s->deadline = s->p.cell ? now + CELL_KILL_WAIT_US : NEVER;
}

/* Stops the run for a timeout or a cancel: SIGTERM with a grace period,
 * or SIGKILL at once. */
static void begin_stop(run_loop *s, int64_t now)
{
    s->stopping = 1;
    if (s->grace_us > 0) {
        runner_kill(&s->p, SIGTERM);
        s->deadline = now + s->grace_us;
    } else {
        kill_now(s, now);
    }
}

static const char *const limit_names[] = {"none", "memory", "cpu", "procs", "fsize", "disk"};

const char *runner_limit_name(enum runner_limit lim)
{
    unsigned i = (unsigned)lim;
    return i < sizeof limit_names / sizeof limit_names[0] ? limit_names[i] : "none";
}

/* Applies one line of a wrapper's report to r (see "Wrappers" in runner.h). */
static void report_line(runner_result *r, char *line)
{
    int n = 0;
    long long v;
    char name[16];
    if (sscanf(line, "exec %d", &n) == 1 && n > 0) {
        r->spawn_errno = n;
        r->exited = 0;
        r->exit_code = 0;
        r->term_signal = 0;
    } else if (strncmp(line, "fail ", 5) == 0) {
        snprintf(r->wrapper_error, sizeof r->wrapper_error, "%s", line + 5);
        r->exited = 0;
        r->exit_code = 0;
        r->term_signal = 0;
    } else if (strncmp(line, "note ", 5) == 0) {
        snprintf(r->note, sizeof r->note, "%s", line + 5);
    } else if (sscanf(line, "limit %15s %lld", name, &v) == 2) {
        for (size_t i = 1; i < sizeof limit_names / sizeof limit_names[0]; i++)
            if (strcmp(name, limit_names[i]) == 0 && r->limit == RUNNER_LIMIT_NONE) {
                r->limit = (enum runner_limit)i;
                r->limit_value = v;
            }
    }
}

/* Reads what an exited wrapper (or a cell) reported. Every holder of the
 * write end is gone by now (the wrapper ends after what it ran), so one
 * pass reads it all; a report longer than the buffer is cut. */
static void read_report(run_loop *s)
{
    char rep[1024];
    size_t len = 0;
    if (s->p.cell) {
        len = strnlen(s->p.report, sizeof s->p.report);
        if (len > sizeof rep - 1)
            len = sizeof rep - 1;
        memcpy(rep, s->p.report, len);
    }
    while (s->p.report_fd >= 0 && len < sizeof rep - 1) {
        ssize_t n = read(s->p.report_fd, rep + len, sizeof rep - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close_fd(&s->p.report_fd);
    rep[len] = '\0';
    for (char *save = NULL, *line = strtok_r(rep, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        report_line(s->r, line);
}

/* The main process has exited: kill what is left of its group while the
 * unreaped zombie still pins the group id, then reap. */
static int main_exited(run_loop *s, int64_t now)
{
    int st;
    /* A cell has killed the rest of the task before it reported. */
    if (!s->p.cell)
        runner_kill(&s->p, SIGKILL);
    int rc = runner_reap(&s->p, &st, 0);
    if (rc < 0)
        return rc;
    s->exited = 1;
    s->deadline = now + DRAIN_US;
    s->r->end_us = s->r->start_us + (now - s->t0);
    s->r->cpu_us = s->p.cpu_us;
    if (WIFEXITED(st)) {
        s->r->exited = 1;
        s->r->exit_code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        s->r->term_signal = WTERMSIG(st);
    }
    read_report(s);
    return 0;
}

/* One poll round. Returns 1 when the run is over, 0 to go on, or -errno. */
static int loop_once(run_loop *s, char *tmp)
{
    struct pollfd pf[4];
    int n = 0, i_out = -1, i_err = -1, i_pid = -1, i_cancel = -1;
    if (s->p.out_fd >= 0)
        pf[i_out = n++] = (struct pollfd){s->p.out_fd, POLLIN, 0};
    if (s->p.err_fd >= 0)
        pf[i_err = n++] = (struct pollfd){s->p.err_fd, POLLIN, 0};
    if (!s->exited)
        pf[i_pid = n++] = (struct pollfd){s->p.pidfd, POLLIN, 0};
    if (!s->exited && !s->stopping && s->cancel_fd >= 0)
        pf[i_cancel = n++] = (struct pollfd){s->cancel_fd, POLLIN, 0};

    int64_t now = time_mono_us();
    if (s->deadline == NEVER || now < s->deadline) {
        struct timespec ts, *tsp = NULL;
        if (s->deadline != NEVER) {
            int64_t left = s->deadline - now;
            ts.tv_sec = left / 1000000;
            ts.tv_nsec = (left % 1000000) * 1000;
            tsp = &ts;
        }
        if (ppoll(pf, (nfds_t)n, tsp, NULL) < 0) {
            if (errno == EINTR)
                return 0;
            return -errno;
        }
        int rc;
        if (i_out >= 0 && pf[i_out].revents && (rc = read_stream(s, &s->p.out_fd, 1, tmp)) < 0)
            return rc;
        if (i_err >= 0 && pf[i_err].revents && (rc = read_stream(s, &s->p.err_fd, 2, tmp)) < 0)
            return rc;
        now = time_mono_us();
        if (i_pid >= 0 && pf[i_pid].revents && (rc = main_exited(s, now)) < 0)
            return rc;
        if (i_cancel >= 0 && pf[i_cancel].revents && !s->exited) {
            s->r->cancelled = 1;
            begin_stop(s, now);
        }
    }

    if (s->exited) {
        if (s->p.out_fd < 0 && s->p.err_fd < 0)
            return 1;
        if (now >= s->deadline)
            return 1; /* escaped descendants keep the pipes: give up on them */
    } else if (s->deadline != NEVER && now >= s->deadline) {
        if (!s->stopping) {
            s->r->timed_out = 1;
            begin_stop(s, now);
        } else if (!s->killed) {
            kill_now(s, now);
        } else {
            /* Only a cell gets here: it did not report. */
            cell_abandon(s->p.cell);
            s->deadline = NEVER;
        }
    }
    return 0;
}

int runner_run(const runner_opts *o, const runner_limits *l, runner_chunk_fn fn, void *arg,
               runner_result *r)
{
    static const runner_limits no_limits = {0, 0, 0, -1};
    if (!l)
        l = &no_limits;
    memset(r, 0, sizeof *r);
    r->out = (buf)BUF_INIT;
    r->err = (buf)BUF_INIT;

    run_loop s = {.r = r,
                  .fn = fn,
                  .arg = arg,
                  .cap = l->max_output,
                  .grace_us = l->kill_grace_us,
                  .cancel_fd = l->cancel_fd};
    /* Wall clock for the record; every duration from the monotonic clock
     * so that a clock step cannot fake a timeout or a negative run time. */
    r->start_us = time_now_us();
    s.t0 = time_mono_us();
    s.deadline = l->timeout_us > 0 ? s.t0 + l->timeout_us : NEVER;

    int exec_err;
    int err = runner_spawn_ex(o, &s.p, &exec_err);
    if (err < 0) {
        r->end_us = r->start_us + (time_mono_us() - s.t0);
        if (!exec_err)
            return err;
        r->spawn_errno = exec_err;
        return 0;
    }

    int tmp_owned;
    char *tmp = chunk_get(&tmp_owned);
    if (!tmp) {
        err = -ENOMEM;
        goto fail_loop;
    }
    while ((err = loop_once(&s, tmp)) == 0)
        ;
    if (err < 0)
        goto fail_loop;
    if (tmp_owned)
        free(tmp);
    runner_proc_close(&s.p);
    if (l->max_output) {
        r->out_truncated = r->out_total > l->max_output;
        r->err_truncated = r->err_total > l->max_output;
    }
    return 0;

fail_loop:
    if (tmp_owned)
        free(tmp);
    if (!s.exited) {
        runner_kill(&s.p, SIGKILL);
        runner_reap(&s.p, NULL, 0);
        r->end_us = r->start_us + (time_mono_us() - s.t0);
    }
    runner_proc_close(&s.p);
    return err;
}

void runner_result_destroy(runner_result *r)
{
    buf_destroy(&r->out);
    buf_destroy(&r->err);
}

/* "256 MiB", "1.5 KiB", "100 bytes". */
static void fmt_bytes(char *out, size_t size, int64_t v)
{
    if (v >= 1024 * 1024 && v % (1024 * 1024) == 0)
        snprintf(out, size, "%lld MiB", (long long)(v / (1024 * 1024)));
    else if (v >= 1024 && v % 1024 == 0)
        snprintf(out, size, "%lld KiB", (long long)(v / 1024));
    else
        snprintf(out, size, "%lld bytes", (long long)v);
}

/* "memory limit of 256 MiB exceeded; " and the like, or "". */
static void describe_limit(const runner_result *r, char *out, size_t size)
{
    char v[48];
    const char *what, *how = "exceeded";
    switch (r->limit) {
    case RUNNER_LIMIT_MEMORY:
        what = "memory limit";
        break;
    case RUNNER_LIMIT_CPU:
        what = "CPU time limit";
        break;
    case RUNNER_LIMIT_PROCS:
        what = "process limit";
        how = "reached";
        break;
    case RUNNER_LIMIT_FSIZE:
        what = "file size limit";
        break;
    case RUNNER_LIMIT_DISK:
        what = "disk space limit";
        how = "reached";
        break;
    default:
        out[0] = '\0';
        return;
    }
    if (r->limit_value <= 0)
        v[0] = '\0';
    else if (r->limit == RUNNER_LIMIT_CPU)
        snprintf(v, sizeof v, " of %lld s", (long long)r->limit_value);
    else if (r->limit == RUNNER_LIMIT_PROCS)
        snprintf(v, sizeof v, " of %lld processes", (long long)r->limit_value);
    else {
        char b[40];
        fmt_bytes(b, sizeof b, r->limit_value);
        snprintf(v, sizeof v, " of %s", b);
    }
    snprintf(out, size, "%s%s %s; ", what, v, how);
}

char *runner_describe(const runner_result *r, const runner_limits *l, char *out, size_t size)
{
    char pre[96];
    describe_limit(r, pre, sizeof pre);
    size_t n = strlen(pre);
    if (n >= size)
        n = size ? size - 1 : 0;
    if (size)
        memcpy(out, pre, n);
    size -= n;
    char *start = out;
    out += n;
    if (!size) {
        return start;
    } else if (r->wrapper_error[0]) {
        snprintf(out, size, "could not start: %s", r->wrapper_error);
    } else if (r->spawn_errno) {
        char eb[128];
        const char *name = strerrorname_np(r->spawn_errno);
        snprintf(out, size, "could not execute: %s (%s)", strerror_r(r->spawn_errno, eb, sizeof eb),
                 name ? name : "?");
    } else if (r->cancelled) {
        snprintf(out, size, "cancelled");
    } else if (r->timed_out) {
        if (l && l->timeout_us > 0)
            snprintf(out, size, "timed out after %g s", (double)l->timeout_us / 1e6);
        else
            snprintf(out, size, "timed out");
    } else if (r->exited) {
        snprintf(out, size, "exited with code %d", r->exit_code);
    } else if (r->term_signal) {
        const char *abbr = sigabbrev_np(r->term_signal);
        if (abbr)
            snprintf(out, size, "killed by signal %d (SIG%s)", r->term_signal, abbr);
        else
            snprintf(out, size, "killed by signal %d", r->term_signal);
    } else {
        snprintf(out, size, "did not finish");
    }
    return start;
}
