/* tsexec_cell: the init of a cell, PID 1 of the namespaces that
 * `tasksolver-exec --cell` made once for a worker, with the task file
 * system set up (tsexec_fs, in cell mode). It serves its worker's run
 * requests (cell_proto.h) one after the other until the socket closes:
 *
 *   - copies the task's files into the task directory, starts the task
 *     (tsexec_task: the same lock-down as a task of the per-task mode),
 *     reaps it and, as PID 1, every orphan of it;
 *   - once the task's main process has exited (or been killed on the
 *     worker's KILL): kill(-1, SIGKILL), which from PID 1 reaches every
 *     other process of the namespace, setsid and double forks included,
 *     and reaps until none is left; then reports the exit;
 *   - cleans up everything a task can leave behind before the next one:
 *     the task directory, /tmp, /var/tmp and /dev/shm (emptied), SysV
 *     shared memory, semaphores and message queues (the cell has its own
 *     IPC namespace), POSIX message queues (through a mount of the cell's
 *     mqueue file system that only init holds), and the PID counter (so
 *     that pids do not tell how many processes earlier tasks made).
 *     Sockets die with their processes, and the cell's network namespace
 *     keeps no TIME_WAIT connections (tcp_max_tw_buckets 0), so a port a
 *     task used is free for the next. A failed cleanup ends the cell: it
 *     is never handed another task.
 *
 * Warm Python (tsexec_pyhost.h): a RUN flagged CELL_PYTHON is handed to
 * the cell's fork server, where run_one would call tsexec_task_start; the
 * server forks the task, which locks itself down as tsexec_task does
 * (cgroups through init's open cgroup.procs files, rlimits, user; the
 * filter is inherited), and reports its pid and, once it has reaped it,
 * its status and usage, which init passes on as STARTED and EXIT. The
 * task's orphans still land on init. The server is out of the tasks' reach
 * as init is (root, hidden by hidepid=2, under the filter), and must
 * survive the cleanup: while it runs, init does not kill(-1) but has a
 * child of its own become the tasks' user and kill(-1) from there, which
 * reaches exactly the tasks' processes (they cannot change uid), then
 * looks in the cell's /proc until no other process is left. A server
 * that dies while its task runs leaves the task to init, which reaps it
 * and reports its end itself; one that fails before its task started is
 * replaced once, then the task starts cold. A server that is not root,
 * whose tasks share the cell's uid, hosts no fork server.
 *
 * Single-threaded; the process ends in tsexec_cell_serve. */
#ifndef TS_TSEXEC_CELL_H
#define TS_TSEXEC_CELL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tsexec_fs.h"
#include "tsexec_lock.h"
#include "tsexec_pyhost.h"

typedef struct tsexec_cell {
    int sock;      /* the worker's SOCK_SEQPACKET end */
    tsexec_fs *fs; /* set up in cell mode */
    const tsexec_limits *lim;
    uid_t uid; /* tasks' user; (uid_t)-1: ours */
    gid_t gid;
    int seccomp;           /* each task installs the filter (0: init did, they inherit it) */
    const int *cgroup_fds; /* the task's groups (cgroup.procs, or v1 tasks), open for writing */
    int ncgroup;
    int pyfork_fd;    /* warm Python's pyfork.py, open; -1: python tasks start cold */
    int pyfork_errno; /* why pyfork_fd is -1 although a script was named, or 0 */
    /* Set by tsexec_cell_prepare: */
    int last_pid;     /* the cell's /proc/sys/kernel/ns_last_pid, open */
    int mqueue;       /* root of a private mount of the cell's mqueue fs, open */
    int null;         /* /dev/null, open for reading and writing */
    int sigchld;      /* signalfd for SIGCHLD (blocked from then on) */
    int proc;         /* the cell's /proc, open: what is left of a task */
    tsexec_pyhost py; /* the fork server, when tasks' uid is not ours */
} tsexec_cell;

/* Opens what the cleanups need, in the cell's namespaces, once its file
 * system is set up. Returns 0, or -errno with the failed step in step. */
int tsexec_cell_prepare(tsexec_cell *c, char *step, size_t stepsz);

/* Sends READY and serves requests until the socket closes (then exits 0),
 * or until a cleanup fails or the worker breaks the protocol (then sends
 * FAIL if it can and exits 1). Never returns. */
__attribute__((noreturn)) void tsexec_cell_serve(tsexec_cell *c);

/* Sends a FAIL with the text on the socket (set-up failures before
 * serving). */
void tsexec_cell_fail(int sock, const char *text);

#endif
