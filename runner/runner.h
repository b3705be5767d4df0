/* runner: start a program, capture its output, bound its time.
 *
 * A small library with no HTTP or JSON in it, shared by the server's worker
 * pool and the client tools. Two levels:
 *  - runner_spawn / runner_kill / runner_reap (runner_proc.h): the raw
 *    process, for callers that run their own event loop;
 *  - runner_run: spawn, capture both streams concurrently with a cap,
 *    enforce a wall-clock timeout, kill the whole process group at the end,
 *    reap, and report how it ended.
 *
 * Thread-safe: every call works only on the objects passed to it. */
#ifndef TS_RUNNER_H
#define TS_RUNNER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "runner_proc.h"

/* Bounds for runner_run. Zero values mean: no timeout, no output cap. */
typedef struct runner_limits {
    int64_t timeout_us;    /* wall-clock limit from spawn */
    size_t max_output;     /* bytes kept per stream; the rest is read and dropped */
    int64_t kill_grace_us; /* SIGTERM first, SIGKILL after this (0: SIGKILL at once) */
    int cancel_fd;         /* -1, or an fd that becomes readable to ask for the
                              run to be stopped (shutdown); treated like a timeout
                              but reported as cancelled. 0 is stdin, not "none" */
} runner_limits;

/* Called from runner_run with each piece of output as it is read
 * (stream 1 = stdout, 2 = stderr), also for bytes beyond the cap. */
typedef void (*runner_chunk_fn)(void *arg, int stream, const char *data, size_t len);

/* A resource limit that ended a run (set from a wrapper's report, or by a
 * caller that knows better, such as the sandbox reading its cgroup). */
enum runner_limit {
    RUNNER_LIMIT_NONE,
    RUNNER_LIMIT_MEMORY, /* bytes */
    RUNNER_LIMIT_CPU,    /* seconds of CPU time */
    RUNNER_LIMIT_PROCS,  /* processes at once */
    RUNNER_LIMIT_FSIZE,  /* bytes in one file */
    RUNNER_LIMIT_DISK,   /* bytes of private disk space */
};

/* "memory", "cpu", "procs", "fsize", "disk", or "none". */
const char *runner_limit_name(enum runner_limit lim);

/* How a run ended. */
typedef struct runner_result {
    int spawn_errno; /* non-zero: the program never ran (errno value) */
    int exited;      /* 1: exited normally, exit_code is valid */
    int exit_code;
    int term_signal;  /* signal that ended it, 0 if none */
    int timed_out;    /* killed because timeout_us passed */
    int cancelled;    /* killed because cancel_fd became readable */
    buf out;          /* captured stdout, at most max_output bytes */
    buf err;          /* captured stderr, at most max_output bytes */
    size_t out_total; /* bytes the program wrote to stdout */
    size_t err_total;
    int out_truncated; /* out_total > max_output */
    int err_truncated;
    int64_t start_us;        /* wall clock at spawn */
    int64_t end_us;          /* wall clock when it ended */
    int64_t cpu_us;          /* user+system CPU time of the reaped child */
    enum runner_limit limit; /* a limit the program hit, or RUNNER_LIMIT_NONE */
    int64_t limit_value;     /* that limit, in its unit */
    int64_t memory_peak;     /* bytes: peak memory of the whole process tree, from
                                its cgroup (set by the sandbox); 0: unknown */
    char wrapper_error[160]; /* a wrapper's "fail" report, or "" */
    char note[200];          /* a wrapper's or cell's "note" report, or "" */
} runner_result;

/* Runs a program to the end: spawns it, reads stdout and stderr at the
 * same time (so neither can fill up and block the child), kills it and
 * its process group on timeout or cancel (SIGTERM, then SIGKILL after
 * kill_grace_us), and always SIGKILLs the group once the main process has
 * exited so that no background descendant in the group outlives the run.
 * Pipes still held open by escaped descendants are drained for at most
 * 100 ms more. l may be NULL (no limits, no cancel_fd); fn may be NULL.
 * Returns 0 when the run took place or the spawn failed (see spawn_errno),
 * -errno on an internal failure (poll, pipe, memory). r must be released
 * with runner_result_destroy in every case. */
int runner_run(const runner_opts *o, const runner_limits *l, runner_chunk_fn fn, void *arg,
               runner_result *r);

/* Frees the buffers of r. */
void runner_result_destroy(runner_result *r);

/* Writes a short human sentence describing how r ended into out, e.g.
 * "exited with code 2", "killed by signal 9 (SIGKILL)", "timed out after
 * 5 s", "cancelled", "could not execute: No such file or directory
 * (ENOENT)", "could not start: TEXT"; a limit comes first:
 * "memory limit of 256 MiB exceeded; killed by signal 9 (SIGKILL)".
 * l may be NULL (the timeout is then not named). Returns out. */
char *runner_describe(const runner_result *r, const runner_limits *l, char *out, size_t size);

#endif
