/* Unit tests for the job store (SQLite) and the job table over it: what
 * is recorded comes back after a close, the id counter only grows, a
 * restored table finishes what was left and applies retention, and files
 * that are not a job store are refused. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "jobs.h"
#include "jobstore_sqlite.h"
#include "rmtree.h"

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/test_jobstore.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    rmtree_path(dir);
    return 0;
}

static void open_store(jobstore *st)
{
    char err[512] = "";
    jobstore_sqlite_config cfg = {.dir = dir, .sync_full = 0};
    int rc = jobstore_sqlite_open(st, &cfg, err, sizeof err);
    if (rc < 0)
        fail_msg("open: %s", err);
}

/* The rows load hands over, copied. */
typedef struct loaded {
    int n;
    int64_t id[16];
    char text[16][32];
    int finished[16];
    char answer[16][32];
    char error[16][64];
    size_t ops_done[16];
} loaded;

static int collect(void *arg, const jobstore_row *row)
{
    loaded *l = arg;
    assert_true(l->n < 16);
    int k = l->n++;
    l->id[k] = row->id;
    snprintf(l->text[k], sizeof l->text[k], "%.*s", (int)row->text_len, row->text);
    l->finished[k] = row->finished;
    snprintf(l->answer[k], sizeof l->answer[k], "%s", row->answer ? row->answer : "");
    snprintf(l->error[k], sizeof l->error[k], "%s", row->error ? row->error : "");
    l->ops_done[k] = row->ops_done;
    return 0;
}

static int64_t load_store(jobstore *st, loaded *l)
{
    char err[512] = "";
    int64_t next = 0;
    memset(l, 0, sizeof *l);
    int rc = st->ops->load(st->impl, collect, l, &next, err, sizeof err);
    if (rc < 0)
        fail_msg("load: %s", err);
    return next;
}

static void records_come_back_after_close(void **state)
{
    jobstore st;
    open_store(&st);
    loaded l;
    assert_int_equal(load_store(&st, &l), 1);
    assert_int_equal(l.n, 0);
    assert_int_equal(st.ops->record(st.impl, 1, "1+2", 3, 1000), 0);
    assert_int_equal(st.ops->record(st.impl, 2, "4/0", 3, 2000), 0);
    assert_int_equal(st.ops->record(st.impl, 3, "5*5", 3, 3000), 0);
    st.ops->finish(
        st.impl,
        &(jobstore_row){.id = 1, .finished = 1, .finished_us = 1500, .answer = "3", .ops_done = 1});
    st.ops->finish(st.impl, &(jobstore_row){.id = 2,
                                            .finished = 1,
                                            .finished_us = 2500,
                                            .error = "division by zero: 4 / 0 at offset 1"});
    st.ops->close(st.impl);

    open_store(&st);
    assert_int_equal(load_store(&st, &l), 4);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.id[0], 1);
    assert_string_equal(l.text[0], "1+2");
    assert_true(l.finished[0]);
    assert_string_equal(l.answer[0], "3");
    assert_int_equal(l.ops_done[0], 1);
    assert_true(l.finished[1]);
    assert_string_equal(l.answer[1], "");
    assert_string_equal(l.error[1], "division by zero: 4 / 0 at offset 1");
    assert_false(l.finished[2]);
    assert_string_equal(l.text[2], "5*5");
    st.ops->close(st.impl);
}

/* Deleting rows, even the newest, never lowers the counter. */
static void counter_survives_forgotten_rows(void **state)
{
    jobstore st;
    open_store(&st);
    loaded l;
    load_store(&st, &l);
    for (int64_t id = 1; id <= 5; id++)
        assert_int_equal(st.ops->record(st.impl, id, "7", 1, id), 0);
    for (int64_t id = 3; id <= 5; id++)
        st.ops->forget(st.impl, id);
    st.ops->close(st.impl);

    open_store(&st);
    assert_int_equal(load_store(&st, &l), 6);
    assert_int_equal(l.n, 2);
    /* A record that fails (the id exists) is refused whole. */
    assert_true(st.ops->record(st.impl, 2, "8", 1, 9) < 0);
    st.ops->close(st.impl);
}

static cJSON *job_doc(jobs *j, int64_t id)
{
    buf b = BUF_INIT;
    assert_int_equal(jobs_json(j, id, &b), 0);
    cJSON *doc = cJSON_Parse(b.data);
    assert_non_null(doc);
    buf_destroy(&b);
    return doc;
}

static int64_t submit(jobs *j, const char *text)
{
    expr_plan *plan;
    assert_int_equal(expr_parse(text, strlen(text), &plan, NULL), 0);
    int64_t id = 0;
    int fin;
    assert_int_equal(jobs_submit(j, text, strlen(text), plan, &id, &fin), 0);
    return id;
}

/* A table over a store: submitted, computed in part, closed as by a
 * crash (nothing flushed by the table), opened again. */
static void restored_table_finishes_what_was_left(void **state)
{
    jobstore st;
    jobs j;
    jobs_restored n;
    char err[512] = "";
    open_store(&st);
    assert_int_equal(jobs_init(&j, 100), 0);
    assert_int_equal(jobs_restore(&j, &st, &n, err, sizeof err), 0);
    assert_int_equal(submit(&j, "(1+2)*(3+4)"), 1);
    assert_int_equal(submit(&j, "6/0"), 2);
    assert_int_equal(submit(&j, "42"), 3);
    jobs_op op;
    assert_int_equal(jobs_take_ready(&j, &op), 1); /* 1+2 */
    jobs_op_done(&j, &op, num_int(3));
    assert_int_equal(jobs_take_ready(&j, &op), 1); /* 3+4 */
    assert_int_equal(jobs_take_ready(&j, &op), 1); /* 6/0 */
    jobs_op_failed(&j, &op, "division by zero: 6 / 0 at offset 1");
    jobs_destroy(&j);
    st.ops->close(st.impl);

    open_store(&st);
    assert_int_equal(jobs_init(&j, 100), 0);
    assert_int_equal(jobs_restore(&j, &st, &n, err, sizeof err), 0);
    assert_int_equal(n.finished, 2);
    assert_int_equal(n.unfinished, 1);
    assert_int_equal(n.next_id, 4);
    cJSON *d = job_doc(&j, 2);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "finished")));
    assert_string_equal(cJSON_GetObjectItem(d, "error")->valuestring,
                        "division by zero: 6 / 0 at offset 1");
    cJSON_Delete(d);
    d = job_doc(&j, 3);
    assert_int_equal(cJSON_GetObjectItem(d, "answer")->valueint, 42);
    cJSON_Delete(d);
    /* Job 1 starts over: both additions are ready again. */
    assert_int_equal(jobs_take_ready(&j, &op), 1);
    assert_int_equal(op.job_id, 1);
    jobs_op_done(&j, &op, num_int(3));
    assert_int_equal(jobs_take_ready(&j, &op), 1);
    jobs_op_done(&j, &op, num_int(7));
    assert_int_equal(jobs_take_ready(&j, &op), 1);
    assert_int_equal(op.op, NUM_MUL);
    jobs_op_done(&j, &op, num_int(21));
    assert_int_equal(submit(&j, "1"), 4);
    jobs_destroy(&j);
    st.ops->close(st.impl);

    open_store(&st);
    assert_int_equal(jobs_init(&j, 100), 0);
    assert_int_equal(jobs_restore(&j, &st, &n, err, sizeof err), 0);
    assert_int_equal(n.finished, 4);
    assert_int_equal(n.unfinished, 0);
    d = job_doc(&j, 1);
    assert_int_equal(cJSON_GetObjectItem(d, "answer")->valueint, 21);
    assert_int_equal(cJSON_GetObjectItem(d, "operations_done")->valueint, 3);
    cJSON_Delete(d);
    jobs_destroy(&j);
    st.ops->close(st.impl);
}

/* A smaller bound at start-up drops the oldest finished jobs and their
 * rows; the unfinished one stays. */
static void retention_applies_to_rows(void **state)
{
    jobstore st;
    jobs j;
    jobs_restored n;
    char err[512] = "";
    open_store(&st);
    assert_int_equal(jobs_init(&j, 100), 0);
    assert_int_equal(jobs_restore(&j, &st, &n, err, sizeof err), 0);
    submit(&j, "1+1"); /* never computed */
    for (int i = 0; i < 5; i++)
        submit(&j, "9");
    jobs_destroy(&j);
    st.ops->close(st.impl);

    open_store(&st);
    assert_int_equal(jobs_init(&j, 3), 0);
    assert_int_equal(jobs_restore(&j, &st, &n, err, sizeof err), 0);
    assert_int_equal(n.dropped, 3);
    assert_int_equal(n.finished, 2);
    assert_int_equal(jobs_kept(&j), 3);
    buf b = BUF_INIT;
    assert_int_equal(jobs_json(&j, 2, &b), -ENOENT);
    assert_int_equal(jobs_json(&j, 1, &b), 0);
    assert_int_equal(jobs_json(&j, 6, &b), 0);
    buf_destroy(&b);
    jobs_destroy(&j);
    st.ops->close(st.impl);

    open_store(&st);
    loaded l;
    assert_int_equal(load_store(&st, &l), 7);
    assert_int_equal(l.n, 3);
    st.ops->close(st.impl);
}

static void refuses_other_files_and_a_second_user(void **state)
{
    jobstore st, second;
    char err[512] = "";
    open_store(&st);
    jobstore_sqlite_config cfg = {.dir = dir};
    assert_int_equal(jobstore_sqlite_open(&second, &cfg, err, sizeof err), -EBUSY);
    assert_non_null(strstr(err, "in use"));
    st.ops->close(st.impl);

    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, JOBSTORE_SQLITE_FILE);
    unlink(path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(jobstore_sqlite_open(&second, &cfg, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not a tasksolver job store"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(records_come_back_after_close, setup, teardown),
        cmocka_unit_test_setup_teardown(counter_survives_forgotten_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(restored_table_finishes_what_was_left, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_applies_to_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_other_files_and_a_second_user, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
