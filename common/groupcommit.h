/* groupcommit: one writer thread in front of a database. Callers queue
 * records; the thread takes everything pending and hands it to the owner's
 * write function as one batch (one transaction), so one commit serves
 * every record queued while the previous one was written. A waited
 * record's caller sleeps until its batch is committed and gets the
 * batch's result; the others are handed back to the owner's release
 * function after their batch, to publish and free.
 *
 * The task journal (server/journal.c) and the job stores
 * (cluster/jobstore_writer.c) keep their databases behind one each.
 *
 * Records: the owner embeds a groupcommit_rec as the first member of its
 * own record type and casts back. A waited record may live on its
 * caller's stack: the writer does not touch it after setting done.
 *
 * Locking: groupcommit.lock protects pending, tail, closing, stopped and
 * the done/rc of queued records. It is a leaf lock held for list
 * operations only: neither write nor release is called with it held. */
#ifndef TS_GROUPCOMMIT_H
#define TS_GROUPCOMMIT_H

#include <pthread.h>

typedef struct groupcommit_rec {
    struct groupcommit_rec *next;
    int waited; /* set by the owner before groupcommit_submit */
    int done;   /* lock */
    int rc;     /* lock: the batch's result, for a waited record */
} groupcommit_rec;

/* Writes batch (linked by next, in queue order) in one transaction.
 * Returns 0 or -errno, then none of it is written (it logs why). Called
 * on the writer thread only. */
typedef int (*groupcommit_write_fn)(void *owner, groupcommit_rec *batch);

/* Takes back a record that was not waited for, once its batch is written
 * (rc: the batch's result): publishes what it stands for and frees it.
 * Called on the writer thread, one record at a time, in queue order. */
typedef void (*groupcommit_release_fn)(void *owner, groupcommit_rec *r, int rc);

typedef struct groupcommit {
    groupcommit_write_fn write;
    groupcommit_release_fn release;
    void *owner;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work;      /* records pending, or closing */
    pthread_cond_t committed; /* waited records were written */
    groupcommit_rec *pending, **tail;
    int closing;
    int stopped; /* the writer is gone: records are refused */
} groupcommit;

/* Starts the writer thread. Returns 0 or -errno (nothing to destroy). */
int groupcommit_init(groupcommit *g, groupcommit_write_fn write, groupcommit_release_fn release,
                     void *owner);

/* Writes everything queued (and what releases queue meanwhile), stops the
 * thread and frees what it holds. No record may be submitted once it
 * returns. */
void groupcommit_destroy(groupcommit *g);

/* Queues r and, if r->waited, returns once its batch is committed.
 * Returns 0 (queued, or committed), the batch's error for a waited
 * record, or -ESHUTDOWN once the writer has stopped (r not queued: it
 * stays the caller's). */
int groupcommit_submit(groupcommit *g, groupcommit_rec *r);

#endif
