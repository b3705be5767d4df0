/* jobstore_writer: the job stores' (jobstore.h) records over the writer
 * thread they keep their database behind (common/groupcommit.h): one
 * commit serves every job submitted while the previous one was written. A
 * store supplies how a batch is written; record waits for that commit,
 * finish and forget do not.
 *
 * Locking: the group commit's (groupcommit.h). */
#ifndef TS_JOBSTORE_WRITER_H
#define TS_JOBSTORE_WRITER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "groupcommit.h"
#include "jobstore.h"

enum jobstore_kind { JOBSTORE_RECORD, JOBSTORE_FINISH, JOBSTORE_FORGET };

/* One pending write. A record (waited) lives on its caller's stack until
 * `done`; the writer frees the others, with their strings. */
typedef struct jobstore_rec {
    groupcommit_rec link; /* first: the writer's queue */
    enum jobstore_kind kind;
    int64_t id;
    const char *text; /* RECORD: borrowed */
    size_t text_len;
    int64_t us;      /* RECORD: created; FINISH: finished */
    char *answer;    /* FINISH: owned, or NULL */
    char *error;     /* FINISH: owned, or NULL */
    size_t ops_done; /* FINISH */
} jobstore_rec;

/* The record after r in its batch, or NULL. */
static inline const jobstore_rec *jobstore_rec_next(const jobstore_rec *r)
{
    return (const jobstore_rec *)r->link.next;
}

/* Writes the records of batch (linked by next, in order) in one
 * transaction. Returns 0 or -errno, then none of them is written; it logs
 * why. Called on the writer thread only. */
typedef int (*jobstore_batch_fn)(void *impl, const jobstore_rec *batch);

typedef struct jobstore_writer {
    jobstore_batch_fn write;
    void *impl;
    groupcommit gc;
} jobstore_writer;

/* Starts the writer thread, which calls write(impl, batch) for what is
 * queued. Returns 0 or -errno (nothing to destroy). */
int jobstore_writer_init(jobstore_writer *w, jobstore_batch_fn write, void *impl);

/* Writes everything queued, stops the thread and frees what it holds. */
void jobstore_writer_destroy(jobstore_writer *w);

/* jobstore_ops.record: queues the job and returns once it is committed:
 * 0, the batch's error, or -ESHUTDOWN once closing. */
int jobstore_writer_record(jobstore_writer *w, int64_t id, const char *text, size_t len,
                           int64_t created_us);

/* jobstore_ops.finish: queues a copy of row and returns; a write that
 * cannot be queued is logged. */
void jobstore_writer_finish(jobstore_writer *w, const jobstore_row *row);

/* jobstore_ops.forget: queues the deletion of id and returns. */
void jobstore_writer_forget(jobstore_writer *w, int64_t id);

#endif
