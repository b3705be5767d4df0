/* Unit tests for a task's tests: the `tests` parser (request_tests), the
 * output comparison, the rendered verdicts and the journal's text form
 * (testset). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "request.h"
#include "request_tests.h"
#include "task.h"
#include "testset.h"

static int parse(const char *body, create_req *r, char *err)
{
    return request_parse_create(body, strlen(body), NULL, r, err, REQUEST_ERR_MAX);
}

static int matches(const char *exp, const char *out)
{
    return testset_output_matches(exp, strlen(exp), out, strlen(out));
}

static void comparison_drops_trailing_whitespace_only(void **state)
{
    (void)state;
    assert_true(matches("4", "4\n"));
    assert_true(matches("4\n", "4"));
    assert_true(matches("a \nb\t\n\n\n", "a\nb"));
    assert_true(matches("a\r\nb\r\n", "a\nb"));
    assert_true(matches("", ""));
    assert_true(matches("", "\n \n\t\n"));
    assert_true(matches("x\n\n", "x \n \n"));
    assert_false(matches("a\n\nb", "a\nb"));
    assert_false(matches(" a", "a"));
    assert_false(matches("a b", "a  b"));
    assert_false(matches("a", ""));
    assert_false(matches("", "a"));
    assert_false(matches("ab", "a"));
    assert_false(matches("a\nb", "a\nbc"));
    assert_false(matches("a\nb", "a"));
    /* bytes past a NUL still count */
    assert_false(testset_output_matches("a\0b", 3, "a\0c", 3));
    assert_true(testset_output_matches("a\0b", 3, "a\0b \n", 5));
}

static void no_tests_is_null(void **state)
{
    (void)state;
    create_req r;
    char err[REQUEST_ERR_MAX];
    assert_int_equal(parse("{\"type\":\"python\",\"file\":\"pass\"}", &r, err), 0);
    assert_null(r.tests);
    create_req_destroy(&r);
    assert_int_equal(parse("{\"type\":\"python\",\"file\":\"pass\",\"tests\":null}", &r, err), 0);
    assert_null(r.tests);
    create_req_destroy(&r);
}

static void tests_are_parsed(void **state)
{
    (void)state;
    create_req r;
    char err[REQUEST_ERR_MAX];
    assert_int_equal(parse("{\"type\":\"python\",\"file\":\"pass\",\"stop_on_failure\":true,"
                           "\"tests\":[{\"stdin\":\"1\\n\",\"expected_output\":\"2\"},"
                           "{\"args\":[\"a\",\"b\"]},{\"args\":\"x 'y z'\",\"stdin\":\"\"},{}]}",
                           &r, err),
                     0);
    testset *ts = r.tests;
    assert_non_null(ts);
    assert_int_equal(ts->n, 4);
    assert_true(ts->stop_on_failure);
    assert_int_equal(ts->cases[0].input_len, 2);
    assert_memory_equal(ts->cases[0].input, "1\n", 2);
    assert_string_equal(ts->cases[0].expected, "2");
    assert_null(ts->cases[0].args);
    assert_int_equal(ts->cases[1].argc, 2);
    assert_string_equal(ts->cases[1].args[1], "b");
    assert_null(ts->cases[1].expected);
    assert_int_equal(ts->cases[2].argc, 2);
    assert_string_equal(ts->cases[2].args[1], "y z");
    /* an empty stdin is empty, not the task's */
    assert_non_null(ts->cases[2].input);
    assert_int_equal(ts->cases[2].input_len, 0);
    assert_null(ts->cases[3].input);
    assert_true(testset_bytes(ts) > 4 * sizeof(testset_case));
    create_req_destroy(&r);
}

static void bad_tests_name_the_entry(void **state)
{
    (void)state;
    static const struct {
        const char *tests, *words;
    } cases[] = {
        {"\"tests\":[{},{},{},{\"args\":[1]}]", "tests[3].args element 0 must be a string"},
        {"\"tests\":[{\"stdin\":3}]", "tests[0].stdin must be a string"},
        {"\"tests\":[{},{\"expected_output\":{}}]", "tests[1].expected_output must be"},
        {"\"tests\":[{},7]", "tests[1] must be an object"},
        {"\"tests\":[{\"stdn\":\"1\"}]", "tests[0] has an unknown key 'stdn'"},
        {"\"tests\":[{\"args\":\"'open\"}]", "tests[0].args cannot be split"},
        {"\"tests\":[{\"stdin\":\"a\",\"stdin\":\"b\"}]", "tests[0].stdin is given twice"},
        {"\"tests\":{}", "field 'tests' must be a list"},
        {"\"tests\":[]", "field 'tests' is empty"},
        {"\"tests\":[{}],\"stop_on_failure\":1", "field 'stop_on_failure' must be"},
        {"\"stop_on_failure\":false", "field 'stop_on_failure' needs a 'tests' list"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char body[256], err[REQUEST_ERR_MAX];
        snprintf(body, sizeof body, "{\"type\":\"python\",\"file\":\"pass\",%s}", cases[i].tests);
        create_req r;
        assert_int_equal(parse(body, &r, err), -EINVAL);
        if (!strstr(err, cases[i].words))
            fail_msg("%s: got '%s', want '%s'", cases[i].tests, err, cases[i].words);
        assert_null(r.tests);
        assert_null(r.file);
    }
}

static void cap_is_checked(void **state)
{
    (void)state;
    testset *ts = testset_new(101);
    char err[REQUEST_ERR_MAX];
    assert_int_equal(request_tests_check_cap(ts, 101, err, sizeof err), 0);
    assert_int_equal(request_tests_check_cap(ts, 100, err, sizeof err), -E2BIG);
    assert_string_equal(err, "tests has 101 entries; this server's cap is 100 (--max-tests)");
    assert_int_equal(request_tests_check_cap(NULL, 1, err, sizeof err), 0);
    testset_free(ts);
}

static void journal_text_round_trips(void **state)
{
    (void)state;
    create_req r;
    char err[REQUEST_ERR_MAX];
    assert_int_equal(parse("{\"type\":\"bin\",\"file\":\"ZWNobyBoaQ==\",\"stop_on_failure\":true,"
                           "\"tests\":[{\"stdin\":\"caf\\u00e9\\n\\\"q\\\"\","
                           "\"expected_output\":\"x\"},{\"args\":[]},{\"stdin\":\"\"},{}]}",
                           &r, err),
                     0);
    buf b = BUF_INIT;
    assert_int_equal(testset_write_cases(&b, r.tests), 0);
    testset *back;
    assert_int_equal(request_tests_parse_text(b.data, b.len, &back, err, sizeof err), 0);
    assert_int_equal(back->n, 4);
    assert_true(back->stop_on_failure);
    assert_int_equal(back->cases[0].input_len, r.tests->cases[0].input_len);
    assert_memory_equal(back->cases[0].input, r.tests->cases[0].input, back->cases[0].input_len);
    assert_string_equal(back->cases[0].expected, "x");
    assert_non_null(back->cases[1].args);
    assert_int_equal(back->cases[1].argc, 0);
    assert_non_null(back->cases[2].input);
    assert_null(back->cases[3].input);
    assert_null(back->cases[3].args);
    testset_free(back);
    buf_destroy(&b);
    create_req_destroy(&r);
}

static void verdicts_render(void **state)
{
    (void)state;
    testset *ts = testset_new(3);
    ts->cases[0].expected = strdup("ok");
    ts->cases[0].expected_len = 2;
    ts->stop_on_failure = 1;
    testset_outcome o = {.out = "ok \n", .out_len = 4, .exited = 1, .memory_peak = -1};
    assert_int_equal(testset_add_result(ts, 0, &o), 0);
    o.exit_code = 2; /* no expected output, but a failed run */
    assert_int_equal(testset_add_result(ts, 1, &o), 1);
    assert_int_equal(testset_add_skipped(ts, 2), 0);
    assert_int_equal(testset_end(ts), 0);
    buf doc = BUF_INIT;
    buf_putc(&doc, '{');
    buf_append(&doc, ts->rendered.data + 1, ts->rendered.len - 1); /* drop the leading ',' */
    buf_putc(&doc, '}');
    cJSON *root = cJSON_ParseWithLength(doc.data, doc.len);
    assert_non_null(root);
    cJSON *tests = cJSON_GetObjectItem(root, "tests");
    assert_int_equal(cJSON_GetArraySize(tests), 3);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(tests, 0), "passed")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(tests, 1), "passed")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(tests, 2), "skipped")));
    assert_true(
        cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(tests, 0), "memory_peak_bytes")));
    assert_int_equal(cJSON_GetObjectItem(root, "passed")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(root, "failed")->valueint, 1);
    cJSON_Delete(root);
    buf_destroy(&doc);
    testset_free(ts);
}

static void cut_output_never_passes(void **state)
{
    (void)state;
    testset *ts = testset_new(1);
    ts->cases[0].expected = strdup("ab");
    ts->cases[0].expected_len = 2;
    testset_outcome o = {.out = "ab", .out_len = 2, .out_truncated = 1, .exited = 1};
    assert_int_equal(testset_add_result(ts, 0, &o), 1);
    testset_free(ts);
}

static void tests_count_in_task_bytes(void **state)
{
    (void)state;
    task *t = task_new(TASK_PYTHON, NULL, 0, NULL, 0);
    assert_non_null(t);
    size_t before = task_bytes(t);
    testset *ts = testset_new(2);
    ts->cases[1].input = malloc(1000);
    ts->cases[1].input_len = 1000;
    size_t tb = testset_bytes(ts);
    assert_true(tb > 1000);
    task_set_tests(t, ts);
    assert_int_equal(task_bytes(t), before + tb);
    task_unref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(comparison_drops_trailing_whitespace_only),
        cmocka_unit_test(no_tests_is_null),
        cmocka_unit_test(tests_are_parsed),
        cmocka_unit_test(bad_tests_name_the_entry),
        cmocka_unit_test(cap_is_checked),
        cmocka_unit_test(journal_text_round_trips),
        cmocka_unit_test(verdicts_render),
        cmocka_unit_test(cut_output_never_passes),
        cmocka_unit_test(tests_count_in_task_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
