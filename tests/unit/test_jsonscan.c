/* Unit tests for jsonscan: raw member text, skipping of nested values,
 * escaped names, duplicates, malformed documents and the nesting bound. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonscan.h"

/* Returns the raw value of key in doc as a static string, or NULL with
 * *rc set. */
static const char *member(const char *doc, const char *key, int *rc)
{
    static char out[256];
    const char *v;
    size_t n;
    *rc = jsonscan_member(doc, strlen(doc), key, &v, &n);
    if (*rc < 0)
        return NULL;
    assert_true(n < sizeof out);
    memcpy(out, v, n);
    out[n] = '\0';
    return out;
}

static void numbers_keep_their_text(void **state)
{
    int rc;
    const char *doc = "{\"op1\": 9007199254740993, \"op2\":-1.50e+3 }";
    assert_string_equal(member(doc, "op1", &rc), "9007199254740993");
    assert_string_equal(member(doc, "op2", &rc), "-1.50e+3");
    assert_null(member(doc, "op3", &rc));
    assert_int_equal(rc, -ENOENT);
}

static void nested_values_and_strings_are_skipped(void **state)
{
    int rc;
    const char *doc = "{\"a\": {\"op1\": 1, \"s\": \"}\\\"{\"}, \"b\": [1, [2, {\"x\": \"]\"}]],"
                      " \"c\": \"op1\", \"op1\": 42}";
    assert_string_equal(member(doc, "op1", &rc), "42");
    assert_string_equal(member(doc, "a", &rc), "{\"op1\": 1, \"s\": \"}\\\"{\"}");
    assert_string_equal(member(doc, "c", &rc), "\"op1\"");
    assert_string_equal(member("{\"k\":true,\"n\":null}", "n", &rc), "null");
}

static void names_are_compared_unescaped(void **state)
{
    int rc;
    assert_string_equal(member("{\"op\\u0031\": 5}", "op1", &rc), "5");
    assert_string_equal(member("{\"a\\\"b\": 6}", "a\"b", &rc), "6");
    assert_string_equal(member("{\"\\u00e9\": 7}", "\xc3\xa9", &rc), "7");
    assert_string_equal(member("{\"\\ud83d\\ude00\": 8}", "\xf0\x9f\x98\x80", &rc), "8");
    assert_null(member("{\"op\\u0032\": 5}", "op1", &rc));
    assert_null(member("{\"op1x\": 5}", "op1", &rc));
    assert_null(member("{\"op\": 5}", "op1", &rc));
}

static void first_duplicate_wins(void **state)
{
    int rc;
    assert_string_equal(member("{\"x\": 1, \"x\": 2}", "x", &rc), "1");
}

static void malformed_documents(void **state)
{
    int rc;
    const char *bad[] = {"",
                         "[1]",
                         "{",
                         "{\"a\"",
                         "{\"a\":",
                         "{\"a\": 1 \"b\": 2}",
                         "{\"a\": \"x",
                         "{\"a\": [1, 2",
                         "{a: 1}",
                         "{\"a\": }"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(member(bad[i], "b", &rc));
        assert_int_equal(rc, -EINVAL);
    }
    assert_null(member("{}", "a", &rc));
    assert_int_equal(rc, -ENOENT);
    /* Found before the damage: fine (validate with cJSON first). */
    assert_string_equal(member("{\"a\": 1, oops", "a", &rc), "1");
    /* Lengths are respected: no NUL needed, none read past. */
    const char doc[] = {'{', '"', 'a', '"', ':', '1', '2'};
    const char *v;
    size_t n;
    assert_int_equal(jsonscan_member(doc, sizeof doc, "a", &v, &n), 0);
    assert_int_equal(n, 2);
}

/* jsonscan_is_number: the RFC 8259 grammar, nothing more or less. */
static void is_number_follows_rfc8259(void **state)
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
        assert_true(jsonscan_is_number(good[i], strlen(good[i])));
    const char *bad[] = {"",    "-",   "+1", "01", "-01", ".5",    "5.",  "1e",    "1e+", "0x10",
                         "NaN", "inf", " 1", "1 ", "1,5", "1.2.3", "--1", "1e5.5", "abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(jsonscan_is_number(bad[i], strlen(bad[i])));
    /* The length bounds the number: what follows is not looked at. */
    assert_true(jsonscan_is_number("42junk", 2));
    assert_false(jsonscan_is_number("4\0002", 3));
}

/* Text made of `n` copies of open followed by tail; freed by the caller. */
static char *repeat(const char *open, size_t n, const char *tail)
{
    size_t ol = strlen(open), tl = strlen(tail);
    char *s = malloc(ol * n + tl + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ol, open, ol);
    memcpy(s + ol * n, tail, tl + 1);
    return s;
}

static int depth_ok(const char *s, unsigned max)
{
    return jsonscan_check_depth(s, strlen(s), max);
}

static void depth_counts_open_brackets(void **state)
{
    assert_int_equal(depth_ok("", 0), 0);
    assert_int_equal(depth_ok("42", 0), 0);
    assert_int_equal(depth_ok("[]", 0), -E2BIG);
    assert_int_equal(depth_ok("[]", 1), 0);
    assert_int_equal(depth_ok("{\"a\":[1,{\"b\":[]}]}", 4), 0);
    assert_int_equal(depth_ok("{\"a\":[1,{\"b\":[]}]}", 3), -E2BIG);
    /* Closed brackets give their level back: siblings do not add up. */
    assert_int_equal(depth_ok("[[1],[2],[3],{},[[]]]", 3), 0);
    assert_int_equal(depth_ok("[[1],[2],[3],{},[[]]]", 2), -E2BIG);
    /* Mismatched kinds still nest (cJSON would recurse before refusing). */
    assert_int_equal(depth_ok("[{[{", 4), 0);
    assert_int_equal(depth_ok("[{[{[", 4), -E2BIG);
    /* Stray closers do not buy depth for later openers. */
    assert_int_equal(depth_ok("]]]]]]][[", 1), -E2BIG);
}

static void depth_ignores_brackets_in_strings(void **state)
{
    assert_int_equal(depth_ok("[\"[[[[{{{{\"]", 1), 0);
    assert_int_equal(depth_ok("{\"[[[\":\"]]]\"}", 1), 0);
    /* An escaped quote does not end the string; an escaped backslash does
     * not escape the quote after it. */
    assert_int_equal(depth_ok("[\"\\\"[[[\"]", 1), 0);
    assert_int_equal(depth_ok("[\"\\\\\",[[]]", 1), -E2BIG);
    /* An unterminated string hides the rest, as it does from a parser. */
    assert_int_equal(depth_ok("[\"[[[[[[", 1), 0);
    /* NUL bytes are plain bytes; the length bounds the scan. */
    assert_int_equal(jsonscan_check_depth("[\0[[", 4, 1), -E2BIG);
    assert_int_equal(jsonscan_check_depth("[[[[", 1, 1), 0);
}

/* The bodies the server refuses: 64 levels pass, 65 and 100 000 do not. */
static void depth_limit_at_64(void **state)
{
    char *ok = repeat("[", 64, "");
    char *deep = repeat("[", 65, "");
    char *huge = repeat("[", 100000, "");
    char *objs = repeat("{\"a\":", 100000, "1");
    assert_int_equal(depth_ok(ok, 64), 0);
    assert_int_equal(depth_ok(deep, 64), -E2BIG);
    assert_int_equal(depth_ok(huge, 64), -E2BIG);
    assert_int_equal(depth_ok(objs, 64), -E2BIG);
    free(objs);
    free(huge);
    free(deep);
    free(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_keep_their_text),
        cmocka_unit_test(nested_values_and_strings_are_skipped),
        cmocka_unit_test(names_are_compared_unescaped),
        cmocka_unit_test(first_duplicate_wins),
        cmocka_unit_test(malformed_documents),
        cmocka_unit_test(is_number_follows_rfc8259),
        cmocka_unit_test(depth_counts_open_brackets),
        cmocka_unit_test(depth_ignores_brackets_in_strings),
        cmocka_unit_test(depth_limit_at_64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
