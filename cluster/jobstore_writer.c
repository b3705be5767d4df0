/* jobstore_writer: see jobstore_writer.h. */
#include "jobstore_writer.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

static void jsw_rec_free(jobstore_rec *r)
{
    free(r->answer);
    free(r->error);
    free(r);
}

static int jsw_write(void *owner, groupcommit_rec *batch)
{
    jobstore_writer *w = owner;
    return w->write(w->impl, (const jobstore_rec *)batch);
}

/* A finish or forget, written or not: the write logged its failure. */
static void jsw_release(void *owner, groupcommit_rec *r, int rc)
{
    (void)owner;
    (void)rc;
    jsw_rec_free((jobstore_rec *)r);
}

/* Queues an asynchronous record; on failure logs that the row is stale. */
static void jsw_submit_async(jobstore_writer *w, jobstore_rec *r, int64_t id, const char *what)
{
    if (r && groupcommit_submit(&w->gc, &r->link) == 0)
        return;
    log_error("job %lld: its %s is not in the job store (%s)", (long long)id, what,
              r ? "store closed" : "out of memory");
    if (r)
        jsw_rec_free(r);
}

int jobstore_writer_record(jobstore_writer *w, int64_t id, const char *text, size_t len,
                           int64_t created_us)
{
    jobstore_rec r = {.link.waited = 1,
                      .kind = JOBSTORE_RECORD,
                      .id = id,
                      .text = text,
                      .text_len = len,
                      .us = created_us};
    return groupcommit_submit(&w->gc, &r.link);
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
    w->write = write;
    w->impl = impl;
    return groupcommit_init(&w->gc, jsw_write, jsw_release, w);
}

void jobstore_writer_destroy(jobstore_writer *w)
{
    groupcommit_destroy(&w->gc);
}
