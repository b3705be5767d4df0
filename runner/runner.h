/* runner: start a program, capture its output, bound its time.
 *
 * A small library with no HTTP or JSON in it, shared by the server's worker
 * pool and the client tools. Programs are started with vfork + execve (so
 * the cost does not grow with the caller's memory, and no stack is mapped
 * and unmapped per spawn as glibc's posix_spawn does), in a new session
 * whose process group id equals the child's pid, with an empty signal
 * mask, default signal dispositions and every fd >= 3 closed. The child is
 * tracked through a pidfd, so nothing here ever calls
 * waitpid(-1) or touches SIGCHLD.
 *
 * Two levels:
 *  - runner_spawn / runner_kill / runner_reap: the raw process, for callers
 *    that run their own event loop (the gather supervisor);
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

/* What to start. Only `path` and `argv` are required. */
typedef struct runner_opts {
    const char *path;     /* program; a name without '/' is looked up in PATH */
    char *const *argv;    /* NULL-terminated, argv[0] included */
    char *const *envp;    /* NULL: the caller's environment */
    const char *cwd;      /* NULL: the caller's working directory */
    int stdin_fd;         /* fd given to the child as stdin; -1: /dev/null */
    int sh_fallback;      /* if the kernel refuses the file as ENOEXEC (no #!
                             line), run "/bin/sh path argv[1..]" like execvp */
    int capture_stdout;   /* 1: pipe to the parent; 0: /dev/null */
    int capture_stderr;   /* 1: pipe to the parent; 0: /dev/null */
    char *const *wrapper; /* NULL, or the NULL-terminated argv prefix of a program
                             that runs this one for us (see "Wrappers") */
} runner_opts;

/* Wrappers. With o->wrapper set, the runner starts wrapper[0] with the
 * arguments WRAPPER... PATH ARGV... (the program's argv[0] included), in
 * the session, directory and environment the program would have had, with
 * the same fds 0-2 plus fd 3: the write end of a report pipe (every other
 * fd is closed). The wrapper runs PATH itself (sh_fallback is then its
 * business; a PATH without '/' is looked up in the PATH of envp, the
 * program's own, where runner_spawn uses the caller's) and ends as the
 * program ended: same exit code, or killed by the same signal. Once it
 * has exited, the runner reads the lines it wrote to fd 3:
 *   "exec ERRNO"        the program could not be executed: spawn_errno;
 *   "fail TEXT"         the wrapper could not prepare the run: wrapper_error;
 *   "limit NAME VALUE"  the program hit a resource limit (NAME as in
 *                       runner_limit_name, VALUE in bytes, seconds or
 *                       processes): limit, limit_value.
 * Anything else is ignored. */

/* A started process. pid is also its process group id. */
typedef struct runner_proc {
    pid_t pid;
    int pidfd;      /* readable when the process has exited */
    int out_fd;     /* read end of stdout (O_NONBLOCK|O_CLOEXEC) or -1 */
    int err_fd;     /* read end of stderr (O_NONBLOCK|O_CLOEXEC) or -1 */
    int64_t cpu_us; /* set by runner_reap: user+system CPU time of the
                       process and of the descendants it waited for */
    int report_fd;  /* read end of a wrapper's report pipe
                       (O_NONBLOCK|O_CLOEXEC), or -1 */
} runner_proc;

/* Starts a process. Returns 0 and fills *p, or -errno (ENOENT, EACCES,
 * ENOEXEC, EMFILE...; the exec error is reported here, synchronously).
 * On error no process exists and no fd is left open. */
int runner_spawn(const runner_opts *o, runner_proc *p);

/* Sends sig to the process's whole group. Returns 0 or -errno (ESRCH if
 * nothing is left in the group). Call it before runner_reap: until the
 * reap, the exited process still holds its pid, so the group id cannot have
 * been handed to anyone else. */
int runner_kill(const runner_proc *p, int sig);

/* Reaps the process if it has exited (blocks when !nohang). Returns 1 and
 * sets *wstatus (as waitpid) and p->cpu_us when reaped, 0 if still running
 * (nohang), or -errno (ECHILD once it has been reaped). Reaping goes through
 * the pidfd, so it can never collect some other child. */
int runner_reap(runner_proc *p, int *wstatus, int nohang);

/* Closes the fds of p that are still open (pipes, pidfd). Does not kill or
 * reap: call runner_kill/runner_reap first. */
void runner_proc_close(runner_proc *p);

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
    char wrapper_error[160]; /* a wrapper's "fail" report, or "" */
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
 * "memory limit exceeded (256 MiB); killed by signal 9 (SIGKILL)".
 * l may be NULL (the timeout is then not named). Returns out. */
char *runner_describe(const runner_result *r, const runner_limits *l, char *out, size_t size);

#endif
