/* Unit tests for the job table: which operations become ready when, how a
 * job finishes or fails, retention and the newest-first listing. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jobs.h"

static int64_t submit(jobs *j, const char *text, int *finished)
{
    expr_plan *plan;
    assert_int_equal(expr_parse(text, strlen(text), &plan, NULL), 0);
    int64_t id = 0;
    int fin = -1;
    assert_int_equal(jobs_submit(j, text, strlen(text), plan, &id, &fin), 0);
    if (finished)
        *finished = fin;
    return id;
}

/* Returns the job's JSON document, parsed (caller deletes). */
static cJSON *job_doc(jobs *j, int64_t id)
{
    buf b = BUF_INIT;
    assert_int_equal(jobs_json(j, id, &b), 0);
    cJSON *doc = cJSON_Parse(b.data);
    assert_non_null(doc);
    buf_destroy(&b);
    return doc;
}

static void take(jobs *j, jobs_op *op, enum num_op want, int64_t a, int64_t b)
{
    assert_int_equal(jobs_take_ready(j, op), 1);
    assert_int_equal(op->op, want);
    assert_true(op->a.is_int && op->b.is_int);
    assert_int_equal(op->a.i, a);
    assert_int_equal(op->b.i, b);
}

static void order_of_operations(void **state)
{
    jobs j;
    assert_int_equal(jobs_init(&j, 100), 0);
    int fin;
    int64_t id = submit(&j, "1+2*3", &fin);
    assert_int_equal(id, 1);
    assert_int_equal(fin, 0);
    jobs_op op;
    take(&j, &op, NUM_MUL, 2, 3);
    assert_int_equal(jobs_take_ready(&j, &op), 0); /* 1 + _ waits for 2*3 */
    jobs_op_done(&j, &op, num_int(6));
    take(&j, &op, NUM_SUM, 1, 6);
    jobs_op_done(&j, &op, num_int(7));
    cJSON *doc = job_doc(&j, id);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "finished")));
    assert_int_equal(cJSON_GetObjectItem(doc, "answer")->valueint, 7);
    assert_int_equal(cJSON_GetObjectItem(doc, "operations_done")->valueint, 2);
    assert_null(cJSON_GetObjectItem(doc, "error"));
    cJSON_Delete(doc);
    assert_int_equal(jobs_unfinished(&j), 0);
    jobs_destroy(&j);
}

static void independent_operations_are_ready_together(void **state)
{
    jobs j;
    assert_int_equal(jobs_init(&j, 100), 0);
    submit(&j, "((1+2)*(3+4))", NULL);
    jobs_op x, y, z;
    take(&j, &x, NUM_SUM, 1, 2);
    take(&j, &y, NUM_SUM, 3, 4);
    assert_int_equal(jobs_take_ready(&j, &z), 0);
    jobs_op_done(&j, &y, num_int(7)); /* out of order is fine */
    assert_int_equal(jobs_take_ready(&j, &z), 0);
    jobs_op_done(&j, &x, num_int(3));
    take(&j, &z, NUM_MUL, 3, 7);
    jobs_destroy(&j); /* with an operation out: nothing leaks */
}

static void literal_finishes_at_once(void **state)
{
    jobs j;
    assert_int_equal(jobs_init(&j, 100), 0);
    int fin;
    int64_t id = submit(&j, " -5 ", &fin);
    assert_int_equal(fin, 1);
    cJSON *doc = job_doc(&j, id);
    assert_int_equal(cJSON_GetObjectItem(doc, "answer")->valueint, -5);
    cJSON_Delete(doc);
    jobs_op op;
    assert_int_equal(jobs_take_ready(&j, &op), 0);
    jobs_destroy(&j);
}

static void failure_finishes_and_later_results_are_ignored(void **state)
{
    jobs j;
    assert_int_equal(jobs_init(&j, 100), 0);
    int64_t id = submit(&j, "1/0 + (2+3)", NULL);
    int64_t other = submit(&j, "4*5", NULL);
    jobs_op div, sum, mul;
    take(&j, &div, NUM_DIV, 1, 0);
    jobs_op_failed(&j, &div, "division by zero");
    /* 2+3 of the failed job is skipped: the next ready one is 4*5. */
    take(&j, &mul, NUM_MUL, 4, 5);
    assert_int_equal(jobs_take_ready(&j, &sum), 0);
    jobs_op_done(&j, &div, num_int(1)); /* late: ignored */
    cJSON *doc = job_doc(&j, id);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "finished")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(doc, "answer")));
    assert_string_equal(cJSON_GetObjectItem(doc, "error")->valuestring, "division by zero");
    cJSON_Delete(doc);
    jobs_op_done(&j, &mul, num_int(20));
    doc = job_doc(&j, other);
    assert_int_equal(cJSON_GetObjectItem(doc, "answer")->valueint, 20);
    cJSON_Delete(doc);
    jobs_destroy(&j);
}

static void requeue_goes_first_and_keeps_attempts(void **state)
{
    jobs j;
    assert_int_equal(jobs_init(&j, 100), 0);
    submit(&j, "1+1", NULL);
    submit(&j, "2+2", NULL);
    jobs_op a, b;
    take(&j, &a, NUM_SUM, 1, 1);
    a.attempts = 3;
    assert_int_equal(jobs_requeue(&j, &a), 0);
    take(&j, &b, NUM_SUM, 1, 1);
    assert_int_equal(b.attempts, 3);
    take(&j, &b, NUM_SUM, 2, 2);
    jobs_destroy(&j);
}

static void big_integers_stay_exact(void **state)
{
    jobs j;
    assert_int_equal(jobs_init(&j, 100), 0);
    int64_t id = submit(&j, "9007199254740993+0", NULL);
    jobs_op op;
    assert_int_equal(jobs_take_ready(&j, &op), 1);
    assert_int_equal(op.a.i, INT64_C(9007199254740993));
    jobs_op_done(&j, &op, op.a);
    buf b = BUF_INIT;
    assert_int_equal(jobs_json(&j, id, &b), 0);
    assert_non_null(strstr(b.data, "\"answer\":9007199254740993,"));
    buf_destroy(&b);
    jobs_destroy(&j);
}

static void retention_drops_oldest_finished_only(void **state)
{
    jobs j;
    assert_int_equal(jobs_init(&j, 3), 0);
    int64_t slow = submit(&j, "1+1", NULL); /* stays unfinished */
    for (int i = 0; i < 5; i++)
        submit(&j, "7", NULL);
    assert_int_equal(jobs_kept(&j), 3);
    buf b = BUF_INIT;
    assert_int_equal(jobs_json(&j, slow, &b), 0);
    assert_int_equal(jobs_json(&j, 2, &b), -ENOENT);
    assert_int_equal(jobs_json(&j, 4, &b), -ENOENT);
    assert_int_equal(jobs_json(&j, 5, &b), 0);
    assert_int_equal(jobs_json(&j, 99, &b), -ENOENT);
    buf_destroy(&b);
    jobs_op op;
    assert_int_equal(jobs_take_ready(&j, &op), 1);
    jobs_op_done(&j, &op, num_int(2));
    /* Eviction follows the order of finishing: job 5 finished before 1. */
    submit(&j, "8", NULL);
    b = (buf)BUF_INIT;
    assert_int_equal(jobs_json(&j, 5, &b), -ENOENT);
    assert_int_equal(jobs_json(&j, slow, &b), 0);
    buf_destroy(&b);
    jobs_destroy(&j);
}

static void listing_is_newest_first_and_bounded(void **state)
{
    jobs j;
    assert_int_equal(jobs_init(&j, 1000), 0);
    for (int i = 0; i < 150; i++)
        submit(&j, i % 2 ? "1+1" : "3", NULL);
    buf b = BUF_INIT;
    assert_int_equal(jobs_list_json(&j, 100, &b), 0);
    cJSON *list = cJSON_Parse(b.data);
    assert_int_equal(cJSON_GetArraySize(list), 100);
    for (int i = 0; i < 100; i++) {
        cJSON *jb = cJSON_GetArrayItem(list, i);
        assert_int_equal(cJSON_GetObjectItem(jb, "job_id")->valueint, 150 - i);
        assert_true(cJSON_IsBool(cJSON_GetObjectItem(jb, "finished")));
    }
    cJSON_Delete(list);
    buf_destroy(&b);
    jobs_destroy(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_of_operations),
        cmocka_unit_test(independent_operations_are_ready_together),
        cmocka_unit_test(literal_finishes_at_once),
        cmocka_unit_test(failure_finishes_and_later_results_are_ignored),
        cmocka_unit_test(requeue_goes_first_and_keeps_attempts),
        cmocka_unit_test(big_integers_stay_exact),
        cmocka_unit_test(retention_drops_oldest_finished_only),
        cmocka_unit_test(listing_is_newest_first_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
