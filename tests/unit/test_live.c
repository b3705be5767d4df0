/* Unit tests for live output: reads from an offset, the cap, the end of
 * the output, and readers woken by an append or the end. Timed waits
 * assert only that a wait ends, and that one without an event lasts its
 * deadline. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "live.h"
#include "timefmt.h"

/* Far enough that a test reaching it has hung. */
#define LIVE_TEST_FOREVER_US 30000000

static void read_from_offsets(void **state)
{
    live *l = live_new(1024);
    assert_non_null(l);
    live_append(l, "hello ", 6);
    live_append(l, "world", 5);
    char out[16];
    int done = 1;
    int64_t deadline = time_mono_us() + LIVE_TEST_FOREVER_US;
    size_t n = live_read(l, 0, out, sizeof out, deadline, &done);
    assert_int_equal(n, 11);
    assert_memory_equal(out, "hello world", 11);
    assert_false(done);
    /* A short buffer gets what fits; the rest is read from the next offset. */
    n = live_read(l, 6, out, 3, deadline, &done);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "wor", 3);
    n = live_read(l, 9, out, sizeof out, deadline, &done);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "ld", 2);
    live_unref(l);
}

/* done is set only with the last byte: a reader behind the end of a
 * finished output still gets what it has not read. */
static void end_is_seen_after_the_last_byte(void **state)
{
    live *l = live_new(1024);
    assert_non_null(l);
    live_append(l, "abc", 3);
    live_finish(l);
    char out[2];
    int done = 1;
    int64_t deadline = time_mono_us() + LIVE_TEST_FOREVER_US;
    assert_int_equal(live_read(l, 0, out, sizeof out, deadline, &done), 2);
    assert_false(done);
    assert_int_equal(live_read(l, 2, out, sizeof out, deadline, &done), 1);
    assert_true(done);
    assert_int_equal(live_read(l, 3, out, sizeof out, deadline, &done), 0);
    assert_true(done);
    live_unref(l);
}

static void cap_drops_the_excess(void **state)
{
    live *l = live_new(8);
    assert_non_null(l);
    live_append(l, "12345", 5);
    live_append(l, "67890", 5); /* only "678" fits */
    live_append(l, "x", 1);     /* nothing fits */
    live_finish(l);
    char out[32];
    int done = 0;
    size_t n = live_read(l, 0, out, sizeof out, time_mono_us() + LIVE_TEST_FOREVER_US, &done);
    assert_int_equal(n, 8);
    assert_memory_equal(out, "12345678", 8);
    assert_true(done);
    live_unref(l);
}

static void read_times_out_without_output(void **state)
{
    live *l = live_new(64);
    assert_non_null(l);
    char out[8];
    int done = 1;
    int64_t t0 = time_mono_us();
    assert_int_equal(live_read(l, 0, out, sizeof out, t0 + 50000, &done), 0);
    assert_false(done);
    assert_true(time_mono_us() - t0 >= 50000);
    live_unref(l);
}

/* A reader blocked past the end, on another thread. */
struct reader {
    live *l;
    size_t off;
    char out[16];
    size_t n;
    int done;
    int64_t took_us;
};

static void *reader_thread(void *arg)
{
    struct reader *r = arg;
    int64_t t0 = time_mono_us();
    r->n = live_read(r->l, r->off, r->out, sizeof r->out, t0 + LIVE_TEST_FOREVER_US, &r->done);
    r->took_us = time_mono_us() - t0;
    return NULL;
}

static void reader_start(pthread_t *th, struct reader *r, live *l, size_t off)
{
    *r = (struct reader){.l = live_ref(l), .off = off};
    assert_int_equal(pthread_create(th, NULL, reader_thread, r), 0);
    usleep(20000); /* let it block; if it has not yet, it sees the change at once */
}

static void reader_join(pthread_t th, struct reader *r)
{
    pthread_join(th, NULL);
    live_unref(r->l);
    assert_true(r->took_us < LIVE_TEST_FOREVER_US / 2);
}

static void append_wakes_a_reader(void **state)
{
    live *l = live_new(64);
    assert_non_null(l);
    live_append(l, "ab", 2);
    pthread_t th;
    struct reader r;
    reader_start(&th, &r, l, 2);
    live_append(l, "cd", 2);
    reader_join(th, &r);
    assert_int_equal(r.n, 2);
    assert_memory_equal(r.out, "cd", 2);
    assert_false(r.done);
    live_unref(l);
}

static void finish_wakes_a_reader(void **state)
{
    live *l = live_new(64);
    assert_non_null(l);
    pthread_t th;
    struct reader r;
    reader_start(&th, &r, l, 0);
    live_finish(l);
    reader_join(th, &r);
    assert_int_equal(r.n, 0);
    assert_true(r.done);
    live_unref(l);
}

/* The worker's reference may go first: a reader keeps the output alive. */
static void reader_outlives_the_writer(void **state)
{
    live *l = live_new(64);
    assert_non_null(l);
    live *reader = live_ref(l);
    live_append(l, "out", 3);
    live_finish(l);
    live_unref(l);
    char out[8];
    int done = 0;
    assert_int_equal(
        live_read(reader, 0, out, sizeof out, time_mono_us() + LIVE_TEST_FOREVER_US, &done), 3);
    assert_true(done);
    live_unref(reader);
    live_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_from_offsets),
        cmocka_unit_test(end_is_seen_after_the_last_byte),
        cmocka_unit_test(cap_drops_the_excess),
        cmocka_unit_test(read_times_out_without_output),
        cmocka_unit_test(append_wakes_a_reader),
        cmocka_unit_test(finish_wakes_a_reader),
        cmocka_unit_test(reader_outlives_the_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
