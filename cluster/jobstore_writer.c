/* jobstore_writer: see jobstore_writer.h. */
#include "jobstore_writer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void jsw_rec_free(jobstore_rec *r)
{
    free(r->answer);
    free(r->error);
    free(r);
}

/* Wakes the callers of waited records of a written batch, frees the rest. */
static void jsw_complete(jobstore_writer *w, jobstore_rec *batch, int rc)
{
    jobstore_rec *async = NULL, **atail = &async;
    pthread_mutex_lock(&w->lock);
    for (jobstore_rec *r = batch, *next; r; r = next) {
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
    pthread_cond_broadcast(&w->committed);
    pthread_mutex_unlock(&w->lock);
    for (jobstore_rec *r = async, *next; r; r = next) {
        next = r->next;
        jsw_rec_free(r);
    }
}

static void *jsw_thread(void *arg)
{
    jobstore_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->pending && !w->closing)
            pthread_cond_wait(&w->work, &w->lock);
        if (!w->pending)
            break;
        /* Everything that arrived during the last commit goes in this one. */
        jobstore_rec *batch = w->pending;
        w->pending = NULL;
        w->tail = &w->pending;
        pthread_mutex_unlock(&w->lock);
        jsw_complete(w, batch, w->write(w->impl, batch));
        pthread_mutex_lock(&w->lock);
    }
    w->stopped = 1;
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Queues r and, for a waited record, returns once it is written. Returns
 * 0, the write's error, or -ESHUTDOWN (r not queued) once the writer is
 * gone. */
static int jsw_submit(jobstore_writer *w, jobstore_rec *r)
{
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    if (w->stopped || w->closing) {
        pthread_mutex_unlock(&w->lock);
        return -ESHUTDOWN;
    }
    r->next = NULL;
    *w->tail = r;
    w->tail = &r->next;
    pthread_cond_signal(&w->work);
    while (r->waited && !r->done)
        pthread_cond_wait(&w->committed, &w->lock);
    if (r->waited)
        rc = r->rc;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

/* Queues an asynchronous record; on failure logs that the row is stale. */
static void jsw_submit_async(jobstore_writer *w, jobstore_rec *r, int64_t id, const char *what)
{
    if (r && jsw_submit(w, r) == 0)
        return;
    log_error("job %lld: its %s is not in the job store (%s)", (long long)id, what,
              r ? "store closed" : "out of memory");
    if (r)
        jsw_rec_free(r);
}

int jobstore_writer_record(jobstore_writer *w, int64_t id, const char *text, size_t len,
                           int64_t created_us)
{
    jobstore_rec r = {.kind = JOBSTORE_RECORD,
                      .id = id,
                      .text = text,
                      .text_len = len,
                      .us = created_us,
                      .waited = 1};
    return jsw_submit(w, &r);
}

void jobstore_writer_finish(jobstore_writer *w, const jobstore_row *row)
{
    jobstore_rec *r = calloc(1, sizeof *r);
    if (r) {
        r->kind = JOBSTORE_FINISH;
        r->id = row->id;
        r->us = row->finished_us;
        r->ops_done = row->ops_done;
        r->answer = row->answer ? strdup(row->answer) : NULL;
        r->error = row->error ? strdup(row->error) : NULL;
        if ((row->answer && !r->answer) || (row->error && !r->error)) {
            jsw_rec_free(r);
            r = NULL;
        }
    }
    /* A lost finish leaves the row unfinished: the next start computes
     * the job again, which gives the same answer (operations are pure). */
    jsw_submit_async(w, r, row->id, "result");
}

void jobstore_writer_forget(jobstore_writer *w, int64_t id)
{
    jobstore_rec *r = calloc(1, sizeof *r);
    if (r) {
        r->kind = JOBSTORE_FORGET;
        r->id = id;
    }
    /* A row left behind is trimmed with retention at the next start. */
    jsw_submit_async(w, r, id, "deletion");
}

int jobstore_writer_init(jobstore_writer *w, jobstore_batch_fn write, void *impl)
{
    memset(w, 0, sizeof *w);
    w->write = write;
    w->impl = impl;
    w->tail = &w->pending;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->committed, NULL);
    int rc = -pthread_create(&w->thread, NULL, jsw_thread, w);
    if (rc < 0) {
        pthread_cond_destroy(&w->committed);
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->lock);
    }
    return rc;
}

void jobstore_writer_destroy(jobstore_writer *w)
{
    pthread_mutex_lock(&w->lock);
    w->closing = 1;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->committed);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->lock);
}
