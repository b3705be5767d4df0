/* Unit tests for jsonscan: exact number text out of JSON documents. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jsonscan.h"

static int num(const char *s)
{
    return jsonscan_is_number(s, strlen(s));
}

static void numbers_follow_rfc8259(void **state)
{
    const char *good[] = {"0",
                          "-0",
                          "7",
                          "-12",
                          "1120",
                          "1.5",
                          "0.25",
                          "2e3",
                          "2E+3",
                          "-1e-9",
                          "12345678901234567890123",
                          "0.30000000000000004",
                          "1.0e10"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(num(good[i]));
    const char *bad[] = {"",    "-",   "+1", "01", "-01", ".5",    "5.",  "1e",    "1e+", "0x10",
                         "NaN", "inf", " 1", "1 ", "1,5", "1.2.3", "--1", "1e5.5", "abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(num(bad[i]));
    /* The length bounds the number: a NUL or junk after it is not looked at. */
    assert_true(jsonscan_is_number("42junk", 2));
    assert_false(jsonscan_is_number("4\0002", 3));
}

/* Finds key in doc and compares the raw value text with want (NULL: the
 * expected return is rc). */
static void member(const char *doc, const char *key, int rc, const char *want)
{
    const char *v = NULL;
    size_t n = 0;
    assert_int_equal(jsonscan_member(doc, strlen(doc), key, &v, &n), rc);
    if (want) {
        assert_int_equal(n, strlen(want));
        assert_memory_equal(v, want, n);
    } else {
        assert_null(v);
    }
}

static void members_keep_their_raw_text(void **state)
{
    member("{\"data\": 12345678901234567890}", "data", 0, "12345678901234567890");
    member("  {\"data\":0.30000000000000004 }", "data", 0, "0.30000000000000004");
    member("{\"a\": {\"data\": 1, \"x\": [1, {\"y\": \"}\"}]}, \"data\": -2e3}", "data", 0, "-2e3");
    member("{\"s\": \"he said \\\"data\\\": 9\", \"data\": \"17\"}", "data", 0, "\"17\"");
    member("{\"data\": [1, 2], \"data\": 3}", "data", 0, "[1, 2]");
    member("{\"result\":true}", "result", 0, "true");
    /* cJSON skips control bytes as whitespace; so does the scan. */
    member("{\"data\":\x02 7\x0f}", "data", 0, "7");
}

static void missing_members_and_broken_documents(void **state)
{
    member("{}", "data", -ENOENT, NULL);
    member("{ \"Data\": 1 }", "data", -ENOENT, NULL);
    member("{\"d\\u0061ta\": 1}", "data", -ENOENT, NULL);
    member("[1, 2]", "data", -EINVAL, NULL);
    member("", "data", -EINVAL, NULL);
    member("{\"data\"", "data", -EINVAL, NULL);
    member("{\"data\": ", "data", -EINVAL, NULL);
    member("{\"x\": \"unterminated", "data", -EINVAL, NULL);
    member("{\"x\": [1, 2", "data", -EINVAL, NULL);
    member("{\"x\": 1 \"data\": 2}", "data", -EINVAL, NULL);
    member("{data: 1}", "data", -EINVAL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_follow_rfc8259),
        cmocka_unit_test(members_keep_their_raw_text),
        cmocka_unit_test(missing_members_and_broken_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
