/* jobstore: where a master keeps its arithmetic jobs so that they survive
 * a restart (kill -9 included): every accepted job (id, expression,
 * creation time), how each finished (answer or error), and the id counter.
 *
 * The store is a table of functions over an implementation, so that
 * databases sit side by side (SQLite, jobstore_sqlite.h; PostgreSQL,
 * jobstore_pg.h; both over jobstore_writer.h) without the job table
 * (jobs.h) knowing which it uses. A master without a store keeps
 * its jobs in memory only.
 *
 * Calling order: load once, before any other call and while no other
 * thread uses the store; then record, finish and forget from any thread;
 * close last, once nothing else calls. Implementations may call none of
 * jobs.h: they hold no lock of the job table and are never called with it
 * held. */
#ifndef TS_JOBSTORE_H
#define TS_JOBSTORE_H

#include <stddef.h>
#include <stdint.h>

/* One job as stored. Strings are borrowed for the duration of the call. */
typedef struct jobstore_row {
    int64_t id;
    const char *text; /* the expression, text_len bytes, NUL-terminated */
    size_t text_len;
    int64_t created_us;  /* wall clock, microseconds since the epoch */
    int finished;        /* non-zero once the job has finished */
    int64_t finished_us; /* finished: wall clock */
    const char *answer;  /* finished without error: the number as JSON text */
    const char *error;   /* finished with an error: its text; else NULL */
    size_t ops_done;     /* finished: operations computed */
} jobstore_row;

/* Called by load for each stored job, in increasing id order. Returns 0 to
 * go on or a negative error, which load returns. */
typedef int (*jobstore_row_fn)(void *arg, const jobstore_row *row);

typedef struct jobstore_ops {
    const char *name; /* for log lines: "sqlite", "postgresql" */

    /* Calls fn for every stored job in increasing id order and sets
     * *next_id to the first id never handed out (>= 1, above every stored
     * id). Returns 0 or a negative error with a sentence in err. */
    int (*load)(void *impl, jobstore_row_fn fn, void *arg, int64_t *next_id, char *err,
                size_t errsz);

    /* Records a new job and raises the stored id counter past its id, both
     * in one transaction, and returns once that is durable: 0, -EIO (or
     * another -errno) if it could not be written, -ESHUTDOWN once closing.
     * text is borrowed until it returns. */
    int (*record)(void *impl, int64_t id, const char *text, size_t len, int64_t created_us);

    /* Records how a job finished (row->finished set; text unused). Returns
     * at once: the write follows (a failure is logged). Strings are copied. */
    void (*finish)(void *impl, const jobstore_row *row);

    /* Deletes a job that retention dropped or whose record failed. Returns
     * at once: the write follows. */
    void (*forget)(void *impl, int64_t id);

    /* Writes what is pending, then frees impl. */
    void (*close)(void *impl);
} jobstore_ops;

/* A store: the functions and the implementation they work on. */
typedef struct jobstore {
    const jobstore_ops *ops;
    void *impl;
} jobstore;

#endif
