/* Unit tests for the journal: what goes in comes back after a reopen
 * (finished, waiting, running per mode), retention deletes rows, and bad
 * data directories fail with a clear error. A "crash" is a close with
 * tasks left unfinished: the rows are then exactly as kill -9 leaves them. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "journal.h"
#include "rmtree.h"

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/test_journal.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    rmtree_path(dir);
    return 0;
}

/* A store, a queue and a journal open on them. */
typedef struct env {
    store s;
    queue q;
    journal *j;
    journal_restored n;
} env;

/* Retention reaches the journal through the store's evict hook, which the
 * task lifecycle installs in the server. */
static void forget_evicted(void *arg, task *t)
{
    journal_forget(arg, t);
}

static void env_open(env *e, int fail_running, long max_finished)
{
    char err[256] = "";
    assert_int_equal(store_init(&e->s, max_finished), 0);
    assert_int_equal(queue_init(&e->q, -1), 0);
    journal_config jc = {.dir = dir, .sync_full = 0, .fail_running = fail_running};
    int rc = journal_open(&e->j, &jc, err, sizeof err);
    if (rc < 0)
        fail_msg("journal_open: %s", err);
    rc = journal_restore(e->j, &e->s, max_finished, &e->n, err, sizeof err);
    if (rc < 0)
        fail_msg("journal_restore: %s", err);
    journal_queue_restored(e->j, &e->q);
    assert_int_equal(journal_start(e->j, &e->s), 0);
    store_set_evict_hook(&e->s, forget_evicted, e->j);
}

static void env_close(env *e)
{
    journal_close(e->j);
    queue_close(&e->q);
    queue_destroy(&e->q);
    store_destroy(&e->s);
}

static task *mk(enum task_type type, const char *file, const char *arg)
{
    char **args = calloc(3, sizeof *args);
    int argc = 0;
    if (arg) {
        args[argc++] = strdup(arg);
        args[argc++] = strdup("");
    }
    task *t = task_new(type, (unsigned char *)strdup(file), strlen(file), args, argc);
    assert_non_null(t);
    return t;
}

/* Accepted as create_task does it: journal first, then store and queue. */
static task *accept_task(env *e, task *t)
{
    assert_int_equal(journal_add(e->j, t), 0);
    store_add(&e->s, t);
    assert_int_equal(queue_push(&e->q, t), 0);
    return t;
}

/* A worker's part: pop, run (pretend), publish through the journal. */
static task *run_next(env *e, enum task_status final, const char *out)
{
    task *t = queue_pop(&e->q);
    assert_non_null(t);
    store_mark_running(&e->s, t, NULL);
    assert_int_equal(journal_started(e->j, t), 0);
    if (out) {
        t->out = strdup(out);
        t->out_len = t->out_total = strlen(out);
        t->err = strdup("warning\n");
        t->err_len = t->err_total = 8;
        t->exited = 1;
        t->exit_code = final == TASK_SUCCESS ? 0 : 3;
        t->error = final == TASK_SUCCESS ? NULL : strdup("exited with code 3");
        t->cpu_us = 1234;
        if (final == TASK_ERROR) {
            t->mem_peak = 5 << 20;
            t->limit = "memory";
            t->compiled = 1;
            t->compile_out = strdup("note: fine\n");
            t->compile_out_len = 11;
            t->compile_exited = 1;
        }
        journal_finished(e->j, t, final);
    }
    return t; /* the queue's reference */
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

static void roundtrip_requeue(void **state)
{
    env e;
    env_open(&e, 0, 100);
    task *done = accept_task(&e, mk(TASK_BIN, "echo hi", "a b"));
    task *running = accept_task(&e, mk(TASK_PYTHON, "print(1)", NULL));
    task *w = mk(TASK_BIN, "#!/bin/sh\nexit 0\n", "x");
    w->limits = (task_limits){.timeout = 0.5, .memory = 1 << 20};
    task *waiting = accept_task(&e, w);
    task *t1 = run_next(&e, TASK_ERROR, "hi\n");
    assert_ptr_equal(t1, done);
    task *t2 = run_next(&e, TASK_SUCCESS, NULL); /* left running: the crash */
    char id_done[37], id_running[37], id_waiting[37];
    strcpy(id_done, done->id_str);
    strcpy(id_running, running->id_str);
    strcpy(id_waiting, waiting->id_str);
    env_close(&e); /* publishes the finish it had queued */
    task_view before = {done->status, done->started_us, done->finished_us, done->attempts};
    int64_t created = done->created_us;
    assert_int_equal(before.status, TASK_ERROR);
    task_unref(t1);
    task_unref(t2);
    task_unref(done);
    task_unref(running);
    task_unref(waiting);

    env_open(&e, 0, 100);
    assert_int_equal(e.n.finished, 1);
    assert_int_equal(e.n.waiting, 2);
    assert_int_equal(e.n.requeued, 1);
    task *t = store_lookup(&e.s, id_done);
    assert_non_null(t);
    task_view v = store_view(&e.s, t, 0);
    assert_int_equal(v.status, TASK_ERROR);
    assert_true(v.started_us == before.started_us && v.finished_us == before.finished_us);
    assert_true(t->created_us == created);
    assert_int_equal(v.attempts, 1);
    assert_string_equal(t->out, "hi\n");
    assert_int_equal(t->out_total, 3);
    assert_string_equal(t->err, "warning\n");
    assert_true(t->exited && t->exit_code == 3 && t->term_signal == 0);
    assert_string_equal(t->error, "exited with code 3");
    assert_int_equal(t->cpu_us, 1234);
    /* The whole result, compile step and limit included. */
    assert_int_equal(t->mem_peak, 5 << 20);
    assert_string_equal(t->limit, "memory");
    assert_true(t->compiled && t->compile_exited && t->compile_exit_code == 0);
    assert_int_equal(t->compile_out_len, 11);
    assert_string_equal(t->compile_out, "note: fine\n");
    task_unref(t);
    /* Queued again oldest first, the running one keeping its attempt. */
    t = queue_pop(&e.q);
    assert_string_equal(t->id_str, id_running);
    assert_int_equal(t->type, TASK_PYTHON);
    assert_int_equal(t->attempts, 1);
    assert_int_equal(t->argc, 0);
    assert_memory_equal(t->file, "print(1)", 8);
    task_unref(t);
    t = queue_pop(&e.q);
    assert_string_equal(t->id_str, id_waiting);
    assert_int_equal(t->status, TASK_WAIT);
    assert_int_equal(t->attempts, 0);
    assert_int_equal(t->file_len, 17);
    assert_memory_equal(t->file, "#!/bin/sh\nexit 0\n", 17);
    assert_int_equal(t->argc, 2);
    assert_string_equal(t->args[0], "x");
    assert_string_equal(t->args[1], "");
    assert_null(t->args[2]);
    /* Its own limits, the others the server's. */
    assert_true(t->limits.timeout == 0.5);
    assert_int_equal(t->limits.memory, 1 << 20);
    assert_int_equal(t->limits.cpu + t->limits.procs + t->limits.output + t->limits.disk, 0);
    task_unref(t);
    env_close(&e);
    /* The finished task's program is no longer kept. */
    assert_int_equal(count_rows("WHERE status = 'ERROR' AND file IS NULL"), 1);
    assert_int_equal(count_rows("WHERE limits IS NOT NULL"), 1);
}

static void running_fails_in_fail_mode(void **state)
{
    env e;
    env_open(&e, 1, 100);
    task *t = accept_task(&e, mk(TASK_BIN, "sleep 100", NULL));
    task *popped = run_next(&e, TASK_SUCCESS, NULL);
    char id[37];
    strcpy(id, t->id_str);
    env_close(&e);
    task_unref(popped);
    task_unref(t);

    env_open(&e, 1, 100);
    assert_int_equal(e.n.interrupted, 1);
    assert_int_equal(e.n.waiting, 0);
    t = store_lookup(&e.s, id);
    assert_non_null(t);
    task_view v = store_view(&e.s, t, 0);
    assert_int_equal(v.status, TASK_ERROR);
    assert_int_equal(v.attempts, 1);
    assert_true(v.finished_us >= v.started_us && v.started_us > 0);
    assert_non_null(strstr(t->error, "interrupted"));
    assert_false(t->exited);
    assert_int_equal(queue_len(&e.q), 0);
    task_unref(t);
    env_close(&e);
}

static void forgotten_task_is_gone(void **state)
{
    env e;
    env_open(&e, 0, 100);
    task *t = mk(TASK_BIN, "true", NULL);
    assert_int_equal(journal_add(e.j, t), 0);
    journal_forget(e.j, t);
    task_unref(t);
    env_close(&e);
    env_open(&e, 0, 100);
    assert_int_equal(e.n.waiting + e.n.finished, 0);
    env_close(&e);
}

static void retention_deletes_rows(void **state)
{
    env e;
    env_open(&e, 0, 3);
    for (int i = 0; i < 10; i++) {
        accept_task(&e, mk(TASK_BIN, "true", NULL));
        task *t = run_next(&e, TASK_SUCCESS, "out\n");
        task_unref(t);
        task_unref(t); /* accept_task's own reference */
    }
    env_close(&e);
    assert_int_equal(count_rows(""), 3);

    /* A smaller limit at the next start drops the oldest rows. */
    env_open(&e, 0, 2);
    assert_int_equal(e.n.finished, 2);
    assert_int_equal(e.n.dropped, 1);
    env_close(&e);
    assert_int_equal(count_rows(""), 2);
}

static void expect_open_error(const char *path, int want_rc, const char *want_text)
{
    journal *j = NULL;
    char err[512] = "";
    journal_config jc = {.dir = path};
    int rc = journal_open(&j, &jc, err, sizeof err);
    assert_int_equal(rc, want_rc);
    if (!strstr(err, want_text))
        fail_msg("error '%s' does not say '%s'", err, want_text);
    assert_null(j);
}

static void bad_data_dirs(void **state)
{
    char path[128];
    /* A regular file where the directory should be. */
    snprintf(path, sizeof path, "%s/plain", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    expect_open_error(path, -ENOTDIR, "not a directory");
    /* A parent that does not exist. */
    snprintf(path, sizeof path, "%s/missing/data", dir);
    expect_open_error(path, -ENOENT, "cannot create data directory");
    /* Garbage in place of the database. */
    snprintf(path, sizeof path, "%s/garbage", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    char file[160];
    snprintf(file, sizeof file, "%s/tasks.db", path);
    fd = open(file, O_WRONLY | O_CREAT, 0600);
    char junk[4096];
    memset(junk, 'j', sizeof junk);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    expect_open_error(path, -EINVAL, "not a database");
    /* Some other program's SQLite database. */
    snprintf(path, sizeof path, "%s/other", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(file, sizeof file, "%s/tasks.db", path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(file, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE x(a)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_open_error(path, -EINVAL, "not a tasksolver journal");
}

static void second_opener_is_refused(void **state)
{
    env e;
    env_open(&e, 0, 100);
    expect_open_error(dir, -EBUSY, "in use by another process");
    env_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(roundtrip_requeue, setup, teardown),
        cmocka_unit_test_setup_teardown(running_fails_in_fail_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(forgotten_task_is_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_deletes_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_data_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(second_opener_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
