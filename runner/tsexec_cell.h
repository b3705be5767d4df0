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
 * Hosting a helper process (the seam for a warm interpreter, such as a
 * Python fork server, that forks one task per request): init would start
 * it once, after tsexec_cell_prepare and the filter, as a child that
 * never runs task code itself and that inherits the open cgroup.procs
 * files (paths would not do: the cell's file system is read-only by
 * then). A RUN flagged for it (a flag next to CELL_SH) is handed to it
 * where run_one calls tsexec_task_start; it forks the task, which locks
 * itself down as tsexec_task does (cgroups, rlimits, user, no_new_privs;
 * the filter is inherited), and reports the task's pid and, once it has
 * reaped it, its status and usage, which init passes on as STARTED and
 * EXIT. Orphans of the task still land on init. The helper is out of the
 * tasks' reach as init is: root (tasks never are), hidden by hidepid=2,
 * under the filter. The one change it needs is in the cleanup: kill(-1)
 * from init would kill the helper too, so the kill must go through a
 * child of init that first drops to the tasks' uid (kill(-1) then reaches
 * exactly the tasks' processes, which cannot change uid) and exits once
 * kill(-1) finds none, while init reaps. A server that is not root, whose
 * tasks share the cell's uid, hosts no helper.
 *
 * Single-threaded; the process ends in tsexec_cell_serve. */
#ifndef TS_TSEXEC_CELL_H
#define TS_TSEXEC_CELL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tsexec_fs.h"
#include "tsexec_lock.h"

typedef struct tsexec_cell {
    int sock;      /* the worker's SOCK_SEQPACKET end */
    tsexec_fs *fs; /* set up in cell mode */
    const tsexec_limits *lim;
    uid_t uid; /* tasks' user; (uid_t)-1: ours */
    gid_t gid;
    int seccomp;           /* each task installs the filter (0: init did, they inherit it) */
    const int *cgroup_fds; /* cgroup.procs of the task's groups, open for writing */
    int ncgroup;
    /* Set by tsexec_cell_prepare: */
    int last_pid; /* the cell's /proc/sys/kernel/ns_last_pid, open */
    int mqueue;   /* root of a private mount of the cell's mqueue fs, open */
    int null;     /* /dev/null, open for reading and writing */
    int sigchld;  /* signalfd for SIGCHLD (blocked from then on) */
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
