/* groupcommit: see groupcommit.h. */
#include "groupcommit.h"

#include <errno.h>
#include <string.h>

/* Wakes the callers of a written batch's waited records and hands the
 * others back to the owner. */
static void gc_complete(groupcommit *g, groupcommit_rec *batch, int rc)
{
    groupcommit_rec *async = NULL, **atail = &async;
    pthread_mutex_lock(&g->lock);
    for (groupcommit_rec *r = batch, *next; r; r = next) {
        next = r->next; /* a waited record may vanish once done */
        if (r->waited) {
            r->rc = rc;
            r->done = 1;
        } else {
            *atail = r;
            atail = &r->next;
        }
    }
    *atail = NULL;
    pthread_cond_broadcast(&g->committed);
    pthread_mutex_unlock(&g->lock);
    for (groupcommit_rec *r = async, *next; r; r = next) {
        next = r->next;
        g->release(g->owner, r, rc);
    }
}

static void *gc_thread(void *arg)
{
    groupcommit *g = arg;
    pthread_mutex_lock(&g->lock);
    for (;;) {
        while (!g->pending && !g->closing)
            pthread_cond_wait(&g->work, &g->lock);
        if (!g->pending)
            break;
        /* Everything that arrived during the last commit goes in this one. */
        groupcommit_rec *batch = g->pending;
        g->pending = NULL;
        g->tail = &g->pending;
        pthread_mutex_unlock(&g->lock);
        gc_complete(g, batch, g->write(g->owner, batch));
        pthread_mutex_lock(&g->lock);
    }
    g->stopped = 1;
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int groupcommit_init(groupcommit *g, groupcommit_write_fn write, groupcommit_release_fn release,
                     void *owner)
{
    memset(g, 0, sizeof *g);
    g->write = write;
    g->release = release;
    g->owner = owner;
    g->tail = &g->pending;
    int rc = -pthread_mutex_init(&g->lock, NULL);
    if (rc < 0)
        goto fail_lock;
    if ((rc = -pthread_cond_init(&g->work, NULL)) < 0)
        goto fail_work;
    if ((rc = -pthread_cond_init(&g->committed, NULL)) < 0)
        goto fail_committed;
    if ((rc = -pthread_create(&g->thread, NULL, gc_thread, g)) < 0)
        goto fail_thread;
    return 0;

fail_thread:
    pthread_cond_destroy(&g->committed);
fail_committed:
    pthread_cond_destroy(&g->work);
fail_work:
    pthread_mutex_destroy(&g->lock);
fail_lock:
    return rc;
}

void groupcommit_destroy(groupcommit *g)
{
    pthread_mutex_lock(&g->lock);
    g->closing = 1;
    pthread_cond_signal(&g->work);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    pthread_cond_destroy(&g->committed);
    pthread_cond_destroy(&g->work);
    pthread_mutex_destroy(&g->lock);
}

int groupcommit_submit(groupcommit *g, groupcommit_rec *r)
{
    int rc = 0;
    pthread_mutex_lock(&g->lock);
    /* Not refused while closing: a release may queue more (a journal's
     * published finish evicts an older task, whose deletion is queued),
     * and the thread writes whatever is pending before it stops. */
    if (g->stopped) {
        pthread_mutex_unlock(&g->lock);
        return -ESHUTDOWN;
    }
    r->next = NULL;
    r->done = 0;
    *g->tail = r;
    g->tail = &r->next;
    pthread_cond_signal(&g->work);
    while (r->waited && !r->done)
        pthread_cond_wait(&g->committed, &g->lock);
    if (r->waited)
        rc = r->rc;
    pthread_mutex_unlock(&g->lock);
    return rc;
}
