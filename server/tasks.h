/* tasks: the lifecycle of a task, in one place. A task is submitted (held
 * in the memory budget, persisted, published, admitted), handed to a
 * worker, started, finished and, past retention, evicted. This module owns
 * the store (index, long polls), the queue (admission, FIFO) and the
 * storage backend that keeps tasks across restarts; the HTTP handlers and
 * the workers go through it and never choose between storage and store.
 *
 * Storage is a table of functions (tasks_backend_ops) with an opaque
 * implementation: memory (nothing kept; without --data-dir) and the
 * SQLite journal (journal.h) today. A backend that publishes results only
 * once durable does so itself, in the store it was opened on.
 *
 * Locking: no lock of its own. The store lock and the queue lock (see
 * store.h, queue.h) protect what they did; the backend has its own (the
 * journal lock). None is held while calling the backend, so a backend may
 * block on I/O. */
#ifndef TS_TASKS_H
#define TS_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "membudget.h"
#include "queue.h"
#include "store.h"
#include "task.h"

struct live;
struct tasks_counts;

/* What a backend found at open. */
typedef struct tasks_restored {
    long finished;    /* finished tasks loaded into the store */
    long waiting;     /* tasks to queue again (requeued ones included) */
    long requeued;    /* were RUNNING, to queue again */
    long interrupted; /* were RUNNING, now ERROR "interrupted" */
    long dropped;     /* finished tasks beyond max_finished, deleted */
} tasks_restored;

/* Storage behind the lifecycle. impl is the backend's own state. Every
 * function is called without any store or queue lock held. */
typedef struct tasks_backend_ops {
    const char *name; /* for logs: "memory", "journal" */
    int durable;      /* non-zero: waiting tasks outlive the process */
    /* Loads what was kept into s (before any other thread uses s): finished
     * tasks newest last, unfinished ones kept for admit_restored. Then
     * starts recording, and publishing results in s. Returns 0 or -errno
     * with a sentence in err. */
    int (*open)(void *impl, store *s, long max_finished, tasks_restored *n, char *err,
                size_t errsz);
    /* Queues the unfinished tasks open found, oldest first. */
    void (*admit_restored)(void *impl, queue *q);
    /* Records a new task before it is published; returns once it is kept:
     * 0 or -errno (then the task is refused). */
    int (*add)(void *impl, task *t);
    /* Undoes add for a task that admission refused. */
    void (*forget)(void *impl, task *t);
    /* Records a start (t is RUNNING). Returns 0 or -errno, logged: the
     * task runs anyway. */
    int (*started)(void *impl, task *t);
    /* Records the result of t and publishes it in s (store_mark_finished
     * or _at), at once or once durable. */
    void (*finished)(void *impl, store *s, task *t, enum task_status final);
    /* Deletes what is kept of a finished task that retention dropped. */
    void (*evict)(void *impl, task *t);
    /* Writes what is pending and frees impl. NULL impl is fine. */
    void (*close)(void *impl);
    /* A shared store (the queue lives in the database; NULL for the
     * others). With shared_queue, add also admits the task (-EAGAIN when
     * the service's waiting room is full) and tasks_submit neither
     * publishes nor queues it: the backend queues the tasks this node
     * claims, in the queue admit_restored was given, and publishes them in
     * the store. */
    int shared_queue;
    /* A task this node does not hold (not in s): a new reference to a copy
     * read from the database, or NULL (unknown, or unreachable). */
    task *(*lookup)(void *impl, const char *id);
    /* Keeps the copy t up to date (store_update_copy) until unwatch, so
     * that a long poll on it ends when the task ends elsewhere. */
    void (*watch)(void *impl, task *t);
    void (*unwatch)(void *impl, task *t);
    /* Counters of the whole service into *c. Returns 0 or -errno. */
    int (*counts)(void *impl, struct tasks_counts *c);
    /* Cancels the task of the copy t, held elsewhere: ends it as cancelled
     * unless it is final, and has the node that runs it kill the run.
     * Returns 0 (final now), -EALREADY (was final) or -errno (unreachable). */
    int (*cancel)(void *impl, task *t);
    /* Writes in url the base URL of the live node other than this one that
     * runs the task of the copy t. Returns 0, or -ENOENT when there is none
     * (waiting, final, or its node unknown or dead) or -errno. */
    int (*runner_url)(void *impl, const task *t, char *url, size_t n);
} tasks_backend_ops;

/* No persistence: impl is NULL. */
extern const tasks_backend_ops tasks_memory_ops;
/* The SQLite journal: impl is a journal opened with journal_open, not yet
 * restored nor started. */
extern const tasks_backend_ops tasks_journal_ops;

typedef struct tasks_config {
    long max_finished; /* retention of finished tasks (store) */
    long max_waiting;  /* waiting room (queue); -1: unbounded */
    membudget *budget; /* counts what waits; NULL: nothing counted */
} tasks_config;

typedef struct tasks {
    store s; /* its own lock; see store.h */
    queue q; /* its own lock; see queue.h */
    membudget *budget;
    const tasks_backend_ops *ops;
    void *impl; /* owned: ops->close frees it */
} tasks;

/* Snapshot of the counters. */
typedef struct tasks_counts {
    long queued;   /* in the queue, not yet taken by a worker */
    long waiting;  /* WAIT, queued or handed to a worker not yet started */
    long running;  /* RUNNING */
    long finished; /* SUCCESS or ERROR, still kept */
    long total;    /* created since start */
    long evicted;  /* finished tasks dropped by retention */
} tasks_counts;

/* Initialises tk over the backend (ops, impl), which it owns from now on,
 * also on failure, and loads what the backend kept (counts in *n, which
 * may be NULL). Nothing is queued before tasks_admit_restored. Returns 0,
 * or -errno with a sentence in err (then impl is closed and nothing needs
 * destroying). */
int tasks_open(tasks *tk, const tasks_config *cfg, const tasks_backend_ops *ops, void *impl,
               tasks_restored *n, char *err, size_t errsz);

/* Queues the unfinished tasks the backend found at open, whatever the
 * waiting room holds (they were admitted before the restart). Call once
 * the server is sure to start: a task run by a server that then fails to
 * listen would end "cancelled". */
void tasks_admit_restored(tasks *tk);

/* Non-zero when the backend keeps waiting tasks across restarts. */
int tasks_durable(const tasks *tk);

/* Submits t, a new task in WAIT: moves the *held bytes of its request
 * into t's share of the budget, records it in the backend, publishes it
 * in the store and admits it to the queue; a refusal undoes what was
 * done. The caller keeps its reference in every case. Returns 0,
 * -ENOBUFS / -E2BIG (memory budget, as task_hold), -EAGAIN (every worker
 * busy and the waiting room full), -ESHUTDOWN (closing), -ENOTCONN (a
 * shared store is unreachable), or another -errno when the backend could
 * not record it. */
int tasks_submit(tasks *tk, task *t, size_t *held);

/* Blocks for the oldest waiting task and hands it over with the queue's
 * reference (caller unrefs). Returns NULL once tasks_stop_queue was
 * called. For workers. */
task *tasks_next(tasks *tk);

/* WAIT -> RUNNING (see store_mark_running: lv, may be NULL, receives
 * stdout), then records the start in the backend, which with
 * --on-restart fail returns only once it is durable. */
void tasks_started(tasks *tk, task *t, struct live *lv);

/* Publishes the final status of t, whose result fields the worker has
 * filled: through the backend, which may delay the publication until the
 * result is durable. The fields must not change afterwards. */
void tasks_finished(tasks *tk, task *t, enum task_status final);

/* Cancels t (POST /cancel_task). A task still in the queue is taken out
 * and ends at once, never run: ERROR "cancelled", result.cancelled, kept
 * by the backend as any end. Otherwise the cancel is marked for the
 * worker that has t (store_cancel), which kills the run and ends t the
 * same way, with the output so far. A copy of a task held elsewhere (a
 * shared store) is cancelled through the backend, wherever it runs.
 * Returns 0 (t is or will soon be final: wait with tasks_view),
 * -EALREADY when t was already final, or -errno when the backend could
 * not reach the task (a shared store that is unreachable). */
int tasks_cancel(tasks *tk, task *t);

/* The worker's side of a cancel, around a run: arms fd (an eventfd the
 * run polls; -1 disarms). Returns 1 when t was cancelled meanwhile (then
 * the worker must not start it, or must end it as cancelled). */
int tasks_arm_cancel(tasks *tk, task *t, int fd);

/* Ends t, which a worker took but did not start, as cancelled. */
void tasks_end_cancelled(tasks *tk, task *t);

/* Looks up a task by its textual id. Returns a new reference (caller
 * unrefs) or NULL if the id is unknown, evicted or not a UUID. */
task *tasks_lookup(tasks *tk, const char *id);

/* The current view of t; when deadline_mono_us is in the future, first
 * waits until t is final, the deadline passes or tk closes (long poll). */
task_view tasks_view(tasks *tk, task *t, int64_t deadline_mono_us);

/* Waits until t has left WAIT, deadline_mono_us passes or tk closes. */
void tasks_wait_started(tasks *tk, task *t, int64_t deadline_mono_us);

/* Writes in url the base URL of the node that runs t when that is
 * another live node of a shared store (its stream is there). Returns 1,
 * or 0 when t runs here, waits, is final or its node is unknown. */
int tasks_runs_elsewhere(tasks *tk, task *t, char *url, size_t n);

/* A reference to t's live stdout (caller unrefs), or NULL when t is not
 * running. */
struct live *tasks_live(tasks *tk, task *t);

/* Current counters of this node. */
tasks_counts tasks_get_counts(tasks *tk);

/* Counters of the whole service: those of the shared store's backend, or
 * of this node (tasks_get_counts) when there is none or it is
 * unreachable. */
tasks_counts tasks_service_counts(tasks *tk);

/* Closes admission: later submits return -ESHUTDOWN and tasks_next NULL.
 * Returns the number of tasks still waiting (a durable backend keeps them
 * for the next start). */
long tasks_stop_queue(tasks *tk);

/* Ends every long poll and stream wait now; later ones return at once. */
void tasks_close(tasks *tk);

/* Non-zero once tasks_close was called. */
int tasks_closing(tasks *tk);

/* Closes the backend (writing what is pending, which may still publish
 * results) and frees the queue and the store. Call once no worker nor
 * connection thread uses tk. */
void tasks_destroy(tasks *tk);

#endif
