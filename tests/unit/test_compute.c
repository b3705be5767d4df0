/* Unit tests for the /compute protocol: requests with exact numbers,
 * validation messages, answers and error answers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "compute.h"

static int parse(const char *body, compute_req *r, char *err)
{
    return compute_parse_request(body, strlen(body), r, err, COMPUTE_ERR_MAX);
}

static void exact_integers(void **state)
{
    compute_req r;
    char err[COMPUTE_ERR_MAX];
    assert_int_equal(
        parse("{\"operation\":\"sum\",\"op1\":9007199254740993,\"op2\":-9223372036854775808}", &r,
              err),
        0);
    assert_int_equal(r.op, NUM_SUM);
    assert_true(r.a.is_int && r.b.is_int);
    assert_int_equal(r.a.i, INT64_C(9007199254740993));
    assert_int_equal(r.b.i, INT64_MIN);
    num out;
    assert_int_equal(compute_run(&r, &out, err, sizeof err), 0);
    buf b = BUF_INIT;
    assert_int_equal(compute_answer_json(&b, &r, out), 0);
    assert_string_equal(b.data, "{\"operation\":\"sum\",\"op1\":9007199254740993,"
                                "\"op2\":-9223372036854775808,\"result\":-9214364837600034815}\n");
    buf_destroy(&b);
}

static void floats_and_numeric_strings(void **state)
{
    compute_req r;
    char err[COMPUTE_ERR_MAX];
    assert_int_equal(parse("{\"operation\":\"div\",\"op1\":\"7\",\"op2\":2.0}", &r, err), 0);
    num out;
    assert_int_equal(compute_run(&r, &out, err, sizeof err), 0);
    assert_false(out.is_int);
    assert_true(out.d == 3.5);
    buf b = BUF_INIT;
    compute_answer_json(&b, &r, out);
    assert_string_equal(b.data, "{\"operation\":\"div\",\"op1\":7,\"op2\":2,\"result\":3.5}\n");
    buf_destroy(&b);
}

static void bad_requests_name_the_field(void **state)
{
    static const struct {
        const char *body, *msg;
    } cases[] = {
        {"{\"op1\":1,\"op2\":2}", "missing field 'operation'"},
        {"{\"operation\":\"pow\",\"op1\":1,\"op2\":2}", "field 'operation' must be"},
        {"{\"operation\":\"SUM\",\"op1\":1,\"op2\":2}", "field 'operation' must be"},
        {"{\"operation\":\"sum\",\"op2\":2}", "missing field 'op1'"},
        {"{\"operation\":\"sum\",\"op1\":\"abc\",\"op2\":2}", "field 'op1' must be a number"},
        {"{\"operation\":\"sum\",\"op1\":1,\"op2\":true}", "field 'op2' must be a number"},
        {"{\"operation\":\"sum\",\"op1\":1,\"op2\":null}", "field 'op2' must be a number"},
        {"{\"operation\":\"sum\",\"op1\":1,\"op2\":[2]}", "field 'op2' must be a number"},
        {"{\"operation\":\"sum\",\"op1\":1e999,\"op2\":2}", "field 'op1' is out of range"},
        {"{\"operation\":\"sum\",\"op1\":1,\"op2\":2", "not valid JSON"},
        {"[1,2]", "must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        compute_req r;
        char err[COMPUTE_ERR_MAX] = "";
        assert_int_equal(parse(cases[i].body, &r, err), -EINVAL);
        if (!strstr(err, cases[i].msg))
            fail_msg("%s: got '%s', want '%s'", cases[i].body, err, cases[i].msg);
    }
}

static void division_by_zero_and_overflow(void **state)
{
    compute_req r = {NUM_DIV, num_int(1), num_int(0)};
    char err[COMPUTE_ERR_MAX];
    num out;
    assert_int_equal(compute_run(&r, &out, err, sizeof err), -EDOM);
    assert_string_equal(err, "division by zero");
    r = (compute_req){NUM_MUL, num_dbl(1e308), num_int(10)};
    assert_int_equal(compute_run(&r, &out, err, sizeof err), -ERANGE);
}

static void master_side(void **state)
{
    buf b = BUF_INIT;
    assert_int_equal(compute_request_json(&b, NUM_SUB, num_dbl(0.1), num_int(-3)), 0);
    assert_string_equal(b.data, "{\"operation\":\"sub\",\"op1\":0.1,\"op2\":-3}");
    buf_destroy(&b);
    num out;
    char err[COMPUTE_ERR_MAX];
    const char *ans = "{\"operation\":\"sum\",\"op1\":1,\"op2\":2,\"result\":9223372036854775807}";
    assert_int_equal(compute_parse_answer(ans, strlen(ans), &out, err, sizeof err), 0);
    assert_true(out.is_int);
    assert_int_equal(out.i, INT64_MAX);
    ans = "{\"result\": 6.0}"; /* a worker that prints floats */
    assert_int_equal(compute_parse_answer(ans, strlen(ans), &out, err, sizeof err), 0);
    assert_true(!out.is_int && out.d == 6.0);
    ans = "{\"result\": \"oops\"}";
    assert_int_equal(compute_parse_answer(ans, strlen(ans), &out, err, sizeof err), -EINVAL);
    ans = "<html>";
    assert_int_equal(compute_parse_answer(ans, strlen(ans), &out, err, sizeof err), -EINVAL);
    char msg[64];
    const char *e = "{\"error\":\"division by zero\"}";
    compute_parse_error(e, strlen(e), msg, sizeof msg);
    assert_string_equal(msg, "division by zero");
    compute_parse_error("nope", 4, msg, sizeof msg);
    assert_non_null(strstr(msg, "without"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_integers),
        cmocka_unit_test(floats_and_numeric_strings),
        cmocka_unit_test(bad_requests_name_the_field),
        cmocka_unit_test(division_by_zero_and_overflow),
        cmocka_unit_test(master_side),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
