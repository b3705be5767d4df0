/* Unit tests for calc_api: the number taken from a POST / body and the
 * answer built from a finished calculation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "calc_api.h"

static void data_is(const char *body, int rc, const char *want)
{
    char out[CALC_MAX_NUMBER + 1] = "", err[256] = "";
    assert_int_equal(calc_api_parse_data(body, strlen(body), out, sizeof out, err, sizeof err), rc);
    if (rc == 0)
        assert_string_equal(out, want);
    else
        assert_non_null(strstr(err, want));
}

static void data_keeps_the_numbers_text(void **state)
{
    data_is("{\"data\": 5}", 0, "5");
    data_is("{\"data\": 123456789012345678901234567890}", 0, "123456789012345678901234567890");
    data_is("{\"data\":0.30000000000000004 }", 0, "0.30000000000000004");
    data_is("{\"data\": -1.5E+3}", 0, "-1.5E+3");
    data_is("{\"data\": \"17\"}", 0, "17");
    data_is("{\"x\": {\"data\": 1}, \"data\": 2}", 0, "2");
    /* Spelt with an escape, the key is still "data" for cJSON: the value
     * then comes from the double. */
    data_is("{\"d\\u0061ta\": 2.5}", 0, "2.5");
}

static void data_errors_name_the_field(void **state)
{
    data_is("{}", -EINVAL, "missing field 'data'");
    data_is("{\"Data\": 1}", -EINVAL, "missing field 'data'");
    data_is("{\"data\": true}", -EINVAL, "must be a number");
    data_is("{\"data\": \"1.2.3\"}", -EINVAL, "must be a number");
    data_is("{\"data\": \" 1\"}", -EINVAL, "must be a number");
    data_is("{\"data\": null}", -EINVAL, "must be a number");
    data_is("[1]", -EINVAL, "object");
    data_is("{\"data\": 1} x", -EINVAL, "after the JSON value");
    data_is("", -EINVAL, "empty");
    char big[CALC_MAX_NUMBER + 64];
    memset(big, '9', sizeof big);
    memcpy(big, "{\"data\": ", 9);
    strcpy(big + sizeof big - 2, "}");
    data_is(big, -EINVAL, "longer than");
}

static void answer_is(const char *out, enum task_status st, const char *error, int status,
                      const char *want)
{
    task t;
    memset(&t, 0, sizeof t);
    t.out = (char *)out;
    t.out_len = strlen(out);
    t.err = "oops\n";
    t.err_len = 5;
    t.error = (char *)error;
    buf b = BUF_INIT;
    assert_int_equal(calc_api_result_json(&b, &t, st), status);
    if (!strstr(b.data, want))
        fail_msg("'%s' not in '%s'", want, b.data);
    buf_destroy(&b);
}

static void answers(void **state)
{
    answer_is(" 42\n", TASK_SUCCESS, NULL, 200, "{\"result\":42}\n");
    answer_is("246913578024691357802469135780\n", TASK_SUCCESS, NULL, 200,
              "{\"result\":246913578024691357802469135780}");
    answer_is("forty-two\n", TASK_SUCCESS, NULL, 500,
              "\"error\":\"calculation output is not a number: forty-two\"");
    answer_is("", TASK_SUCCESS, NULL, 500, "not a number");
    answer_is("1 2\n", TASK_SUCCESS, NULL, 500, "not a number");
    answer_is("", TASK_ERROR, "exited with code 3", 500,
              "{\"error\":\"calculation failed: exited with code 3\",\"status\":\"ERROR\","
              "\"stderr\":\"oops\\n\"}");
    /* A failed run's stdout is not a result even if it is a number. */
    answer_is("7\n", TASK_ERROR, "killed by signal 9 (SIGKILL)", 500, "SIGKILL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(data_keeps_the_numbers_text),
        cmocka_unit_test(data_errors_name_the_field),
        cmocka_unit_test(answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
