/* jobs: the arithmetic jobs of a master and their single operations.
 *
 * A job is an expression parsed into a plan (expr.h). Its operations
 * become "ready" when both operands are known; ready operations of every
 * job wait in one FIFO that the dispatcher takes from. When an operation's
 * result comes back, the operation that uses it may become ready in turn;
 * the result of the last one is the job's answer. A failed operation
 * finishes its job with an error; results of its other operations that
 * arrive later are ignored.
 *
 * Ids are integers counting from 1. Jobs are kept up to max_kept; beyond
 * that the oldest finished ones are dropped (their ids are then unknown).
 * Unfinished jobs are never dropped. With a store (jobstore.h) every job
 * is recorded before its id is handed out, its finish and its eviction
 * follow, and a restarted master loads them back (jobs_restore).
 *
 * Locking: `lock` protects every field of the table, of every job and the
 * ready FIFO. It is a leaf lock: nothing else is locked while it is held,
 * and no I/O happens under it (log lines are written after unlocking). */
#ifndef TS_JOBS_H
#define TS_JOBS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "expr.h"
#include "jobstore.h"
#include "num.h"

/* One operation to compute, as handed to the dispatcher. */
typedef struct jobs_op {
    int64_t job_id;
    uint32_t node; /* index of the operation in the job's plan */
    enum num_op op;
    num a, b;
    uint32_t offset; /* byte offset of the operator in the expression */
    int attempts;    /* failed tries so far (carried across requeues) */
} jobs_op;

struct job;
struct jobs_ready;

typedef struct jobs {
    pthread_mutex_t lock; /* protects everything below and all jobs */
    struct job **slots;   /* circular: the job with id base_id + k is at
                             slots[(head + k) % cap], NULL once dropped */
    size_t cap, head, span;
    int64_t base_id; /* id of slots[head] */
    int64_t next_id;
    long kept; /* jobs in the table */
    long unfinished;
    long max_kept;
    struct job *fin_first, *fin_last; /* finished jobs, oldest first */
    struct jobs_ready *ready;         /* owned */
    jobstore *store;                  /* borrowed; NULL: memory only. Set once by
                                       * jobs_restore, then read-only */
} jobs;

/* What jobs_restore found. */
typedef struct jobs_restored {
    long finished;   /* finished jobs kept */
    long unfinished; /* jobs planned again from their expression */
    long dropped;    /* finished jobs beyond max_kept, deleted */
    int64_t next_id; /* the id the next job gets */
} jobs_restored;

/* Returns 0 or -errno (then nothing needs destroying). max_kept >= 1. */
int jobs_init(jobs *j, long max_kept);

/* Frees every job. */
void jobs_destroy(jobs *j);

/* Makes st (borrowed, NULL: memory only) where j keeps its jobs, and
 * loads what st kept: finished jobs as they ended, unfinished ones planned
 * again from their expression with their first operations ready (a job
 * that was half computed starts over). Retention applies at once: the
 * oldest finished beyond max_kept are dropped, from st too. Ids go on
 * after the highest ever handed out. Call once, after jobs_init and before
 * any other use of j. Returns 0 and fills *n, or -errno with a sentence in
 * err (then call jobs_destroy). */
int jobs_restore(jobs *j, jobstore *st, jobs_restored *n, char *err, size_t errsz);

/* Adds a job for the expression text (len bytes, copied) and its plan,
 * which the table takes over. Its first operations become ready; a plan
 * without operations ("5") finishes at once. Returns 0 and sets *id and
 * *finished, or -ENOMEM (then the plan is still the caller's).
 * With a store, the job is recorded there (without the lock held) before
 * it returns, and shown or dispatched only then; if that fails, returns
 * the store's error (-EIO, -ESHUTDOWN...) and the job is gone. */
int jobs_submit(jobs *j, const char *text, size_t len, expr_plan *plan, int64_t *id, int *finished);

/* Returns non-zero if an operation is ready. */
int jobs_has_ready(jobs *j);

/* Takes the oldest ready operation of an unfinished job. Returns 1 and
 * fills *out, or 0 when none is ready. */
int jobs_take_ready(jobs *j, jobs_op *out);

/* Puts an operation that could not be computed back at the head of the
 * FIFO, with its attempts as set in op. Returns 0 or -ENOMEM (then the job
 * is failed with "out of memory"). Ignored if the job has finished. */
int jobs_requeue(jobs *j, const jobs_op *op);

/* Records the result of op; may make another operation ready or finish the
 * job. Ignored if the job has finished or is gone. */
void jobs_op_done(jobs *j, const jobs_op *op, num result);

/* Finishes the job of op with answer null and `error`. Ignored if the job
 * has finished or is gone. */
void jobs_op_failed(jobs *j, const jobs_op *op, const char *error);

/* Appends the JSON document of job `id` to b. Returns 0, -ENOENT for an
 * unknown or dropped id, or -ENOMEM. */
int jobs_json(jobs *j, int64_t id, buf *b);

/* Appends a JSON array of the `max` newest jobs, newest first, to b.
 * Returns 0 or -ENOMEM. */
int jobs_list_json(jobs *j, size_t max, buf *b);

/* Jobs kept / not finished. */
long jobs_kept(jobs *j);
long jobs_unfinished(jobs *j);

#endif
