/* live: see live.h. */
#include "live.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timefmt.h"

live *live_new(size_t cap)
{
    live *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    if (pthread_mutex_init(&l->lock, NULL))
        goto fail_mutex;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&l->more, &attr);
    pthread_condattr_destroy(&attr);
    if (rc)
        goto fail_cond;
    l->data = (buf)BUF_INIT;
    l->cap = cap;
    atomic_init(&l->refs, 1);
    return l;

fail_cond:
    pthread_mutex_destroy(&l->lock);
fail_mutex:
    free(l);
    return NULL;
}

live *live_ref(live *l)
{
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    return l;
}

void live_unref(live *l)
{
    if (!l || atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    buf_destroy(&l->data);
    pthread_cond_destroy(&l->more);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void live_append(live *l, const char *data, size_t len)
{
    pthread_mutex_lock(&l->lock);
    size_t room = l->cap > l->data.len ? l->cap - l->data.len : 0;
    if (len > room)
        len = room;
    if (len) {
        buf_append(&l->data, data, len);
        pthread_cond_broadcast(&l->more);
    }
    pthread_mutex_unlock(&l->lock);
}

void live_finish(live *l)
{
    pthread_mutex_lock(&l->lock);
    l->done = 1;
    pthread_cond_broadcast(&l->more);
    pthread_mutex_unlock(&l->lock);
}

size_t live_read(live *l, size_t off, char *out, size_t size, int64_t deadline_mono_us, int *done)
{
    pthread_mutex_lock(&l->lock);
    while (l->data.len <= off && !l->done && time_mono_us() < deadline_mono_us) {
        struct timespec ts = {deadline_mono_us / 1000000, (deadline_mono_us % 1000000) * 1000};
        pthread_cond_timedwait(&l->more, &l->lock, &ts);
    }
    size_t n = 0;
    if (l->data.len > off) {
        n = l->data.len - off;
        if (n > size)
            n = size;
        memcpy(out, l->data.data + off, n);
    }
    *done = l->done && off + n >= l->data.len;
    pthread_mutex_unlock(&l->lock);
    return n;
}
