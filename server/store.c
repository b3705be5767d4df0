/* store: see store.h. */
#include "store.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "live.h"
#include "timefmt.h"

static int task_cmp(const task *a, const task *b)
{
    return memcmp(a->id, b->id, sizeof a->id);
}

/* libbsd's tree.h marks the generated functions __unused, which glibc does
 * not define; without it half of them warn as unused. */
#ifndef __unused
#define __unused __attribute__((unused))
#endif
RB_GENERATE_STATIC(task_index, task, by_id, task_cmp)

/* Random v4 ids: any byte is uniformly distributed. */
static pthread_cond_t *store_stripe(store *s, const task *t)
{
    return &s->wake[t->id[15] % STORE_WAIT_STRIPES];
}

static pthread_cond_t *store_start_stripe(store *s, const task *t)
{
    return &s->started[t->id[15] % STORE_WAIT_STRIPES];
}

int store_init(store *s, long max_finished)
{
    memset(s, 0, sizeof *s);
    int rc = pthread_mutex_init(&s->lock, NULL);
    if (rc)
        return -rc;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int i;
    for (i = 0; i < STORE_WAIT_STRIPES; i++) {
        rc = pthread_cond_init(&s->wake[i], &attr);
        if (rc)
            goto fail_cond;
        rc = pthread_cond_init(&s->started[i], &attr);
        if (rc) {
            pthread_cond_destroy(&s->wake[i]);
            goto fail_cond;
        }
    }
    pthread_condattr_destroy(&attr);
    RB_INIT(&s->index);
    TAILQ_INIT(&s->finished);
    s->max_finished = max_finished;
    return 0;

fail_cond:
    while (i-- > 0) {
        pthread_cond_destroy(&s->wake[i]);
        pthread_cond_destroy(&s->started[i]);
    }
    pthread_condattr_destroy(&attr);
    pthread_mutex_destroy(&s->lock);
    return -rc;
}

void store_destroy(store *s)
{
    task *t, *next;
    RB_FOREACH_SAFE(t, task_index, &s->index, next)
    {
        RB_REMOVE(task_index, &s->index, t);
        task_unref(t);
    }
    for (int i = 0; i < STORE_WAIT_STRIPES; i++) {
        pthread_cond_destroy(&s->wake[i]);
        pthread_cond_destroy(&s->started[i]);
    }
    pthread_mutex_destroy(&s->lock);
}

void store_add(store *s, task *t)
{
    task_ref(t);
    pthread_mutex_lock(&s->lock);
    RB_INSERT(task_index, &s->index, t);
    s->counts.waiting++;
    s->counts.total++;
    pthread_mutex_unlock(&s->lock);
}

void store_restore(store *s, task *t)
{
    task_ref(t);
    pthread_mutex_lock(&s->lock);
    RB_INSERT(task_index, &s->index, t);
    if (task_status_final(t->status)) {
        s->counts.finished++;
        TAILQ_INSERT_TAIL(&s->finished, t, finished);
    } else {
        s->counts.waiting++;
    }
    s->counts.total++;
    pthread_mutex_unlock(&s->lock);
}

void store_set_evict_hook(store *s, void (*fn)(void *arg, task *t), void *arg)
{
    pthread_mutex_lock(&s->lock);
    s->on_evict = fn;
    s->on_evict_arg = arg;
    pthread_mutex_unlock(&s->lock);
}

void store_remove(store *s, task *t)
{
    pthread_mutex_lock(&s->lock);
    RB_REMOVE(task_index, &s->index, t);
    s->counts.waiting--;
    s->counts.total--;
    pthread_mutex_unlock(&s->lock);
    task_unref(t);
}

task *store_lookup(store *s, const char *id)
{
    task key;
    if (uuid_parse(id, key.id) < 0)
        return NULL;
    pthread_mutex_lock(&s->lock);
    task *t = RB_FIND(task_index, &s->index, &key);
    if (t)
        task_ref(t);
    pthread_mutex_unlock(&s->lock);
    return t;
}

void store_mark_running(store *s, task *t, live *lv)
{
    int64_t now = time_now_us();
    if (lv)
        live_ref(lv);
    pthread_mutex_lock(&s->lock);
    t->live = lv;
    t->status = TASK_RUNNING;
    if (!t->started_us)
        t->started_us = now;
    t->attempts++;
    s->counts.waiting--;
    s->counts.running++;
    pthread_cond_broadcast(store_start_stripe(s, t));
    pthread_mutex_unlock(&s->lock);
}

int store_cancel(store *s, task *t)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (task_status_final(t->status)) {
        rc = -EALREADY;
    } else {
        t->cancel_asked = 1;
        if (t->cancel_fd >= 0) {
            uint64_t one = 1;
            ssize_t n = write(t->cancel_fd, &one, sizeof one);
            (void)n; /* EAGAIN: the counter is already non-zero */
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int store_arm_cancel(store *s, task *t, int fd)
{
    pthread_mutex_lock(&s->lock);
    t->cancel_fd = fd;
    int asked = t->cancel_asked;
    pthread_mutex_unlock(&s->lock);
    return asked;
}

/* Sleeps on cond until woken or deadline_mono_us; s->lock held. */
static void store_sleep(store *s, pthread_cond_t *cond, int64_t deadline_mono_us)
{
    struct timespec ts = {deadline_mono_us / 1000000, (deadline_mono_us % 1000000) * 1000};
    pthread_cond_timedwait(cond, &s->lock, &ts);
}

live *store_live_get(store *s, task *t)
{
    pthread_mutex_lock(&s->lock);
    live *lv = t->live ? live_ref(t->live) : NULL;
    pthread_mutex_unlock(&s->lock);
    return lv;
}

void store_wait_started(store *s, task *t, int64_t deadline_mono_us)
{
    pthread_mutex_lock(&s->lock);
    while (t->status == TASK_WAIT && !s->closing && deadline_mono_us > time_mono_us())
        store_sleep(s, store_start_stripe(s, t), deadline_mono_us);
    pthread_mutex_unlock(&s->lock);
}

void store_mark_finished(store *s, task *t, enum task_status final)
{
    store_mark_finished_at(s, t, final, time_now_us());
}

void store_mark_finished_at(store *s, task *t, enum task_status final, int64_t now)
{
    task *evict_head = NULL;
    pthread_mutex_lock(&s->lock);
    void (*on_evict)(void *, task *) = s->on_evict;
    void *evict_arg = s->on_evict_arg;
    live *lv = t->live;
    t->live = NULL;
    if (t->status == TASK_WAIT) {
        /* Finished without running (refused at start). */
        s->counts.waiting--;
        if (!t->started_us)
            t->started_us = now;
        pthread_cond_broadcast(store_start_stripe(s, t));
    } else {
        s->counts.running--;
    }
    t->status = final;
    t->finished_us = now;
    s->counts.finished++;
    TAILQ_INSERT_TAIL(&s->finished, t, finished);
    /* Unlink evicted tasks here; free them after unlocking. */
    while (s->counts.finished > s->max_finished) {
        task *old = TAILQ_FIRST(&s->finished);
        TAILQ_REMOVE(&s->finished, old, finished);
        RB_REMOVE(task_index, &s->index, old);
        s->counts.finished--;
        s->counts.evicted++;
        old->queue_next = evict_head;
        evict_head = old;
    }
    pthread_mutex_unlock(&s->lock);
    /* Woken after unlocking: a long poll woken under the lock ran on the
     * other CPU and blocked at once on the lock still held here, a second
     * sleep and wake-up of the waiter and a futex call more in both (perf
     * sched_switch, --sandbox off: 4 % of the server's context switches in
     * the waiters' relock, 3 % in this unlock's wake). The status is final,
     * so a waiter that looks before this broadcast does not sleep. */
    pthread_cond_broadcast(store_stripe(s, t));
    if (lv) {
        live_finish(lv);
        live_unref(lv);
    }
    while (evict_head) {
        task *next = evict_head->queue_next;
        if (on_evict)
            on_evict(evict_arg, evict_head);
        task_unref(evict_head);
        evict_head = next;
    }
}

task_view store_view(store *s, task *t, int64_t deadline_mono_us)
{
    pthread_mutex_lock(&s->lock);
    while (!task_status_final(t->status) && !s->closing && deadline_mono_us > time_mono_us())
        store_sleep(s, store_stripe(s, t), deadline_mono_us);
    task_view v = {t->status, t->started_us, t->finished_us, t->attempts};
    pthread_mutex_unlock(&s->lock);
    return v;
}

void store_drop(store *s, task *t)
{
    pthread_mutex_lock(&s->lock);
    live *lv = t->live;
    t->live = NULL;
    RB_REMOVE(task_index, &s->index, t);
    if (t->status == TASK_WAIT)
        s->counts.waiting--;
    else
        s->counts.running--;
    s->counts.total--;
    pthread_mutex_unlock(&s->lock);
    if (lv) {
        live_finish(lv);
        live_unref(lv);
    }
    task_unref(t);
}

void store_update_copy(store *s, task *t, const task_view *v)
{
    pthread_mutex_lock(&s->lock);
    t->status = v->status;
    t->started_us = v->started_us;
    t->finished_us = v->finished_us;
    t->attempts = v->attempts;
    if (v->status != TASK_WAIT)
        pthread_cond_broadcast(store_start_stripe(s, t));
    if (task_status_final(v->status))
        pthread_cond_broadcast(store_stripe(s, t));
    pthread_mutex_unlock(&s->lock);
}

store_counts store_get_counts(store *s)
{
    pthread_mutex_lock(&s->lock);
    store_counts c = s->counts;
    pthread_mutex_unlock(&s->lock);
    return c;
}

int store_is_closing(store *s)
{
    pthread_mutex_lock(&s->lock);
    int closing = s->closing;
    pthread_mutex_unlock(&s->lock);
    return closing;
}

void store_close(store *s)
{
    pthread_mutex_lock(&s->lock);
    s->closing = 1;
    for (int i = 0; i < STORE_WAIT_STRIPES; i++) {
        pthread_cond_broadcast(&s->wake[i]);
        pthread_cond_broadcast(&s->started[i]);
    }
    pthread_mutex_unlock(&s->lock);
}
