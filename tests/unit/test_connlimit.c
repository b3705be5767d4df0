/* Unit tests for the per-address connection table: counting, the limit,
 * leaving, and many addresses at once. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "connlimit.h"

#define A1 0x0100007fu /* any two distinct addresses */
#define A2 0x0200007fu

static void counts_up_to_the_limit(void **state)
{
    (void)state;
    connlimit cl;
    assert_int_equal(connlimit_init(&cl, 3, 16), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(connlimit_enter(&cl, A1), 0);
    assert_int_equal(connlimit_enter(&cl, A1), -EBUSY);
    assert_int_equal(connlimit_count(&cl, A1), 4); /* counted all the same */
    /* Another address has its own allowance. */
    assert_int_equal(connlimit_enter(&cl, A2), 0);
    connlimit_leave(&cl, A1); /* the refused one closes */
    connlimit_leave(&cl, A1);
    assert_int_equal(connlimit_enter(&cl, A1), 0);
    assert_int_equal(connlimit_count(&cl, A1), 3);
    assert_int_equal(connlimit_count(&cl, A2), 1);
    connlimit_destroy(&cl);
}

static void leaving_frees_the_entry(void **state)
{
    (void)state;
    connlimit cl;
    assert_int_equal(connlimit_init(&cl, 1, 2), 0);
    assert_int_equal(connlimit_enter(&cl, A1), 0);
    assert_int_equal(connlimit_enter(&cl, A2), 0);
    assert_int_equal(cl.used, 2);
    connlimit_leave(&cl, A1);
    assert_int_equal(cl.used, 1);
    assert_int_equal(connlimit_count(&cl, A1), 0);
    assert_int_equal(connlimit_count(&cl, A2), 1);
    /* The table holds as many entries as connections may be counted. */
    assert_int_equal(connlimit_enter(&cl, 0x0300007fu), 0);
    assert_int_equal(cl.used, 2);
    /* Leaving an address never counted changes nothing. */
    connlimit_leave(&cl, 0x0400007fu);
    assert_int_equal(cl.used, 2);
    connlimit_destroy(&cl);
}

static void no_limit_counts_nothing(void **state)
{
    (void)state;
    connlimit cl;
    assert_int_equal(connlimit_init(&cl, 0, 1024), 0);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(connlimit_enter(&cl, A1), 0);
    assert_int_equal(connlimit_count(&cl, A1), 0);
    connlimit_leave(&cl, A1);
    connlimit_destroy(&cl);
}

struct churn {
    connlimit *cl;
    uint32_t addr;
    int refused;
};

static void *churn_thread(void *arg)
{
    struct churn *c = arg;
    for (int i = 0; i < 20000; i++) {
        if (connlimit_enter(c->cl, c->addr) < 0)
            c->refused++;
        connlimit_leave(c->cl, c->addr);
    }
    return NULL;
}

/* Threads entering and leaving at once leave the table empty. */
static void concurrent_enter_leave(void **state)
{
    (void)state;
    connlimit cl;
    assert_int_equal(connlimit_init(&cl, 2, 8), 0);
    pthread_t t[4];
    struct churn c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (struct churn){&cl, i % 2 ? A1 : A2, 0};
        assert_int_equal(pthread_create(&t[i], NULL, churn_thread, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    /* Two threads per address: never more than two at once, so none refused. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(c[i].refused, 0);
    assert_int_equal(cl.used, 0);
    connlimit_destroy(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_up_to_the_limit),
        cmocka_unit_test(leaving_frees_the_entry),
        cmocka_unit_test(no_limit_counts_nothing),
        cmocka_unit_test(concurrent_enter_leave),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
