/* Unit tests for the task queue: FIFO order, admission, close. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"

static task *mk(void)
{
    task *t = task_new(TASK_BIN, NULL, 0, calloc(1, sizeof(char *)), 0);
    assert_non_null(t);
    return t;
}

static void fifo_order(void **state)
{
    queue q;
    assert_int_equal(queue_init(&q, -1), 0);
    task *a = mk(), *b = mk(), *c = mk();
    assert_int_equal(queue_push(&q, a), 0);
    assert_int_equal(queue_push(&q, b), 0);
    assert_int_equal(queue_push(&q, c), 0);
    assert_int_equal(queue_len(&q), 3);
    task *x = queue_pop(&q);
    assert_ptr_equal(x, a);
    task_unref(x);
    x = queue_pop(&q);
    assert_ptr_equal(x, b);
    task_unref(x);
    assert_int_equal(queue_len(&q), 1);
    queue_destroy(&q); /* drops c's queue reference */
    task_unref(a);
    task_unref(b);
    task_unref(c);
}

static void bounded_waiting_room(void **state)
{
    queue q;
    assert_int_equal(queue_init(&q, 2), 0);
    task *t[3] = {mk(), mk(), mk()};
    assert_int_equal(queue_push(&q, t[0]), 0);
    assert_int_equal(queue_push(&q, t[1]), 0);
    assert_int_equal(queue_push(&q, t[2]), -EAGAIN);
    assert_int_equal(queue_len(&q), 2);
    task *x = queue_pop(&q);
    task_unref(x);
    assert_int_equal(queue_push(&q, t[2]), 0);
    queue_destroy(&q);
    for (int i = 0; i < 3; i++)
        task_unref(t[i]);
}

static void remove_from_any_place(void **state)
{
    (void)state;
    queue q;
    assert_int_equal(queue_init(&q, -1), 0);
    task *t[4] = {mk(), mk(), mk(), mk()};
    for (int i = 0; i < 3; i++)
        assert_int_equal(queue_push(&q, t[i]), 0);
    /* the middle, the tail, then one never queued */
    assert_int_equal(queue_remove(&q, t[1]), 1);
    task_unref(t[1]);
    assert_int_equal(queue_remove(&q, t[2]), 1);
    task_unref(t[2]);
    assert_int_equal(queue_remove(&q, t[2]), 0);
    assert_int_equal(queue_remove(&q, t[3]), 0);
    assert_int_equal(queue_len(&q), 1);
    /* the tail moved back: a push still lands after t[0] */
    assert_int_equal(queue_push(&q, t[3]), 0);
    task *x = queue_pop(&q);
    assert_ptr_equal(x, t[0]);
    task_unref(x);
    assert_int_equal(queue_remove(&q, t[0]), 0);
    x = queue_pop(&q);
    assert_ptr_equal(x, t[3]);
    task_unref(x);
    assert_int_equal(queue_len(&q), 0);
    queue_destroy(&q);
    for (int i = 0; i < 4; i++)
        task_unref(t[i]);
}

struct popper {
    queue *q;
    task *got;
};

static void *pop_thread(void *arg)
{
    struct popper *p = arg;
    p->got = queue_pop(p->q);
    return NULL;
}

/* With no waiting room, a task is accepted only if an idle worker takes it. */
static void zero_waiting_room_needs_an_idle_worker(void **state)
{
    queue q;
    assert_int_equal(queue_init(&q, 0), 0);
    task *a = mk(), *b = mk();
    assert_int_equal(queue_push(&q, a), -EAGAIN);
    struct popper p = {&q, NULL};
    pthread_t th;
    pthread_create(&th, NULL, pop_thread, &p);
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&q.lock);
        long idle = q.idle;
        pthread_mutex_unlock(&q.lock);
        if (idle == 1)
            break;
        usleep(1000);
    }
    assert_int_equal(queue_push(&q, a), 0);
    /* Handed to the idle worker: it is not waiting, even before it is taken. */
    assert_int_equal(queue_len(&q), 0);
    /* The idle worker is spoken for: the next one must be refused even
     * before the worker has woken up. */
    assert_int_equal(queue_push(&q, b), -EAGAIN);
    pthread_join(th, NULL);
    assert_ptr_equal(p.got, a);
    task_unref(p.got);
    queue_destroy(&q);
    task_unref(a);
    task_unref(b);
}

static void close_wakes_poppers_and_refuses_pushes(void **state)
{
    queue q;
    assert_int_equal(queue_init(&q, -1), 0);
    struct popper p = {&q, (task *)1};
    pthread_t th;
    pthread_create(&th, NULL, pop_thread, &p);
    usleep(20000);
    assert_int_equal(queue_close(&q), 0);
    pthread_join(th, NULL);
    assert_null(p.got);
    task *a = mk();
    assert_int_equal(queue_push(&q, a), -ESHUTDOWN);
    queue_destroy(&q);
    task_unref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_order),
        cmocka_unit_test(remove_from_any_place),
        cmocka_unit_test(bounded_waiting_room),
        cmocka_unit_test(zero_waiting_room_needs_an_idle_worker),
        cmocka_unit_test(close_wakes_poppers_and_refuses_pushes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
