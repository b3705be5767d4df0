/* tasks_pg_int: what tasks_pg.c (the backend) and tasks_pg_threads.c (its
 * threads) share; not for other modules. */
#ifndef TS_TASKS_PG_INT_H
#define TS_TASKS_PG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "buf.h"
#include "pgconn.h"
#include "tasks_pg.h"

/* How many ends the listener remembers by id (tasks_pg.seen_ring). */
#define PG_SEEN_RING 256

/* A task this node claimed: its lease token fences the result. */
typedef struct pg_claim {
    struct pg_claim *next;
    unsigned char id[16];
    char lease[37];
    int started; /* a worker started it (close gives back its attempt otherwise) */
    int stopped; /* its row ended elsewhere and its run was told to stop */
} pg_claim;

/* A long poll waiting on a copy of a task held elsewhere. */
typedef struct pg_watcher {
    struct pg_watcher *next;
    task *t;    /* a reference */
    int fresh;  /* to read: registered, or its task ended here */
    task *done; /* its task as this node ran it, once final (a reference), or NULL */
} pg_watcher;

struct tasks_pg {
    tasks_pg_config cfg; /* strings point at the owned copies below */
    char *url, *name, *advertise;
    pgconn_pool pool;     /* connection threads and workers; its own lock */
    store *s;             /* where claimed tasks are published (pg_open) */
    queue *q;             /* where claimed tasks wait for a worker (admit_restored) */
    pthread_mutex_t lock; /* protects claims, watches, done, pending, inserted_here, stop, kicked,
                             done_seen, seen_* */
    /* Serialises the writes of watched copies (pg_copy_end, the
     * listener's reads of rows): the worker that ran a task and the
     * listener may both write one. Taken before the store's lock, never
     * with g->lock. */
    pthread_mutex_t copy_lock;
    pthread_cond_t kick; /* monotonic: the claimer waits for work or a free worker */
    pthread_cond_t keep; /* monotonic: the keeper waits for ids to notify or its tick */
    pg_claim *claims;
    pg_watcher *watches;
    buf done;          /* ids finished here, comma-separated, for the next NOTIFY ts_done */
    int pending;       /* done has ids, or inserted_here is set */
    int inserted_here; /* a task was inserted here since the last NOTIFY ts_new */
    int stop;
    int kicked;
    /* Counts the listener's batches of ts_done ids (and its reconnects,
     * after which it reads every watch): a long poll registered while it
     * is unchanged since its task's insert missed no end of it. */
    unsigned long done_seen;
    /* The ids of the last PG_SEEN_RING ends the listener took, each with
     * done_seen after its batch; the done_seen of its last reconnect; and
     * the newest done_seen pushed out of the ring. A long poll registered
     * since finds whether its own end was among them (pg_seen_since). */
    struct {
        unsigned char id[16];
        unsigned long seen;
    } seen_ring[PG_SEEN_RING];
    unsigned seen_next;
    unsigned long seen_reconnect, seen_floor;
    int wake_fd;      /* eventfd: wakes the listener (new watch, stop) */
    int queue_closed; /* the claimer's own: shutting down, claim no more */
    atomic_int lost;  /* this node's lease ran out without the database */
    /* The node's row is in `nodes` (a first heartbeat went through): the
     * claimer claims nothing before, since other nodes find a dead node's
     * tasks through its row, and one that died before writing it would
     * leave its claims RUNNING for ever. */
    atomic_int beaten;
    pthread_t threads[3];
    int nthreads;
    void (*kill)(void *arg); /* tasks_pg_set_cancel */
    void (*resume)(void *arg);
    void *cancel_arg;
};

/* The error of a cancelled task. A row's result.cancelled is read from
 * it: schema 2 has no column of its own for the flag. */
#define PG_CANCELLED "cancelled"

/* SELECT of one row's public columns by id ($1), as pg_row_view and
 * pg_fill_result read them. */
extern const char *const pg_row_select;

/* enum task_type of a "type" column, or -1. */
int pg_parse_type(const char *s);
/* The status, times and attempts of a row of pg_row_select. Returns 0 or
 * -EINVAL. */
int pg_row_view(const PGresult *r, int row, task_view *v);
/* Fills the result fields of t (not yet final, one writer) from a row of
 * pg_row_select. Returns 0 or -ENOMEM. */
int pg_fill_result(task *t, const PGresult *r, int row);
/* Gives t the id id (canonical text). */
void pg_set_id(task *t, const char *id);

/* The fields of schema version 2 (tasks_pg_fields.c). */

/* Longest text pg_limits_param writes. */
#define PG_LIMITS_LEN 192
/* The limits column of l (a float8[7] literal in task_limits' order) in
 * out, or NULL when l asks for none (SQL NULL). */
const char *pg_limits_param(const task_limits *l, char *out, size_t n);
/* Reads a limits column back into *l. Returns 0 or -EINVAL. */
int pg_limits_parse(const char *s, task_limits *l);
/* Gives t the tests of a bytea column (journal text forms, testset.h):
 * the cases of a task to run, or with final its rendered results. NULL
 * gives none. Returns 0, -EINVAL or -ENOMEM. */
int pg_tests_read(task *t, const PGresult *r, int row, int col, int final);
/* Fills t's memory peak, limit hit and compile fields from the five
 * columns memory_peak, limit_hit, compiled, compile_output,
 * compile_exit_code from col on. Returns 0 or -ENOMEM. */
int pg_fields_fill(task *t, const PGresult *r, int row, int col);
/* Copies the same fields, and the rendered tests, of a final src into t
 * (one writer, not yet final). Returns 0 or -ENOMEM (what was copied
 * goes with t). */
int pg_fields_copy(task *t, const task *src);

/* The field of schema version 3 (tasks_pg_fields.c). */

/* Gives t (its type set) the request's files of a bytea column holding
 * request_files_pack's blob; NULL gives none. Returns 0, -EINVAL (not such
 * a blob, or a name the request could not have had) or -ENOMEM. */
int pg_files_read(task *t, const PGresult *r, int row, int col);

/* Puts back in the queue the RUNNING tasks of node name, or with name NULL
 * of every dead node (heartbeat older than the lease), or ends them in
 * ERROR "node lost" past --max-attempts (at once with fail_running).
 * Counts them in *n when not NULL. Returns 0 or -EIO. Takes g->lock. */
int pg_requeue_node(tasks_pg *g, PGconn *c, const char *name, tasks_restored *n);

/* Cancels the run of the task id if this node holds it: a task claimed
 * ahead and still in the queue ends at once when dequeue is set (the
 * caller may then block on the database), else its worker kills the run
 * (store_cancel) and writes its output so far. */
void pg_cancel_here(tasks_pg *g, const char *id, int dequeue);

/* Starts the claimer, listener and keeper threads. */
void pg_threads_start(tasks_pg *g);
/* Stops and joins them (the keeper sends what it still has to notify). */
void pg_threads_stop(tasks_pg *g);
/* Wakes the claimer: a worker may be free, or a task waiting. */
void pg_kick(tasks_pg *g);
/* How many tasks the claimer would claim now: one for each idle worker
 * and one ahead, less those queued here already; 0 or less: none. */
long pg_claim_room(tasks_pg *g);
/* Wakes the listener: a watch to read at once. */
void pg_poke_listener(tasks_pg *g);
/* Non-zero if the listener may have taken an end of the task id (16
 * bytes) after done_seen was seen, so that a long poll registered now
 * must read its row; g->lock held. */
int pg_seen_since(const tasks_pg *g, const unsigned char *id, unsigned long seen);
/* Writes the result of done, a final task this node ran, into the watched
 * copy t of it, unless t is final already. Returns 0 or -ENOMEM (t then
 * keeps what was copied; its row is to be read). Takes g->copy_lock. */
int pg_copy_end(tasks_pg *g, task *t, const task *done);
/* Queues id for the keeper's next NOTIFY ts_done. */
void pg_notify_done(tasks_pg *g, const char *id);
/* Asks the keeper for a NOTIFY ts_new: a task was inserted here. */
void pg_notify_new(tasks_pg *g);

#endif
