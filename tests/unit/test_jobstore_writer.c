/* Unit tests for the job store's writer thread (jobstore_writer) over a
 * fake database: records come back in order with their strings copied, a
 * record waits for its commit and gets its error, and what arrives during
 * a commit goes in the next one (group commit). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "jobstore_writer.h"

/* What the fake database saw. Touched by the writer thread only while a
 * test waits in the writer's calls, and read once the writer is gone. */
typedef struct fake {
    int fail;    /* the error every batch returns */
    int hold;    /* the first batch waits for this many pending records */
    int entered; /* atomic: a batch is being written */
    jobstore_writer *w;
    int batches;
    int sizes[64];
    int n;
    int kinds[64];
    int64_t ids[64];
    char answers[64][16];
} fake;

static int pending_count(jobstore_writer *w)
{
    int k = 0;
    pthread_mutex_lock(&w->gc.lock);
    for (groupcommit_rec *r = w->gc.pending; r; r = r->next)
        k++;
    pthread_mutex_unlock(&w->gc.lock);
    return k;
}

static int fake_write(void *impl, const jobstore_rec *batch)
{
    fake *f = impl;
    __atomic_store_n(&f->entered, 1, __ATOMIC_SEQ_CST);
    /* Wide bound: the others' records arrive within milliseconds here. */
    for (int tries = 0; f->hold && pending_count(f->w) < f->hold && tries < 10000; tries++)
        usleep(1000);
    f->hold = 0;
    int size = 0;
    for (const jobstore_rec *r = batch; r; r = jobstore_rec_next(r), size++) {
        f->kinds[f->n] = r->kind;
        f->ids[f->n] = r->id;
        snprintf(f->answers[f->n], sizeof f->answers[0], "%s", r->answer ? r->answer : "");
        f->n++;
    }
    f->sizes[f->batches++] = size;
    return f->fail;
}

static void records_in_order_with_copies(void **state)
{
    (void)state;
    fake f = {0};
    jobstore_writer w;
    f.w = &w;
    assert_int_equal(jobstore_writer_init(&w, fake_write, &f), 0);
    assert_int_equal(jobstore_writer_record(&w, 1, "1+2", 3, 10), 0);
    char answer[8] = "3";
    jobstore_row row = {.id = 1, .finished = 1, .finished_us = 20, .answer = answer};
    jobstore_writer_finish(&w, &row);
    answer[0] = 'x'; /* the writer has its own copy */
    jobstore_writer_forget(&w, 1);
    jobstore_writer_destroy(&w); /* writes what is pending first */
    assert_int_equal(f.n, 3);
    assert_int_equal(f.kinds[0], JOBSTORE_RECORD);
    assert_int_equal(f.kinds[1], JOBSTORE_FINISH);
    assert_string_equal(f.answers[1], "3");
    assert_int_equal(f.kinds[2], JOBSTORE_FORGET);
    assert_int_equal(f.ids[2], 1);
}

static void record_gets_the_batch_error(void **state)
{
    (void)state;
    fake f = {.fail = -EIO};
    jobstore_writer w;
    f.w = &w;
    assert_int_equal(jobstore_writer_init(&w, fake_write, &f), 0);
    assert_int_equal(jobstore_writer_record(&w, 7, "7", 1, 10), -EIO);
    jobstore_row row = {.id = 7, .finished = 1, .error = "boom"};
    jobstore_writer_finish(&w, &row); /* failed: logged and freed */
    jobstore_writer_destroy(&w);
    assert_int_equal(f.n, 2);
}

typedef struct submitter {
    jobstore_writer *w;
    int64_t id;
    int rc;
} submitter;

static void *submit_one(void *arg)
{
    submitter *s = arg;
    s->rc = jobstore_writer_record(s->w, s->id, "1", 1, 0);
    return NULL;
}

static void records_during_a_commit_share_the_next(void **state)
{
    (void)state;
    fake f = {.hold = 3};
    jobstore_writer w;
    f.w = &w;
    assert_int_equal(jobstore_writer_init(&w, fake_write, &f), 0);
    submitter s[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (submitter){.w = &w, .id = i + 1};
        assert_int_equal(pthread_create(&t[i], NULL, submit_one, &s[i]), 0);
        if (i == 0) /* the first one alone in the first batch */
            while (!__atomic_load_n(&f.entered, __ATOMIC_SEQ_CST))
                usleep(1000);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(s[i].rc, 0);
    }
    jobstore_writer_destroy(&w);
    assert_int_equal(f.batches, 2);
    assert_int_equal(f.sizes[0], 1);
    assert_int_equal(f.sizes[1], 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_in_order_with_copies),
        cmocka_unit_test(record_gets_the_batch_error),
        cmocka_unit_test(records_during_a_commit_share_the_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
