/* queue: see queue.h. */
#include "queue.h"

#include <errno.h>

int queue_init(queue *q, long max_waiting)
{
    int rc = pthread_mutex_init(&q->lock, NULL);
    if (rc)
        return -rc;
    rc = pthread_cond_init(&q->nonempty, NULL);
    if (rc)
        goto fail_cond;
    q->head = q->tail = NULL;
    q->len = q->idle = 0;
    q->max_waiting = max_waiting;
    q->closed = 0;
    return 0;

fail_cond:
    pthread_mutex_destroy(&q->lock);
    return -rc;
}

void queue_destroy(queue *q)
{
    task *t = q->head;
    while (t) {
        task *next = t->queue_next;
        task_unref(t);
        t = next;
    }
    pthread_cond_destroy(&q->nonempty);
    pthread_mutex_destroy(&q->lock);
}

static int push(queue *q, task *t, int admit)
{
    int rc = 0;
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        rc = -ESHUTDOWN;
    } else if (admit && q->max_waiting >= 0 && q->len + 1 > q->idle + q->max_waiting) {
        /* Idle workers take tasks at once; only the rest would wait. */
        rc = -EAGAIN;
    } else {
        t->queue_next = NULL;
        if (q->tail)
            q->tail->queue_next = task_ref(t);
        else
            q->head = task_ref(t);
        q->tail = t;
        q->len++;
    }
    pthread_mutex_unlock(&q->lock);
    /* Signalled after unlocking: a worker woken under the lock ran at once
     * on the other CPU and blocked again on the lock we still held (perf
     * sched_switch, --sandbox off: __pthread_mutex_cond_lock was one in
     * twenty of the server's context switches). A push seen by a worker
     * that was not waiting makes the one woken wait again, as before. */
    if (rc == 0)
        pthread_cond_signal(&q->nonempty);
    return rc;
}

int queue_push(queue *q, task *t)
{
    return push(q, t, 1);
}

int queue_push_restored(queue *q, task *t)
{
    return push(q, t, 0);
}

task *queue_pop(queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->idle++;
    while (!q->head && !q->closed)
        pthread_cond_wait(&q->nonempty, &q->lock);
    q->idle--;
    task *t = NULL;
    if (!q->closed) {
        t = q->head;
        q->head = t->queue_next;
        if (!q->head)
            q->tail = NULL;
        t->queue_next = NULL;
        q->len--;
    }
    pthread_mutex_unlock(&q->lock);
    return t;
}

int queue_remove(queue *q, task *t)
{
    int found = 0;
    pthread_mutex_lock(&q->lock);
    /* A walk of the waiting room: a cancel is rare, the room bounded
     * (--max-queue). */
    for (task **link = &q->head, *prev = NULL; *link; prev = *link, link = &(*link)->queue_next) {
        if (*link != t)
            continue;
        *link = t->queue_next;
        if (q->tail == t)
            q->tail = prev;
        t->queue_next = NULL;
        q->len--;
        found = 1;
        break;
    }
    pthread_mutex_unlock(&q->lock);
    return found;
}

long queue_close(queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    long left = q->len;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
    return left;
}

long queue_len(queue *q)
{
    pthread_mutex_lock(&q->lock);
    long n = q->len > q->idle ? q->len - q->idle : 0;
    pthread_mutex_unlock(&q->lock);
    return n;
}
