/* Unit tests for the group-commit writer (groupcommit): records that
 * nobody waits for come back to the owner in order with their batch's
 * result, and a record a release queues while the writer closes is still
 * written. (Batching and waiting are covered through the job store's
 * writer in test_jobstore_writer.) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "groupcommit.h"

typedef struct rec {
    groupcommit_rec link;
    int n;
} rec;

typedef struct owner {
    groupcommit gc;
    int fail;        /* what every batch returns */
    int written[16]; /* in write order */
    int nwritten;
    int released[16]; /* in release order */
    int rcs[16];
    int nreleased;
    int chain; /* releases of this number queue one more */
} owner;

static int o_write(void *arg, groupcommit_rec *batch)
{
    owner *o = arg;
    for (groupcommit_rec *r = batch; r; r = r->next)
        o->written[o->nwritten++] = ((rec *)r)->n;
    return o->fail;
}

static void o_release(void *arg, groupcommit_rec *r, int rc)
{
    owner *o = arg;
    int n = ((rec *)r)->n;
    o->released[o->nreleased] = n;
    o->rcs[o->nreleased++] = rc;
    free(r);
    if (n == o->chain) {
        rec *more = calloc(1, sizeof *more);
        more->n = n + 100;
        assert_int_equal(groupcommit_submit(&o->gc, &more->link), 0);
    }
}

static void submit_async(owner *o, int n)
{
    rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->n = n;
    assert_int_equal(groupcommit_submit(&o->gc, &r->link), 0);
}

static void released_in_order_and_chained_at_close(void **state)
{
    (void)state;
    owner o = {.chain = 3};
    assert_int_equal(groupcommit_init(&o.gc, o_write, o_release, &o), 0);
    for (int i = 1; i <= 3; i++)
        submit_async(&o, i);
    groupcommit_destroy(&o.gc); /* 3's release queues 103 while closing */
    assert_int_equal(o.nwritten, 4);
    assert_int_equal(o.nreleased, 4);
    int want[] = {1, 2, 3, 103};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(o.written[i], want[i]);
        assert_int_equal(o.released[i], want[i]);
        assert_int_equal(o.rcs[i], 0);
    }
}

static void waited_record_gets_the_batch_result(void **state)
{
    (void)state;
    owner o = {.fail = -EIO, .chain = -1};
    assert_int_equal(groupcommit_init(&o.gc, o_write, o_release, &o), 0);
    rec r = {.link.waited = 1, .n = 7};
    assert_int_equal(groupcommit_submit(&o.gc, &r.link), -EIO);
    submit_async(&o, 8);
    groupcommit_destroy(&o.gc);
    assert_int_equal(o.nwritten, 2);
    assert_int_equal(o.nreleased, 1); /* the waited one stays its caller's */
    assert_int_equal(o.released[0], 8);
    assert_int_equal(o.rcs[0], -EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(released_in_order_and_chained_at_close),
        cmocka_unit_test(waited_record_gets_the_batch_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
