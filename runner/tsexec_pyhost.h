/* tsexec_pyhost: warm Python in a sandbox cell. The cell's init
 * (tsexec_cell.h) hosts a fork server, runner/pyfork.py, which it speaks
 * to through pyfork_client.h and which starts the cell's python tasks
 * without the interpreter's start-up:
 *
 *   - it is started for the first python task, with that task's
 *     interpreter and environment (the children of a server whose
 *     environment differs in what start-up reads would run cold); again
 *     when a task names another interpreter, and after it died;
 *   - it is out of the tasks' reach: root (tasks never are), in a session
 *     of its own, hidden from them by hidepid=2, under the cell's system
 *     call filter (installed on init before) and no_new_privs, and with no
 *     capability left but CAP_SETUID and CAP_SETGID (each child becomes
 *     the task's user) and CAP_KILL (it kills a task's group); its pid is
 *     taken from the top of the PID range, so that tasks still start as
 *     pid 2;
 *   - its script lies in the server's directory, which tasks must not see
 *     and which the cell's file system therefore hides: the helper opens
 *     it before the file system is set up (as root, so a build under a
 *     0700 home works too) and python reads it as /proc/self/fd/4;
 *   - each child joins the task's cgroups through init's open cgroup.procs
 *     files, takes the task's rlimits and user, and then runs the task;
 *   - once a task is over and the cell clean (the PID counter back at 1),
 *     the server forks the next task's process ahead (a spare), which
 *     waits, root and outside the task's cgroups, for the next python
 *     task: the fork is then no part of its latency, and the task is still
 *     pid 2. The cleanup spares it as it spares the server.
 *
 * A server that cannot start (Python 3.8 or older, an interpreter that
 * fails to run the script) is not tried again for a while: python tasks
 * start cold meanwhile, and the caller learns why once, to report it.
 *
 * The server is a child of init, which reaps it with its other children
 * and tells the host (tsexec_pyhost_reaped). Not thread-safe: init is
 * single-threaded. */
#ifndef TS_TSEXEC_PYHOST_H
#define TS_TSEXEC_PYHOST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyfork_client.h"

typedef struct tsexec_pyhost {
    /* Set by the cell (owned by it): */
    int script;       /* pyfork.py, open; -1: this cell hosts no warm Python */
    int script_errno; /* why script is -1 although a script was named, or 0 */
    int null;         /* /dev/null, open */
    int last_pid;     /* the cell's ns_last_pid, open for writing */
    /* Kept here: */
    pid_t pid;  /* the fork server (in the cell); 0: none */
    pyfork *pf; /* its control socket, adopted; NULL with pid 0 */
    char *path; /* the interpreter it runs, as the task named it */
    char *argv0;
    int64_t retry_us; /* after a failed start: no new one before (monotonic) */
    long pid_max;     /* the kernel's, read at the first start; 0 before */
    int spare;        /* 1: a spare was asked for and no task took it yet */
} tsexec_pyhost;

/* After a failed start, python tasks start cold this long (seconds)
 * before a server is tried again: one that cannot start fails each time,
 * and each try costs about a cold start. */
#define TSEXEC_PYHOST_RETRY_S 30

/* Initialiser: no server yet. */
#define TSEXEC_PYHOST_NONE                                                                         \
    .script = -1, .script_errno = 0, .null = -1, .last_pid = -1, .pid = 0, .pf = NULL,             \
    .path = NULL, .argv0 = NULL, .retry_us = 0, .pid_max = 0, .spare = 0

/* 1 while a fork server runs: init must then spare it when it kills what
 * a task left. */
int tsexec_pyhost_running(const tsexec_pyhost *h);

/* Makes sure a fork server runs python as path (looked up in envp's PATH
 * as an exec of the task would) with argv[0] argv0 and the environment
 * envp: keeps the running one if it matches, else stops it and starts a
 * new one, which is ready when this returns (tens of milliseconds).
 * Returns 0; -EAGAIN, silently, within the back-off after a failed start;
 * or -errno with a sentence in why (its start failed: back-off begins). */
int tsexec_pyhost_start(tsexec_pyhost *h, const char *path, const char *argv0, char *const *envp,
                        char *why, size_t whysz);

/* Hands a task to the running server (tsexec_pyhost_start first). Returns
 * 0 with its pid in the cell; -ECANCELED when the server refused it (the
 * server stays); -EINVAL when it cannot be encoded; or -errno when the
 * server is gone or did not answer: it has then been stopped, and a child
 * it may have forked is left to the caller's cleanup. why says what went
 * wrong. */
int tsexec_pyhost_run(tsexec_pyhost *h, const pyfork_task *t, pid_t *pid, char *why, size_t whysz);

/* The control socket of the running server: readable once the task it
 * runs has ended. -1 when none runs. */
int tsexec_pyhost_fd(const tsexec_pyhost *h);

/* Takes the end of the task, once tsexec_pyhost_fd is readable. Returns 1
 * with r, 0 if not yet, or -errno when the server is gone or broke the
 * protocol: it has then been stopped and reaped, so that its child, if it
 * still runs, is an orphan of init's. */
int tsexec_pyhost_wait(tsexec_pyhost *h, pyfork_result *r);

/* Asks the running server (if any) to fork the next task's process now,
 * for the next tsexec_pyhost_run to take; call it once the cell is clean
 * and its PID counter reset, so that the spare is what a task forked then
 * would be. Does not wait. Returns 0 or -errno (no server, or it is gone:
 * the next task is then started as if no spare had been asked for). */
int tsexec_pyhost_prefork(tsexec_pyhost *h);

/* Has the server drop the spare asked for (if any), and waits until its
 * pid is free: a task started otherwise is then the process the cell's
 * next fork makes. Returns 0 or -errno (the server was gone or did not
 * answer: it has then been stopped). */
int tsexec_pyhost_drop_spare(tsexec_pyhost *h);

/* 1 if a process of the cell whose parent is ppid may be the server's
 * spare (which the cleanup must leave alone: it is no task's), else 0. */
int tsexec_pyhost_is_spare(const tsexec_pyhost *h, pid_t ppid);

/* Init reaped pid: returns 1 if that was the server (which is then
 * forgotten), 0 otherwise. */
int tsexec_pyhost_reaped(tsexec_pyhost *h, pid_t pid);

/* Stops the running server, if any: SIGKILL, reaped. */
void tsexec_pyhost_stop(tsexec_pyhost *h);

#endif
