/* cell_proto: the messages between a worker (runner/cell.c) and the init
 * of its cell (runner/tsexec_cell.c). Header only: the exec helper is
 * linked on its own.
 *
 * One SOCK_SEQPACKET socket pair per cell, so each message is one
 * datagram, never split or merged, and kept in order:
 *
 *   worker                                      init (PID 1 of the cell)
 *                                         <-    READY            set up
 *   RUN + strings, fds (stdin, stdout,    ->
 *   stderr, each if flagged; memfd last)
 *                                         <-    STARTED pid
 *   KILL sig (none or more)               ->
 *                                         <-    EXIT status cpu report
 *                                               (every process of the
 *                                               task is dead and reaped)
 *                                               cleans up
 *                                         <-    READY
 *
 * A RUN is sent only after a READY. A KILL that arrives when no task runs
 * (it crossed the EXIT) is ignored. FAIL text instead of READY: the set-up
 * or a cleanup failed, and init exits; the cell is damaged and the worker
 * builds a new one. End of file on the socket: init kills the task, if
 * any, and exits; the kernel then kills whatever is left in the cell. */
#ifndef TS_CELL_PROTO_H
#define TS_CELL_PROTO_H

#include <stdint.h>

enum cell_op { CELL_RUN = 1, CELL_KILL = 2 };
enum cell_reply_type { CELL_READY = 1, CELL_STARTED = 2, CELL_EXIT = 3, CELL_FAIL = 4 };

/* RUN flags. */
#define CELL_SH 1u     /* run a file the kernel refuses as ENOEXEC with /bin/sh */
#define CELL_STDIN 2u  /* an fd for stdin is attached (else /dev/null) */
#define CELL_STDOUT 4u /* an fd for stdout is attached (else /dev/null) */
#define CELL_STDERR 8u /* an fd for stderr is attached (else /dev/null) */
#define CELL_MEMFD 16u /* the strings are in an attached memfd, not in the message */
#define CELL_PYTHON                                                                                \
    32u /* the program is PYTHON MAIN ARGS...: a cell that hosts warm                              \
           Python (tsexec_pyhost.h) starts it from its fork server,                                \
           any other runs it as it is */

/* Strings up to this size travel in the message (the socket's default
 * buffer holds ~200 KiB); longer ones, a huge argv, in a memfd. */
#define CELL_INLINE_MAX 65536u
/* Beyond this the kernel would refuse the exec anyway (E2BIG). */
#define CELL_STRINGS_MAX (64u << 20)

/* RUN: followed (or, with CELL_MEMFD, the memfd filled) by len bytes:
 * the program's path, argc arguments (argv[0] included) and envc
 * environment entries, each NUL-terminated. The task runs in the cell's
 * directory, with the task's own rlimits where one is above 0 and the
 * cell's (its command line's) for the others; its memory and process
 * limits are the cell's cgroup's, which the worker sets before the RUN. */
typedef struct cell_run_msg {
    uint32_t op; /* CELL_RUN */
    uint32_t flags;
    uint32_t argc;
    uint32_t envc;
    uint32_t len;
    uint32_t pad;  /* 0 */
    int64_t cpu;   /* RLIMIT_CPU, seconds (0: the cell's) */
    int64_t fsize; /* RLIMIT_FSIZE, bytes (0: the cell's) */
    int64_t as;    /* RLIMIT_AS, bytes (0: the cell's) */
    int64_t nproc; /* RLIMIT_NPROC (0: the cell's) */
} cell_run_msg;

typedef struct cell_kill_msg {
    uint32_t op; /* CELL_KILL */
    int32_t sig; /* sent to every process of the task */
} cell_kill_msg;

typedef struct cell_reply {
    uint32_t type;  /* enum cell_reply_type */
    int32_t pid;    /* STARTED: the task's pid inside the cell */
    int32_t status; /* EXIT: the task's wait status */
    uint32_t pad;   /* 0 */
    int64_t cpu_us; /* EXIT: user + system CPU time of all its processes */
    char text[480]; /* EXIT: report lines as a wrapper's (runner_proc.h);
                       FAIL: what failed. NUL-terminated */
} cell_reply;

#endif
