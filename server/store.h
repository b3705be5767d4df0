/* store: every known task by id, their lifecycle and the waiting room for
 * long polls.
 *
 * Locking: one mutex (`lock`) protects the index, the finished list, the
 * counters and the status/timestamps of every task. It is a leaf lock:
 * nothing else is locked while it is held, and it is never held across
 * I/O, a spawn or a call into civetweb.
 *
 * Retention: finished tasks are kept up to max_finished; beyond that the
 * oldest finished ones are dropped from the index (their ids then answer
 * 404) and freed once the last reader lets go. */
#ifndef TS_STORE_H
#define TS_STORE_H

#include <pthread.h>
#include <stdint.h>

#include "task.h"

RB_HEAD(task_index, task);
TAILQ_HEAD(task_list, task);

#define STORE_WAIT_STRIPES 64

typedef struct store_counts {
    long waiting;  /* WAIT */
    long running;  /* RUNNING */
    long finished; /* SUCCESS or ERROR, still kept */
    long total;    /* created since start */
    long evicted;  /* finished tasks dropped by retention */
} store_counts;

typedef struct store {
    pthread_mutex_t lock; /* protects everything below and task status fields */
    struct task_index index;
    struct task_list finished;
    store_counts counts;
    long max_finished;
    int closing; /* wakes and stops long polls */
    /* Retention hook (see store_set_evict_hook); set before threads start. */
    void (*on_evict)(void *arg, task *t);
    void *on_evict_arg;
    /* Long polls and streams wait on the stripe of their task's id, so a
     * task that starts or finishes wakes only the few waiters that hash
     * alongside it: long polls for the end (wake), streams of a waiting
     * task for the start (started). Apart, because a start that woke the
     * long poll of its task woke it for nothing, on every task: measured
     * with --sandbox off, 3000 trivial tasks, 11.0 -> 8.5 context
     * switches and 673 -> 630 us of the server's CPU per task. */
    pthread_cond_t wake[STORE_WAIT_STRIPES];
    pthread_cond_t started[STORE_WAIT_STRIPES];
} store;

/* Returns 0 or -errno (nothing to destroy on error). */
int store_init(store *s, long max_finished);

/* Drops every task reference held by the index and frees the store. */
void store_destroy(store *s);

/* Publishes a new task in WAIT; the store takes its own reference. */
void store_add(store *s, task *t);

/* Publishes a task read back from a journal at start-up, before any other
 * thread uses the store. A final one joins the newest end of the retention
 * order (add them oldest first); any other counts as waiting. The store
 * takes its own reference. */
void store_restore(store *s, task *t);

/* Calls fn(arg, t) for every task that retention drops, after the store
 * lock is released and before the store lets go of its reference. Set it
 * before other threads use the store; fn NULL removes it. */
void store_set_evict_hook(store *s, void (*fn)(void *arg, task *t), void *arg);

/* Removes a task that was added but could not be queued (admission
 * refused). Its counts are undone as if it had never been added. */
void store_remove(store *s, task *t);

/* Looks up a task by its textual id. Returns a new reference (caller
 * unrefs) or NULL if the id is unknown, evicted or not a UUID. */
task *store_lookup(store *s, const char *id);

/* WAIT -> RUNNING, stamping started_us (unless the backend stamped it
 * already: the shared store's claim, with the database's clock) and
 * counting an attempt. The task takes a reference to lv
 * (may be NULL), where the worker appends stdout while the task runs.
 * Wakes the stream waiters of t's stripe, so that a stream opened while t
 * was waiting follows it from its first byte. */
void store_mark_running(store *s, task *t, struct live *lv);

/* Asks for the end of t, not final yet: marks the ask (cancel_asked)
 * and, while a worker runs t with a cancel eventfd armed, writes to it
 * (an eventfd write never blocks: it adds to a counter, so it is done
 * under the lock, which keeps the worker from closing or reusing the fd
 * meanwhile). Returns 0, or -EALREADY when t is final. */
int store_cancel(store *s, task *t);

/* The worker's side: arms (fd >= 0) or disarms (-1) t's cancel eventfd.
 * Returns 1 when a cancel was asked for t, 0 otherwise. */
int store_arm_cancel(store *s, task *t, int fd);

/* Returns a reference to t's live output (caller unrefs), or NULL when t
 * is not running. */
struct live *store_live_get(store *s, task *t);

/* Waits until t has left WAIT (started or finished), deadline_mono_us
 * passes or the store closes. */
void store_wait_started(store *s, task *t, int64_t deadline_mono_us);

/* Publishes the final status. The worker has filled the result fields of t
 * before this call; they must not change afterwards. Wakes long polls of t,
 * ends its live output and applies retention. */
void store_mark_finished(store *s, task *t, enum task_status final);

/* store_mark_finished with the finishing time given (a journal records it
 * before the status is published; the shared store gives the database's).
 * A task that never ran takes it as its start too, unless started_us was
 * stamped already. */
void store_mark_finished_at(store *s, task *t, enum task_status final, int64_t now_us);

/* A consistent copy of the fields that the store lock protects. */
typedef struct task_view {
    enum task_status status;
    int64_t started_us;
    int64_t finished_us;
    int attempts;
} task_view;

/* Returns the current view of t. When deadline_mono_us is in the future,
 * first waits until t is final, the deadline passes or the store closes. */
task_view store_view(store *s, task *t, int64_t deadline_mono_us);

/* Removes t (WAIT or RUNNING here) from the index without publishing a
 * result: a shared store fenced its result off, as the task runs or ran
 * elsewhere; readers find it there. Ends its live output. Drops the
 * index's reference. */
void store_drop(store *s, task *t);

/* Sets the status, times and attempts of t, a copy of a task kept
 * elsewhere (a shared store's row, never added to s), from v; wakes the
 * long polls of t's stripe once v is final. The result fields must be
 * filled before v goes final, by the copy's only writer. */
void store_update_copy(store *s, task *t, const task_view *v);

/* Current counters. */
store_counts store_get_counts(store *s);

/* Non-zero once store_close was called. */
int store_is_closing(store *s);

/* Ends all long polls now and makes later ones return at once. */
void store_close(store *s);

#endif
