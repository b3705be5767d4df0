/* queue: the FIFO of tasks waiting for a worker, with admission control.
 *
 * Capacity counts tasks that will actually wait: a task handed straight to
 * an idle worker does not use a slot. So with max_waiting 0 and five
 * workers, five tasks run and a sixth is refused.
 *
 * The queue holds a reference to each task in it. */
#ifndef TS_QUEUE_H
#define TS_QUEUE_H

#include <pthread.h>

#include "task.h"

typedef struct queue {
    pthread_mutex_t lock; /* protects every field below */
    pthread_cond_t nonempty;
    task *head, *tail;
    long len;         /* tasks in the queue, not yet taken by a worker */
    long idle;        /* workers blocked in queue_pop */
    long max_waiting; /* -1: unbounded */
    int closed;
} queue;

/* Returns 0 or -errno (nothing to destroy on error). */
int queue_init(queue *q, long max_waiting);

/* Drops the references of the tasks left and frees the queue's resources. */
void queue_destroy(queue *q);

/* Appends t (taking a new reference). Returns 0, -EAGAIN when the task
 * would have to wait and the waiting room is full, or -ESHUTDOWN once the
 * queue is closed. On error nothing is changed. */
int queue_push(queue *q, task *t);

/* Appends t (taking a new reference) whatever the waiting room holds:
 * tasks read back from a journal were admitted before the restart.
 * Returns 0 or -ESHUTDOWN once the queue is closed. */
int queue_push_restored(queue *q, task *t);

/* Removes and returns the oldest task (the caller now owns the queue's
 * reference), blocking while the queue is empty. Returns NULL once the
 * queue is closed. */
task *queue_pop(queue *q);

/* Takes t out of the queue if it is still there (no worker popped it).
 * Returns 1 (the caller now owns the queue's reference) or 0. */
int queue_remove(queue *q, task *t);

/* Wakes every blocked queue_pop; later pushes fail and pops return NULL.
 * Returns the number of tasks that were still waiting (they stay in the
 * queue until queue_destroy). */
long queue_close(queue *q);

/* Number of tasks waiting for a worker: tasks already handed to an idle
 * worker that has not woken up yet do not count. */
long queue_len(queue *q);

#endif
