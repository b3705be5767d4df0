/* pool: the fixed set of worker threads that run tasks.
 *
 * Each worker takes the oldest waiting task (tasks_next), runs it in the
 * worker's private directory through the runner with the configured limits,
 * publishes the result (tasks_finished), empties the directory and asks
 * for the next task. Workers remove their directories when they exit. */
#ifndef TS_POOL_H
#define TS_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "tasks.h"

/* The PATH of every task. */
#define POOL_TASK_PATH "/usr/local/bin:/usr/bin:/bin"

/* The environment of every task, HOME and TMPDIR (its directory) aside. */
extern char *const pool_env_base[];

typedef struct pool_config {
    int workers;
    double task_timeout; /* seconds; 0: none */
    size_t max_output;
    const char *work_dir; /* existing directory for task directories */
    const char *python;
    const char *calc_command;        /* for calc tasks: "PROGRAM ARGS" or NULL */
    const unsigned char *calc_image; /* non-NULL: PROGRAM's bytes, written into each
                                        calc task's directory as calc_name and run
                                        from there (see reach.h); borrowed */
    size_t calc_len;
    const char *calc_name;
    /* languages of TASK_LANG tasks, or NULL (borrowed); a compile's limit */
    const struct lang_table *langs;
    double compile_timeout;        /* seconds */
    const struct sandbox *sandbox; /* NULL: tasks run unconfined; borrowed */
    const char *refuse;            /* non-NULL: every task ends in ERROR with this
                                      sentence, never run (the sandbox cannot
                                      separate tasks from the server); borrowed */
} pool_config;

typedef struct pool {
    pool_config cfg; /* strings borrowed from the caller */
    tasks *tk;       /* where tasks come from and their ends go */
    pthread_t *threads;
    int started;            /* threads to join */
    int *cancel_fds;        /* one eventfd a worker: readable once its task must
                               die (POST /cancel_task, or pool_cancel) */
    atomic_int next_worker; /* hands each worker its index */
    atomic_int stopping;    /* pool_cancel was called */
    char **calc_argv;       /* split calc_command, or NULL */
} pool;

/* Starts cfg->workers threads, which take tasks from tk until
 * tasks_stop_queue. Returns 0 or -errno (then nothing runs and nothing
 * needs destroying). */
int pool_start(pool *p, const pool_config *cfg, tasks *tk);

/* Kills running tasks (their runs end as ERROR "cancelled"). Safe to call
 * from any thread, more than once. */
void pool_cancel(pool *p);

/* Undoes pool_cancel for the runs that start from now on: a node that
 * killed its tasks when it lost its shared store runs again once it is
 * back. Safe from any thread. */
void pool_cancel_reset(pool *p);

/* Joins the workers (tasks_stop_queue first so they stop) and frees p. */
void pool_join(pool *p);

#endif
