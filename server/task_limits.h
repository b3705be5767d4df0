/* task_limits: the limits one task asked for in POST /create_task, and
 * the same shape for a server's caps on them.
 *
 * Header only: the task (task.h) carries one, the request parser
 * (request_limits.h) fills it, the pool merges it with the server's
 * settings. A field of 0 is "not asked" in a task (the server's setting
 * applies) and "no cap" in caps; -1 in caps: the server cannot apply
 * that limit at all (--sandbox off applies only timeout and output). */
#ifndef TS_TASK_LIMITS_H
#define TS_TASK_LIMITS_H

#include <stdint.h>

typedef struct task_limits {
    double timeout; /* wall-clock seconds */
    int64_t cpu;    /* seconds of CPU time per process */
    int64_t memory; /* bytes of the task's process tree */
    int64_t procs;  /* processes (and threads) at once */
    int64_t output; /* bytes kept per stream */
    int64_t fsize;  /* bytes per file written */
    int64_t disk;   /* bytes of the task's private disk */
} task_limits;

/* The value that applies: what the task asked for, else the server's. */
static inline int64_t task_limit_pick(int64_t asked, int64_t server)
{
    return asked > 0 ? asked : server;
}

/* Whether l asks for any limit of its own. */
static inline int task_limits_asked(const task_limits *l)
{
    return l->timeout > 0 || l->cpu > 0 || l->memory > 0 || l->procs > 0 || l->output > 0 ||
           l->fsize > 0 || l->disk > 0;
}

#endif
