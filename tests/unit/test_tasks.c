/* Unit tests for the task lifecycle: submission and the undo of every
 * refusal (budget, capacity, shutdown, storage), start and finish, and
 * retention reaching the backend; over the memory backend, a counting
 * backend that stands for any third one, and the journal (in a temporary
 * directory, read back with SQLite). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "journal.h"
#include "rmtree.h"
#include "tasks.h"
#include "timefmt.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_tasks.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rmtree_path(dir);
    return 0;
}

static task *mk(const char *program)
{
    char **args = calloc(2, sizeof *args);
    assert_non_null(args);
    args[0] = strdup("x");
    assert_non_null(args[0]);
    task *t = task_new(TASK_BIN, (unsigned char *)strdup(program), strlen(program), args, 1);
    assert_non_null(t);
    return t;
}

/* Opens tk over memory, with max_waiting places in the queue. */
static void open_memory(tasks *tk, long max_finished, long max_waiting, membudget *mb)
{
    char err[256] = "";
    tasks_config tc = {.max_finished = max_finished, .max_waiting = max_waiting, .budget = mb};
    int rc = tasks_open(tk, &tc, &tasks_memory_ops, NULL, NULL, err, sizeof err);
    if (rc < 0)
        fail_msg("tasks_open: %s", err);
}

/* Opens tk over the journal of dir. */
static void open_journal(tasks *tk, long max_finished, long max_waiting, tasks_restored *n)
{
    char err[256] = "";
    journal_config jc = {.dir = dir};
    journal *j;
    int rc = journal_open(&j, &jc, err, sizeof err);
    if (rc < 0)
        fail_msg("journal_open: %s", err);
    tasks_config tc = {.max_finished = max_finished, .max_waiting = max_waiting};
    rc = tasks_open(tk, &tc, &tasks_journal_ops, j, n, err, sizeof err);
    if (rc < 0)
        fail_msg("tasks_open: %s", err);
}

static long count_rows(const char *where)
{
    char path[128], sql[256];
    snprintf(path, sizeof path, "%s/tasks.db", dir);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM tasks %s", where);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* A worker's part: take the next task, start it, end it with out. Returns
 * the task (the caller unrefs) once its end is visible: a durable backend
 * publishes it only after its commit. */
static task *run_next(tasks *tk, enum task_status final, const char *out)
{
    task *t = tasks_next(tk);
    assert_non_null(t);
    tasks_started(tk, t, NULL);
    assert_int_equal(tasks_view(tk, t, 0).status, TASK_RUNNING);
    t->out = strdup(out);
    t->out_len = t->out_total = strlen(out);
    t->exited = 1;
    t->exit_code = final == TASK_SUCCESS ? 0 : 1;
    tasks_finished(tk, t, final);
    /* Wide: the journal's writer commits within milliseconds. */
    task_view v = tasks_view(tk, t, time_mono_us() + 10 * 1000000);
    assert_int_equal(v.status, final);
    assert_int_equal(v.attempts, 1);
    return t;
}

/* Submitted, then found, run and finished; the counters follow. */
static void lifecycle_once(tasks *tk)
{
    task *t = mk("echo hi");
    size_t held = 0;
    assert_int_equal(tasks_submit(tk, t, &held), 0);
    tasks_counts c = tasks_get_counts(tk);
    assert_int_equal(c.queued, 1);
    assert_int_equal(c.waiting, 1);
    assert_int_equal(c.total, 1);
    task *found = tasks_lookup(tk, t->id_str);
    assert_ptr_equal(found, t);
    task_unref(found);
    assert_int_equal(tasks_view(tk, t, 0).status, TASK_WAIT);

    task *ran = run_next(tk, TASK_SUCCESS, "hi\n");
    assert_ptr_equal(ran, t);
    c = tasks_get_counts(tk);
    assert_int_equal(c.queued, 0);
    assert_int_equal(c.running, 0);
    assert_int_equal(c.finished, 1);
    task_unref(ran);
    task_unref(t);
}

static void memory_lifecycle(void **state)
{
    (void)state;
    tasks tk;
    open_memory(&tk, 10, -1, NULL);
    assert_false(tasks_durable(&tk));
    lifecycle_once(&tk);
    tasks_destroy(&tk);
}

/* A cancel: a queued task ends at once, unrun; a worker's is marked
 * and its armed eventfd written; a final one is refused. */
static void cancel_lifecycle(tasks *tk)
{
    task *queued = mk("echo never"), *taken = mk("echo taken");
    size_t held = 0;
    assert_int_equal(tasks_submit(tk, taken, &held), 0);
    assert_int_equal(tasks_submit(tk, queued, &held), 0);
    task *t = tasks_next(tk);
    assert_ptr_equal(t, taken);

    assert_int_equal(tasks_cancel(tk, queued), 0);
    task_view v = tasks_view(tk, queued, time_mono_us() + 10 * 1000000);
    assert_int_equal(v.status, TASK_ERROR);
    assert_int_equal(v.attempts, 0);
    assert_true(queued->cancelled);
    assert_string_equal(queued->error, "cancelled");
    assert_int_equal(tasks_get_counts(tk).queued, 0);
    assert_int_equal(tasks_cancel(tk, queued), -EALREADY);

    /* taken by a worker, not started: the worker learns it when arming */
    assert_int_equal(tasks_cancel(tk, t), 0);
    int fd = eventfd(0, EFD_NONBLOCK);
    assert_true(fd >= 0);
    assert_int_equal(tasks_arm_cancel(tk, t, fd), 1);
    /* running, armed: a cancel writes the eventfd */
    tasks_started(tk, t, NULL);
    assert_int_equal(tasks_cancel(tk, t), 0);
    uint64_t n = 0;
    assert_int_equal(read(fd, &n, sizeof n), sizeof n);
    assert_true(n >= 1);
    /* disarmed: nothing is written any more */
    assert_int_equal(tasks_arm_cancel(tk, t, -1), 1);
    assert_int_equal(tasks_cancel(tk, t), 0);
    assert_int_equal(read(fd, &n, sizeof n), -1);
    close(fd);
    t->cancelled = 1;
    tasks_finished(tk, t, TASK_ERROR);
    assert_int_equal(tasks_view(tk, t, time_mono_us() + 10 * 1000000).status, TASK_ERROR);
    assert_int_equal(tasks_cancel(tk, t), -EALREADY);
    task_unref(t);
    task_unref(taken);
    task_unref(queued);
}

static void memory_cancel(void **state)
{
    (void)state;
    tasks tk;
    open_memory(&tk, 10, -1, NULL);
    cancel_lifecycle(&tk);
    tasks_destroy(&tk);
}

static void journal_cancel(void **state)
{
    (void)state;
    tasks tk;
    open_journal(&tk, 10, -1, NULL);
    cancel_lifecycle(&tk);
    tasks_destroy(&tk);
    assert_int_equal(count_rows("WHERE cancelled = 1 AND status = 'ERROR'"), 2);
    /* read back: still cancelled, nothing to queue again */
    tasks_restored n;
    open_journal(&tk, 10, -1, &n);
    assert_int_equal(n.finished, 2);
    assert_int_equal(n.waiting, 0);
    tasks_destroy(&tk);
}

/* A refused task leaves no trace: not found, not counted, its bytes given
 * back. total: the tasks accepted before, all still waiting. */
static void assert_undone(tasks *tk, task *t, membudget *mb, long total)
{
    task *found = tasks_lookup(tk, t->id_str);
    assert_null(found);
    assert_int_equal(tasks_get_counts(tk).total, total);
    assert_int_equal(tasks_get_counts(tk).waiting, total);
    task_unref(t);
    if (mb)
        assert_int_equal(membudget_used(mb), 0);
}

static void memory_refusals(void **state)
{
    (void)state;
    membudget mb;
    membudget_init(&mb, 4096);
    tasks tk;
    /* No waiting room and no idle worker: every task would wait. */
    open_memory(&tk, 10, 0, &mb);
    size_t held = 0;
    task *t = mk("echo full");
    assert_int_equal(tasks_submit(&tk, t, &held), -EAGAIN);
    assert_undone(&tk, t, &mb, 0);

    char big[8192];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    t = mk(big);
    held = 0;
    assert_int_equal(tasks_submit(&tk, t, &held), -E2BIG);
    assert_undone(&tk, t, &mb, 0);

    assert_int_equal(tasks_stop_queue(&tk), 0);
    t = mk("echo late");
    held = 0;
    assert_int_equal(tasks_submit(&tk, t, &held), -ESHUTDOWN);
    assert_undone(&tk, t, &mb, 0);
    assert_null(tasks_next(&tk));
    tasks_destroy(&tk);
}

/* A backend that counts its calls and can refuse to record: the seam as
 * a third backend would use it. It publishes like memory. */
typedef struct counting {
    int opened, adds, forgets, starts, finishes, evicts, closed;
    int refuse; /* add returns -refuse */
} counting;

static int cnt_open(void *impl, store *s, long max_finished, tasks_restored *n, char *err,
                    size_t errsz)
{
    (void)s, (void)max_finished, (void)n, (void)err, (void)errsz;
    ((counting *)impl)->opened++;
    return 0;
}

static void cnt_admit(void *impl, queue *q)
{
    (void)impl, (void)q;
}

static int cnt_add(void *impl, task *t)
{
    (void)t;
    counting *c = impl;
    c->adds++;
    return -c->refuse;
}

static void cnt_forget(void *impl, task *t)
{
    (void)t;
    ((counting *)impl)->forgets++;
}

static int cnt_started(void *impl, task *t)
{
    (void)t;
    ((counting *)impl)->starts++;
    return 0;
}

static void cnt_finished(void *impl, store *s, task *t, enum task_status final)
{
    ((counting *)impl)->finishes++;
    store_mark_finished(s, t, final);
}

static void cnt_evict(void *impl, task *t)
{
    (void)t;
    ((counting *)impl)->evicts++;
}

static void cnt_close(void *impl)
{
    ((counting *)impl)->closed++;
}

static const tasks_backend_ops counting_ops = {
    .name = "counting",
    .open = cnt_open,
    .admit_restored = cnt_admit,
    .add = cnt_add,
    .forget = cnt_forget,
    .started = cnt_started,
    .finished = cnt_finished,
    .evict = cnt_evict,
    .close = cnt_close,
};

static void backend_calls(void **state)
{
    (void)state;
    counting cb = {0};
    tasks tk;
    char err[128];
    tasks_config tc = {.max_finished = 1, .max_waiting = 1};
    assert_int_equal(tasks_open(&tk, &tc, &counting_ops, &cb, NULL, err, sizeof err), 0);
    assert_int_equal(cb.opened, 1);

    /* Storage refuses: nothing published, nothing to forget. */
    cb.refuse = EIO;
    size_t held = 0;
    task *t = mk("echo a");
    assert_int_equal(tasks_submit(&tk, t, &held), -EIO);
    assert_undone(&tk, t, NULL, 0);
    assert_int_equal(cb.forgets, 0);
    cb.refuse = 0;

    /* Recorded, then refused by admission: forgotten again. */
    task *first = mk("echo 1");
    assert_int_equal(tasks_submit(&tk, first, &held), 0);
    t = mk("echo 2");
    assert_int_equal(tasks_submit(&tk, t, &held), -EAGAIN);
    assert_undone(&tk, t, NULL, 1);
    assert_int_equal(cb.adds, 3);
    assert_int_equal(cb.forgets, 1);

    /* Three finished with room for one: two evictions reach the backend. */
    task_unref(run_next(&tk, TASK_SUCCESS, "1\n"));
    for (int i = 0; i < 2; i++) {
        t = mk("echo more");
        assert_int_equal(tasks_submit(&tk, t, &held), 0);
        task_unref(run_next(&tk, TASK_ERROR, "no\n"));
        task_unref(t);
    }
    assert_int_equal(cb.starts, 3);
    assert_int_equal(cb.finishes, 3);
    assert_int_equal(cb.evicts, 2);
    assert_int_equal(tasks_get_counts(&tk).evicted, 2);
    task *gone = tasks_lookup(&tk, first->id_str);
    assert_null(gone);
    task_unref(first);
    tasks_destroy(&tk);
    assert_int_equal(cb.closed, 1);
}

static void journal_lifecycle(void **state)
{
    (void)state;
    tasks tk;
    tasks_restored n;
    open_journal(&tk, 10, -1, &n);
    assert_true(tasks_durable(&tk));
    assert_int_equal(n.finished + n.waiting, 0);
    lifecycle_once(&tk);
    task *waiting = mk("echo later");
    size_t held = 0;
    assert_int_equal(tasks_submit(&tk, waiting, &held), 0);
    char id[sizeof waiting->id_str];
    memcpy(id, waiting->id_str, sizeof id);
    task_unref(waiting);
    assert_int_equal(tasks_stop_queue(&tk), 1);
    tasks_close(&tk);
    tasks_destroy(&tk);
    assert_int_equal(count_rows("WHERE status = 'SUCCESS'"), 1);
    assert_int_equal(count_rows("WHERE status = 'WAIT'"), 1);

    /* The next start finds both, and runs the waiting one once admitted. */
    open_journal(&tk, 10, -1, &n);
    assert_int_equal(n.finished, 1);
    assert_int_equal(n.waiting, 1);
    assert_int_equal(tasks_get_counts(&tk).queued, 0);
    tasks_admit_restored(&tk);
    task *t = run_next(&tk, TASK_SUCCESS, "later\n");
    assert_string_equal(t->id_str, id);
    task_unref(t);
    tasks_destroy(&tk);
    assert_int_equal(count_rows("WHERE status = 'SUCCESS'"), 2);
}

static void journal_refusal_forgets(void **state)
{
    (void)state;
    tasks tk;
    open_journal(&tk, 10, 0, NULL);
    task *t = mk("echo full");
    size_t held = 0;
    assert_int_equal(tasks_submit(&tk, t, &held), -EAGAIN);
    assert_undone(&tk, t, NULL, 0);
    tasks_destroy(&tk);
    assert_int_equal(count_rows(""), 0);
}

static void journal_retention_deletes(void **state)
{
    (void)state;
    tasks tk;
    open_journal(&tk, 2, -1, NULL);
    for (int i = 0; i < 5; i++) {
        task *t = mk("echo r");
        size_t held = 0;
        assert_int_equal(tasks_submit(&tk, t, &held), 0);
        task_unref(run_next(&tk, TASK_SUCCESS, "r\n"));
        task_unref(t);
    }
    assert_int_equal(tasks_get_counts(&tk).evicted, 3);
    tasks_destroy(&tk);
    /* Deleted by the journal as retention dropped them, not at the next
     * start. */
    assert_int_equal(count_rows(""), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_lifecycle),
        cmocka_unit_test(memory_refusals),
        cmocka_unit_test(memory_cancel),
        cmocka_unit_test_setup_teardown(journal_cancel, setup, teardown),
        cmocka_unit_test(backend_calls),
        cmocka_unit_test_setup_teardown(journal_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(journal_refusal_forgets, setup, teardown),
        cmocka_unit_test_setup_teardown(journal_retention_deletes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
