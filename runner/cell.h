/* cell: a worker's sandbox that lives across tasks, the worker's side.
 *
 * A cell is one `tasksolver-exec --cell` process (tsexec.c) whose init
 * (tsexec_cell.h) is PID 1 of PID, mount, IPC, UTS and network
 * namespaces made once, with the task file system set up once for the
 * worker's task directory, plus the worker's task cgroup, made once with
 * the memory and process limits (which a task's own replace for it,
 * cell_set_limits). Each task runs in it through the runner
 * (runner_opts.cell): the runner makes the output pipes as usual, the cell
 * passes them to init with the program, init starts the task and reports
 * its pid, then its end; the runner's capture loop reads the pipes as for
 * any child. Between two tasks init kills and reaps every process left and
 * empties what a task can write (see tsexec_cell.h), before it says READY
 * for the next.
 *
 * Talking to init goes through a SOCK_SEQPACKET socket pair
 * (cell_proto.h). A cell is damaged when init died or broke the protocol,
 * a cleanup failed, or it did not answer in time: cell_usable then says
 * no, and its owner frees it and makes a new one.
 *
 * Not thread-safe: a cell belongs to one worker thread. */
#ifndef TS_CELL_H
#define TS_CELL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "runner_proc.h"

typedef struct cell cell;

typedef struct cell_config {
    char *const *argv;     /* the helper's command line: tasksolver-exec --cell and
                              the sandbox's options, NULL-terminated (borrowed) */
    const char *dir;       /* the worker's task directory (absolute) */
    const cgroup_root *cg; /* where the task group goes; NULL or CGROUP_NONE: none */
    const char *cg_name;   /* its name under cg */
    int64_t memory;        /* its memory limit, bytes (0: none) */
    long pids;             /* its process limit (0: none) */
} cell_config;

/* Builds a cell and waits until it is ready (a few milliseconds). Returns
 * 0 and *out, or -errno with a sentence in why (the helper's own when its
 * set-up failed) and nothing left behind. */
int cell_new(const cell_config *cfg, cell **out, char *why, size_t whysz);

/* Ends the cell: init is told (the socket closes), the kernel kills
 * whatever is left in its namespaces, the task group is removed. Waits
 * for the helper to exit (up to a second, then kills it). NULL is fine. */
void cell_free(cell *c);

/* The task directory the cell was built for. */
const char *cell_dir(const cell *c);

/* Waits until the cell has cleaned up after its last task (up to
 * timeout_ms), so that a task may be started. Returns 0, or -errno when
 * the cell is damaged (then only cell_free is left to do). */
int cell_wait_ready(cell *c, int timeout_ms);

/* What the task group went through during the last task (call once per
 * task, after it ended), then sets its high-water marks back for the
 * next task. No group: all zero. */
void cell_events(cell *c, cgroup_events *ev);

/* The limits of the next task; 0 in a field: the cell's own (its
 * cell_config's memory and pids, its command line's rlimits). */
typedef struct cell_limits {
    int64_t memory; /* the cgroup's memory limit, bytes */
    long pids;      /* the cgroup's process limit */
    int64_t cpu;    /* rlimits of the task's processes (cell_proto.h) */
    int64_t fsize;
    int64_t as;
    int64_t nproc;
} cell_limits;

/* Gives the tasks started from now on (until the next call) the limits
 * l: the cgroup's at once, when they differ from those in force, the
 * rlimits with each RUN. Call when the cell is ready (cell_wait_ready).
 * Returns 0, or -errno when the cgroup refused them (the cell is then
 * damaged). */
int cell_set_limits(cell *c, const cell_limits *l);

/* The runner's side (runner_proc.c, runner.c). */

/* Starts o in the cell, ready by cell_wait_ready, with in_fd, out_fd and
 * err_fd as its stdin, stdout and stderr (-1: /dev/null); o->cwd must be
 * NULL or the cell's directory. Returns 0 with the task's pid inside the
 * cell, -E2BIG for arguments and environment beyond CELL_STRINGS_MAX, or
 * -errno; nothing runs then, and cell_usable says whether the cell is
 * damaged. Whether the program itself could be executed is told by
 * cell_reap's report ("exec ERRNO"). */
int cell_start(cell *c, const runner_opts *o, int in_fd, int out_fd, int err_fd, pid_t *pid);

/* Readable once the task's end is reported (or the cell died). */
int cell_event_fd(const cell *c);

/* Sends sig to every process of the running task. Returns 0 (also when
 * no task runs), or -errno when the cell is damaged. */
int cell_signal(cell *c, int sig);

/* Takes the task's end: returns 1 with its wait status, the CPU time of
 * all its processes and the report lines of runner_proc.h's wrappers
 * (NUL-terminated, cut to size); 0 if not yet (nohang); -errno if no task
 * runs. A cell that died meanwhile reports the task killed by SIGKILL. */
int cell_reap(cell *c, int nohang, int *wstatus, int64_t *cpu_us, char *report, size_t size);

/* Gives up on a cell that does not report the end of a task it was told
 * to kill: kills the cell (which kills the task), after which cell_reap
 * reports at once. The cell is damaged from then on. */
void cell_abandon(cell *c);

/* 1 unless the cell is damaged. */
int cell_usable(const cell *c);

#endif
