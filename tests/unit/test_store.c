/* Unit tests for the task store: lookup by id, the lifecycle and its
 * counters, retention and its hook, long polls woken by a start, a finish
 * or a close. Timed waits assert only what no scheduler can change: that
 * a wait ends, and that one without an event lasts its deadline. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "live.h"
#include "store.h"
#include "timefmt.h"

/* Far enough that a test reaching it has hung. */
#define STORE_TEST_FOREVER_US 30000000

/* A task as create_task makes it: no program, no arguments. */
static task *mk(void)
{
    task *t = task_new(TASK_BIN, NULL, 0, calloc(1, sizeof(char *)), 0);
    assert_non_null(t);
    return t;
}

/* Adds a new task to s and returns it (the caller keeps its reference). */
static task *added(store *s)
{
    task *t = mk();
    store_add(s, t);
    return t;
}

static void lookup_by_id(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 10), 0);
    task *t = added(&s);
    task *found = store_lookup(&s, t->id_str);
    assert_ptr_equal(found, t);
    task_unref(found);
    /* Upper case is the same UUID. */
    char upper[sizeof t->id_str];
    for (size_t i = 0; i < sizeof upper; i++)
        upper[i] =
            (char)(t->id_str[i] >= 'a' && t->id_str[i] <= 'f' ? t->id_str[i] - 32 : t->id_str[i]);
    found = store_lookup(&s, upper);
    assert_ptr_equal(found, t);
    task_unref(found);
    assert_null(store_lookup(&s, "00000000-0000-4000-8000-000000000000"));
    assert_null(store_lookup(&s, "not-a-uuid"));
    assert_null(store_lookup(&s, ""));
    store_counts c = store_get_counts(&s);
    assert_int_equal(c.waiting, 1);
    assert_int_equal(c.total, 1);
    store_destroy(&s);
    task_unref(t);
}

/* Task ids are random version 4 UUIDs in lower case, and differ. */
static void ids_are_random_v4_uuids(void **state)
{
    task *a = mk(), *b = mk();
    for (task *t = a; t; t = t == a ? b : NULL) {
        const char *s = t->id_str;
        assert_int_equal(strlen(s), 36);
        for (int i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23)
                assert_int_equal(s[i], '-');
            else
                assert_non_null(strchr("0123456789abcdef", s[i]));
        }
        assert_int_equal(s[14], '4');
        assert_non_null(strchr("89ab", s[19]));
    }
    assert_string_not_equal(a->id_str, b->id_str);
    task_unref(a);
    task_unref(b);
}

/* A task refused by the queue vanishes as if it had never been added. */
static void remove_undoes_add(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 10), 0);
    task *t = added(&s);
    store_remove(&s, t);
    assert_null(store_lookup(&s, t->id_str));
    store_counts c = store_get_counts(&s);
    assert_int_equal(c.waiting, 0);
    assert_int_equal(c.total, 0);
    store_destroy(&s);
    task_unref(t);
}

static void lifecycle_and_counts(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 10), 0);
    task *t = added(&s);
    live *lv = live_new(64);
    assert_non_null(lv);
    assert_null(store_live_get(&s, t)); /* waiting: nothing to stream yet */

    store_mark_running(&s, t, lv);
    task_view v = store_view(&s, t, 0);
    assert_int_equal(v.status, TASK_RUNNING);
    assert_int_equal(v.attempts, 1);
    assert_true(v.started_us >= t->created_us);
    store_counts c = store_get_counts(&s);
    assert_int_equal(c.waiting, 0);
    assert_int_equal(c.running, 1);
    live *got = store_live_get(&s, t);
    assert_ptr_equal(got, lv);

    store_mark_finished(&s, t, TASK_SUCCESS);
    v = store_view(&s, t, 0);
    assert_int_equal(v.status, TASK_SUCCESS);
    assert_true(v.finished_us >= v.started_us);
    c = store_get_counts(&s);
    assert_int_equal(c.running, 0);
    assert_int_equal(c.finished, 1);
    assert_int_equal(c.total, 1);
    /* The live output ended with the task and left it. */
    assert_null(store_live_get(&s, t));
    char out[8];
    int done = 0;
    assert_int_equal(
        live_read(got, 0, out, sizeof out, time_mono_us() + STORE_TEST_FOREVER_US, &done), 0);
    assert_true(done);
    live_unref(got);
    live_unref(lv);
    store_destroy(&s);
    task_unref(t);
}

/* A task refused at start (no sandbox, no directory) ends from WAIT: it
 * starts when it ends, and leaves the waiting count, not the running one. */
static void finished_without_running(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 10), 0);
    task *t = added(&s);
    store_mark_finished_at(&s, t, TASK_ERROR, 1234567);
    task_view v = store_view(&s, t, 0);
    assert_int_equal(v.status, TASK_ERROR);
    assert_int_equal(v.started_us, 1234567);
    assert_int_equal(v.finished_us, 1234567);
    assert_int_equal(v.attempts, 0);
    store_counts c = store_get_counts(&s);
    assert_int_equal(c.waiting, 0);
    assert_int_equal(c.running, 0);
    assert_int_equal(c.finished, 1);
    store_destroy(&s);
    task_unref(t);
}

/* A start the backend stamped before the task was published (the shared
 * store's claim, with the database's clock) is kept by the start and by an
 * end without a run: every node reports the same times. */
static void stamped_start_is_kept(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 10), 0);
    task *ran = mk(), *not_run = mk();
    ran->started_us = not_run->started_us = 1000000;
    store_add(&s, ran);
    store_add(&s, not_run);
    store_mark_running(&s, ran, NULL);
    assert_int_equal(store_view(&s, ran, 0).started_us, 1000000);
    store_mark_finished_at(&s, ran, TASK_SUCCESS, 3000000);
    store_mark_finished_at(&s, not_run, TASK_ERROR, 2000000);
    task_view v = store_view(&s, ran, 0), w = store_view(&s, not_run, 0);
    assert_int_equal(v.started_us, 1000000);
    assert_int_equal(v.finished_us, 3000000);
    assert_int_equal(v.attempts, 1);
    assert_int_equal(w.started_us, 1000000);
    assert_int_equal(w.finished_us, 2000000);
    store_destroy(&s);
    task_unref(ran);
    task_unref(not_run);
}

/* What the eviction hook saw. */
struct evicted {
    store *s;
    task *seen[8];
    int n;
    int lock_was_free; /* every call found the store lock free */
};

static void on_evict(void *arg, task *t)
{
    struct evicted *e = arg;
    int free_lock = pthread_mutex_trylock(&e->s->lock) == 0;
    if (free_lock)
        pthread_mutex_unlock(&e->s->lock);
    e->lock_was_free &= free_lock;
    /* The store still holds its reference while the hook runs. */
    assert_true(atomic_load(&t->refs) >= 1);
    assert_true(e->n < 8);
    e->seen[e->n++] = t;
}

static int was_evicted(const struct evicted *e, const task *t)
{
    for (int i = 0; i < e->n; i++)
        if (e->seen[i] == t)
            return 1;
    return 0;
}

static void retention_drops_the_oldest_finished(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 2), 0);
    struct evicted e = {.s = &s, .lock_was_free = 1};
    store_set_evict_hook(&s, on_evict, &e);
    task *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = added(&s);
        store_mark_running(&s, t[i], NULL);
    }
    store_mark_finished(&s, t[1], TASK_SUCCESS);
    store_mark_finished(&s, t[0], TASK_SUCCESS);
    assert_int_equal(e.n, 0);
    /* Oldest by finishing order, not by creation: t[1] goes. */
    store_mark_finished(&s, t[2], TASK_ERROR);
    assert_int_equal(e.n, 1);
    assert_ptr_equal(e.seen[0], t[1]);
    assert_true(e.lock_was_free);
    assert_null(store_lookup(&s, t[1]->id_str));
    task *kept = store_lookup(&s, t[0]->id_str);
    assert_ptr_equal(kept, t[0]);
    task_unref(kept);
    store_counts c = store_get_counts(&s);
    assert_int_equal(c.finished, 2);
    assert_int_equal(c.evicted, 1);
    assert_int_equal(c.total, 3);
    /* Evicted but still readable by whoever holds a reference. */
    assert_int_equal(t[1]->status, TASK_SUCCESS);
    store_destroy(&s);
    for (int i = 0; i < 3; i++)
        task_unref(t[i]);
}

/* Restored tasks are not evicted as they load (the journal trims them);
 * the next finish drops every one beyond the limit at once, chained
 * through queue_next since none of them is queued. */
static void restore_then_evict_several_at_once(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 1), 0);
    struct evicted e = {.s = &s, .lock_was_free = 1};
    store_set_evict_hook(&s, on_evict, &e);
    task *old[3];
    for (int i = 0; i < 3; i++) {
        old[i] = mk();
        old[i]->status = TASK_SUCCESS;
        store_restore(&s, old[i]);
    }
    task *waiting = mk();
    store_restore(&s, waiting);
    store_counts c = store_get_counts(&s);
    assert_int_equal(c.finished, 3);
    assert_int_equal(c.waiting, 1);
    assert_int_equal(c.total, 4);

    store_mark_running(&s, waiting, NULL);
    store_mark_finished(&s, waiting, TASK_SUCCESS);
    assert_int_equal(e.n, 3);
    assert_true(e.lock_was_free);
    for (int i = 0; i < 3; i++) {
        assert_true(was_evicted(&e, old[i]));
        assert_null(store_lookup(&s, old[i]->id_str));
    }
    c = store_get_counts(&s);
    assert_int_equal(c.finished, 1);
    assert_int_equal(c.evicted, 3);
    store_destroy(&s);
    for (int i = 0; i < 3; i++)
        task_unref(old[i]);
    task_unref(waiting);
}

/* Another thread's view of one task, with a deadline. */
struct poll {
    store *s;
    task *t;
    int64_t deadline;
    int started; /* store_wait_started instead of store_view */
    task_view v;
    int64_t took_us;
};

static void *poll_thread(void *arg)
{
    struct poll *p = arg;
    int64_t t0 = time_mono_us();
    if (p->started)
        store_wait_started(p->s, p->t, p->deadline);
    else
        p->v = store_view(p->s, p->t, p->deadline);
    p->took_us = time_mono_us() - t0;
    return NULL;
}

/* Starts a poll on t that lasts "forever" unless woken. */
static void poll_start(pthread_t *th, struct poll *p, store *s, task *t, int started)
{
    *p = (struct poll){
        .s = s, .t = t, .deadline = time_mono_us() + STORE_TEST_FOREVER_US, .started = started};
    assert_int_equal(pthread_create(th, NULL, poll_thread, p), 0);
    usleep(20000); /* let it block; if it has not yet, it sees the change at once */
}

static void long_poll_woken_by_finish(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 10), 0);
    task *t = added(&s);
    pthread_t th;
    struct poll p;
    poll_start(&th, &p, &s, t, 0);
    store_mark_running(&s, t, NULL); /* a start does not end a long poll */
    store_mark_finished(&s, t, TASK_SUCCESS);
    pthread_join(th, NULL);
    assert_int_equal(p.v.status, TASK_SUCCESS);
    assert_true(p.took_us < STORE_TEST_FOREVER_US / 2);
    store_destroy(&s);
    task_unref(t);
}

static void wait_started_woken_by_start(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 10), 0);
    task *t = added(&s);
    pthread_t th;
    struct poll p;
    poll_start(&th, &p, &s, t, 1);
    store_mark_running(&s, t, NULL);
    pthread_join(th, NULL);
    assert_true(p.took_us < STORE_TEST_FOREVER_US / 2);
    store_mark_finished(&s, t, TASK_SUCCESS);
    store_destroy(&s);
    task_unref(t);
}

/* A copy of a task held elsewhere (a shared store's row) is never in the
 * index; its long poll ends when the copy is updated to a final status. */
static void copy_update_wakes_its_long_poll(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 10), 0);
    task *t = mk();
    pthread_t th;
    struct poll p;
    poll_start(&th, &p, &s, t, 0);
    task_view running = {TASK_RUNNING, 5, 0, 1};
    store_update_copy(&s, t, &running); /* not final: the poll goes on */
    task_view done = {TASK_SUCCESS, 5, 9, 2};
    store_update_copy(&s, t, &done);
    pthread_join(th, NULL);
    assert_int_equal(p.v.status, TASK_SUCCESS);
    assert_int_equal(p.v.attempts, 2);
    assert_int_equal(p.v.finished_us, 9);
    assert_true(p.took_us < STORE_TEST_FOREVER_US / 2);
    store_counts c = store_get_counts(&s);
    assert_int_equal(c.total, 0); /* copies are not counted */
    store_destroy(&s);
    task_unref(t);
}

/* A task whose result a lease fence dropped leaves the index and the
 * counts as if it had never been here. */
static void drop_forgets_a_running_task(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 10), 0);
    task *t = added(&s);
    store_mark_running(&s, t, NULL);
    store_drop(&s, t);
    assert_null(store_lookup(&s, t->id_str));
    store_counts c = store_get_counts(&s);
    assert_int_equal(c.running, 0);
    assert_int_equal(c.waiting, 0);
    assert_int_equal(c.total, 0);
    assert_int_equal(c.finished, 0);
    store_destroy(&s);
    task_unref(t);
}

static void long_poll_ends_at_its_deadline(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 10), 0);
    task *t = added(&s);
    int64_t t0 = time_mono_us();
    task_view v = store_view(&s, t, t0 + 50000);
    assert_int_equal(v.status, TASK_WAIT);
    assert_true(time_mono_us() - t0 >= 50000);
    /* A deadline in the past answers at once. */
    v = store_view(&s, t, 0);
    assert_int_equal(v.status, TASK_WAIT);
    store_destroy(&s);
    task_unref(t);
}

static void close_ends_long_polls(void **state)
{
    store s;
    assert_int_equal(store_init(&s, 10), 0);
    task *t = added(&s);
    assert_false(store_is_closing(&s));
    pthread_t th[2];
    struct poll p[2];
    poll_start(&th[0], &p[0], &s, t, 0);
    poll_start(&th[1], &p[1], &s, t, 1);
    store_close(&s);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_true(p[i].took_us < STORE_TEST_FOREVER_US / 2);
    }
    assert_int_equal(p[0].v.status, TASK_WAIT);
    assert_true(store_is_closing(&s));
    /* Later polls return at once. */
    int64_t t0 = time_mono_us();
    store_view(&s, t, t0 + STORE_TEST_FOREVER_US);
    store_wait_started(&s, t, t0 + STORE_TEST_FOREVER_US);
    assert_true(time_mono_us() - t0 < STORE_TEST_FOREVER_US / 2);
    store_destroy(&s);
    task_unref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookup_by_id),
        cmocka_unit_test(ids_are_random_v4_uuids),
        cmocka_unit_test(remove_undoes_add),
        cmocka_unit_test(lifecycle_and_counts),
        cmocka_unit_test(finished_without_running),
        cmocka_unit_test(stamped_start_is_kept),
        cmocka_unit_test(retention_drops_the_oldest_finished),
        cmocka_unit_test(restore_then_evict_several_at_once),
        cmocka_unit_test(long_poll_woken_by_finish),
        cmocka_unit_test(wait_started_woken_by_start),
        cmocka_unit_test(copy_update_wakes_its_long_poll),
        cmocka_unit_test(drop_forgets_a_running_task),
        cmocka_unit_test(long_poll_ends_at_its_deadline),
        cmocka_unit_test(close_ends_long_polls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
