/* Unit tests for the memory budget: reservations within the limit, the two
 * refusals, holdings that move, charges past the limit, concurrent use,
 * the cost of parsing JSON, and tasks that hold their share. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "membudget.h"
#include "task.h"

static void reserve_within_the_limit(void **state)
{
    membudget m;
    membudget_init(&m, 100);
    assert_int_equal(membudget_reserve(&m, 60), 0);
    assert_int_equal(membudget_reserve(&m, 40), 0);
    assert_int_equal(membudget_used(&m), 100);
    /* Full: a byte more does not fit now, but would later. */
    assert_int_equal(membudget_reserve(&m, 1), -ENOBUFS);
    assert_int_equal(membudget_used(&m), 100);
    membudget_release(&m, 60);
    assert_int_equal(membudget_reserve(&m, 1), 0);
    assert_int_equal(membudget_used(&m), 41);
    /* More than the whole limit never fits. */
    assert_int_equal(membudget_reserve(&m, 101), -E2BIG);
    assert_int_equal(membudget_reserve(&m, 0), 0);
    assert_int_equal(membudget_used(&m), 41);
    assert_int_equal(membudget_max(&m), 100);
}

static void adjust_moves_a_holding(void **state)
{
    membudget m;
    membudget_init(&m, 100);
    size_t held = 0;
    assert_int_equal(membudget_adjust(&m, &held, 70), 0);
    assert_int_equal(held, 70);
    assert_int_equal(membudget_adjust(&m, &held, 20), 0); /* shrinks */
    assert_int_equal(held, 20);
    assert_int_equal(membudget_used(&m), 20);
    assert_int_equal(membudget_reserve(&m, 50), 0);
    /* Growing past what is free fails and leaves the holding as it was. */
    assert_int_equal(membudget_adjust(&m, &held, 60), -ENOBUFS);
    assert_int_equal(held, 20);
    assert_int_equal(membudget_adjust(&m, &held, 200), -E2BIG);
    assert_int_equal(held, 20);
    /* Over the limit as a whole, however small the growth. */
    assert_int_equal(membudget_adjust(&m, &held, 101), -E2BIG);
    assert_int_equal(held, 20);
    assert_int_equal(membudget_adjust(&m, &held, 50), 0); /* exactly full */
    assert_int_equal(membudget_used(&m), 100);
    assert_int_equal(membudget_adjust(&m, &held, 0), 0);
    assert_int_equal(membudget_used(&m), 50);
}

static void charge_passes_the_limit(void **state)
{
    membudget m;
    membudget_init(&m, 100);
    membudget_charge(&m, 150);
    assert_int_equal(membudget_used(&m), 150);
    /* Over the limit nothing fits until enough is released. */
    assert_int_equal(membudget_reserve(&m, 1), -ENOBUFS);
    membudget_release(&m, 60);
    assert_int_equal(membudget_reserve(&m, 10), 0);
    assert_int_equal(membudget_reserve(&m, 1), -ENOBUFS);
}

static void unbounded_and_null(void **state)
{
    membudget m;
    membudget_init(&m, 0);
    assert_int_equal(membudget_reserve(&m, SIZE_MAX / 2), 0);
    assert_int_equal(membudget_used(&m), SIZE_MAX / 2);
    membudget_release(&m, SIZE_MAX / 2);
    assert_int_equal(membudget_used(&m), 0);
    /* NULL counts nothing and refuses nothing. */
    size_t held = 5;
    assert_int_equal(membudget_reserve(NULL, 1000), 0);
    assert_int_equal(membudget_adjust(NULL, &held, 9000), 0);
    assert_int_equal(held, 9000);
    membudget_release(NULL, 1000);
    membudget_charge(NULL, 1000);
    assert_int_equal(membudget_used(NULL), 0);
    assert_int_equal(membudget_max(NULL), 0);
}

static void default_is_a_quarter_of_ram_at_most_1g(void **state)
{
    size_t d = membudget_default_max();
    assert_true(d > 0);
    assert_true(d <= (size_t)1 << 30);
}

static void describe_names_the_option(void **state)
{
    membudget m;
    membudget_init(&m, 4096);
    membudget_reserve(&m, 1000);
    char s[200];
    membudget_describe(&m, s, sizeof s);
    assert_non_null(strstr(s, "1000 of the 4096 bytes"));
    assert_non_null(strstr(s, "--max-queue-bytes"));
}

/* Threads that reserve and release as fast as they can: the count never
 * passes the limit and ends at zero. */
struct hammer {
    membudget *m;
    int refused;
    int over; /* times the count was seen past the limit */
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 200000; i++) {
        size_t n = 1 + (size_t)(i % 7) * 13;
        if (membudget_reserve(h->m, n) < 0) {
            h->refused++;
            continue;
        }
        h->over += membudget_used(h->m) > 1000;
        membudget_release(h->m, n);
    }
    return NULL;
}

static void concurrent_reservations_stay_within(void **state)
{
    membudget m;
    membudget_init(&m, 1000);
    membudget_reserve(&m, 950); /* so that the threads compete for 50 */
    struct hammer h[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){&m, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
    }
    int refused = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        refused += h[i].refused;
        assert_int_equal(h[i].over, 0);
    }
    assert_int_equal(membudget_used(&m), 950);
    assert_true(refused > 0); /* 79 bytes never fit in 50 */
}

static void json_cost_counts_values_outside_strings(void **state)
{
    /* One value: the text and one item. */
    assert_int_equal(membudget_json_cost("1", 1), 1 + MEMBUDGET_JSON_ITEM);
    const char *arr = "[1,2,3]";
    assert_int_equal(membudget_json_cost(arr, strlen(arr)), strlen(arr) + 4 * MEMBUDGET_JSON_ITEM);
    const char *obj = "{\"a\":1,\"b\":[]}";
    assert_int_equal(membudget_json_cost(obj, strlen(obj)), strlen(obj) + 4 * MEMBUDGET_JSON_ITEM);
    /* Commas and brackets inside strings, escaped quotes included, are
     * text, not values. */
    const char *str = "{\"file\":\"a,b[c{d\\\",e\\\\\",\"x\":1}";
    assert_int_equal(membudget_json_cost(str, strlen(str)), strlen(str) + 3 * MEMBUDGET_JSON_ITEM);
    /* An unterminated string ends the scan. */
    const char *open = "[\"a,b,c";
    assert_int_equal(membudget_json_cost(open, strlen(open)),
                     strlen(open) + 2 * MEMBUDGET_JSON_ITEM);
    assert_int_equal(membudget_json_cost("", 0), MEMBUDGET_JSON_ITEM);
}

static void json_cost_of_many_small_values(void **state)
{
    /* The shape that took 2.6 GB for 64 MiB: "[1,1,...]". */
    size_t n = 100000, len = 2 * n + 1;
    char *s = malloc(len + 1);
    assert_non_null(s);
    s[0] = '[';
    for (size_t i = 0; i < n; i++) {
        s[1 + 2 * i] = '1';
        s[2 + 2 * i] = i + 1 < n ? ',' : ']';
    }
    s[len] = '\0';
    assert_int_equal(membudget_json_cost(s, len), len + (n + 1) * MEMBUDGET_JSON_ITEM);
    free(s);
}

static void task_holds_its_share(void **state)
{
    membudget m;
    membudget_init(&m, 1 << 20);
    unsigned char *file = malloc(1000);
    char **args = calloc(3, sizeof *args);
    assert_non_null(file);
    assert_non_null(args);
    memset(file, 'x', 1000);
    args[0] = strdup("one");
    args[1] = strdup("two");
    task *t = task_new(TASK_BIN, file, 1000, args, 2);
    assert_non_null(t);
    size_t bytes = task_bytes(t);
    assert_true(bytes > 1000 + sizeof *t);
    assert_true(bytes < 1000 + sizeof *t + 200);
    /* A body's reservation becomes the task's, cut to its size. */
    size_t held = 0;
    assert_int_equal(membudget_adjust(&m, &held, 5000), 0);
    assert_int_equal(task_hold(t, &m, &held), 0);
    assert_int_equal(held, 0);
    assert_int_equal(membudget_used(&m), bytes);
    /* Started: the program goes, and the share with it. */
    task_drop_program(t);
    assert_null(t->file);
    assert_int_equal(membudget_used(&m), 0);
    task_drop_args(t);
    assert_null(t->args);
    task_unref(t);
    assert_int_equal(membudget_used(&m), 0);
}

static void task_refused_keeps_then_releases(void **state)
{
    membudget m;
    membudget_init(&m, 300);
    task *t = task_new(TASK_BIN, calloc(1, 2000), 2000, calloc(1, sizeof(char *)), 0);
    assert_non_null(t);
    size_t held = 100;
    membudget_reserve(&m, 100);
    /* Over the whole limit: refused; what it took over goes at the end. */
    assert_int_equal(task_hold(t, &m, &held), -E2BIG);
    assert_int_equal(membudget_used(&m), 100);
    task_unref(t);
    assert_int_equal(membudget_used(&m), 0);
    /* Restored tasks are counted past the limit. */
    t = task_new(TASK_BIN, calloc(1, 2000), 2000, calloc(1, sizeof(char *)), 0);
    task_hold_restored(t, &m);
    assert_true(membudget_used(&m) > 2000);
    task_unref(t);
    assert_int_equal(membudget_used(&m), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reserve_within_the_limit),
        cmocka_unit_test(adjust_moves_a_holding),
        cmocka_unit_test(charge_passes_the_limit),
        cmocka_unit_test(unbounded_and_null),
        cmocka_unit_test(default_is_a_quarter_of_ram_at_most_1g),
        cmocka_unit_test(describe_names_the_option),
        cmocka_unit_test(concurrent_reservations_stay_within),
        cmocka_unit_test(json_cost_counts_values_outside_strings),
        cmocka_unit_test(json_cost_of_many_small_values),
        cmocka_unit_test(task_holds_its_share),
        cmocka_unit_test(task_refused_keeps_then_releases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
