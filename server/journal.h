/* journal: keeps every task in an SQLite database (WAL mode) so that a
 * restarted server, even after kill -9, finds every task it accepted:
 * finished ones with their results, waiting ones to run, and the ones that
 * were running to run again or to mark as interrupted.
 *
 * One writer thread owns the database connection. Callers queue records
 * (accepted, started, finished, forgotten) and the writer takes everything
 * pending, writes it in one transaction and commits once: one commit (and
 * with sync_full one fsync) serves every request that arrived while the
 * previous commit was being written (group commit). Then it wakes the
 * callers waiting for those records and publishes the finished tasks in
 * the store, so a result is never visible before it is on disk.
 *
 * Locking: the journal lock (private) covers the pending records and the
 * flags that tell a waiter its record is written. It is a leaf lock, held
 * for list operations only: SQLite is never called with it, nor with the
 * store lock, held. */
#ifndef TS_JOURNAL_H
#define TS_JOURNAL_H

#include <stddef.h>

#include "membudget.h"
#include "queue.h"
#include "store.h"
#include "task.h"

typedef struct journal journal;

typedef struct journal_config {
    const char *dir;  /* holds tasks.db; created (mode 0700) if missing */
    int sync_full;    /* fsync every commit (survives power loss); else the
                       * WAL is written at commit and synced at checkpoints,
                       * which survives a crash of the process only */
    int fail_running; /* at restore, RUNNING -> ERROR "interrupted" instead
                       * of back to the queue */
    /* counts the tasks queued again, even past its limit; NULL: not */
    membudget *budget;
} journal_config;

/* What journal_restore found. */
typedef struct journal_restored {
    long finished;    /* finished tasks loaded into the store */
    long waiting;     /* tasks queued again (requeued ones included) */
    long requeued;    /* were RUNNING, queued again */
    long interrupted; /* were RUNNING, now ERROR "interrupted" */
    long dropped;     /* finished tasks beyond max_finished, deleted */
} journal_restored;

/* Opens or creates DIR/tasks.db and takes it for this process alone.
 * Returns 0 and sets *out (free with journal_close), or -errno with a
 * sentence naming the problem in err (a file that is not a journal, a
 * directory that cannot be written, a journal in use by another server). */
int journal_open(journal **out, const journal_config *cfg, char *err, size_t errsz);

/* Loads the journal into s: the max_finished newest finished tasks (older
 * ones are deleted), then the unfinished ones in WAIT (those that were
 * running per cfg->fail_running), which j keeps for journal_queue_restored.
 * Call once, after journal_open and before journal_start, while no other
 * thread uses s. Returns 0 or a negative error with a sentence in err. */
int journal_restore(journal *j, store *s, long max_finished, journal_restored *n, char *err,
                    size_t errsz);

/* Queues the unfinished tasks journal_restore found, oldest first. Kept
 * apart so that nothing runs until the server is sure to start: a task
 * run by a server that then fails to listen would end "cancelled". */
void journal_queue_restored(journal *j, queue *q);

/* Starts the writer thread. From then on the journal publishes finished
 * tasks in s (see journal_finished). The tasks that s's retention drops
 * are deleted by whoever owns s, through journal_forget from its evict
 * hook (see tasks.c). Returns 0 or -errno. */
int journal_start(journal *j, store *s);

/* Records a new task (id, type, args, program, creation time) and returns
 * once that is committed: 0, -EIO if it could not be written, or
 * -ESHUTDOWN once the journal is stopping. Call before publishing t. */
int journal_add(journal *j, task *t);

/* Deletes the record of a task that was added but then refused, or that
 * retention dropped (not waited for). */
void journal_forget(journal *j, task *t);

/* Records that t started (call after store_mark_running). With
 * fail_running, returns once that is committed (so that a crash cannot run
 * t twice); otherwise at once. Returns 0 or a negative error (logged; t
 * may still run). */
int journal_started(journal *j, task *t);

/* Records the result of t (filled in as for store_mark_finished) and, once
 * it is committed, publishes it in the store with store_mark_finished_at.
 * Returns at once; the journal holds a reference to t until then. */
void journal_finished(journal *j, task *t, enum task_status final);

/* Writes what is pending, stops the writer thread, closes the database and
 * frees j. Call once nothing else uses j. NULL is fine. */
void journal_close(journal *j);

#endif
