/* Unit tests for jsonw: JSON strings from arbitrary bytes, exact numbers. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>

#include "jsonw.h"

#define FFFD "\xef\xbf\xbd"

/* Escapes len bytes of in and checks the exact JSON text produced. */
static void check_str(const char *in, size_t len, const char *want_json)
{
    buf b = BUF_INIT;
    assert_int_equal(jsonw_str(&b, in, len), 0);
    assert_string_equal(b.data, want_json);
    assert_int_equal(b.len, strlen(want_json));
    buf_destroy(&b);
}

/* Parses JSON text with cJSON, as a client would, and returns the string
 * value (caller frees); fails the test if it is not exactly one string. */
static char *parse_json_string(const char *json, size_t len)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    assert_non_null(v);
    assert_true(cJSON_IsString(v));
    assert_ptr_equal(end, json + len);
    char *s = strdup(v->valuestring);
    cJSON_Delete(v);
    return s;
}

/* Escapes in, parses the result back and compares with want (UTF-8). */
static void check_roundtrip(const char *in, size_t len, const char *want)
{
    buf b = BUF_INIT;
    assert_int_equal(jsonw_str(&b, in, len), 0);
    char *got = parse_json_string(b.data, b.len);
    assert_string_equal(got, want);
    free(got);
    buf_destroy(&b);
}

#define STR(lit, want) check_str(lit, sizeof(lit) - 1, want)
#define RT(lit, want) check_roundtrip(lit, sizeof(lit) - 1, want)

static void test_plain_and_escapes(void **state)
{
    STR("", "\"\"");
    STR("hello world", "\"hello world\"");
    STR("\"\\/", "\"\\\"\\\\/\"");
    STR("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
    STR("\x1f", "\"\\u001f\"");
    STR("\x01\x7f", "\"\\u0001\x7f\""); /* DEL is legal in JSON strings */
    STR("a\0b", "\"a\\u0000b\"");
    STR("\0", "\"\\u0000\"");
    RT("line1\nline2\ttab \"q\" \\", "line1\nline2\ttab \"q\" \\");
    RT("\x1f\x01", "\x1f\x01");
}

static void test_valid_utf8_passes_through(void **state)
{
    STR("caf\xc3\xa9", "\"caf\xc3\xa9\"");
    STR("\xe2\x82\xac", "\"\xe2\x82\xac\"");         /* euro sign */
    STR("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""); /* emoji */
    STR("\xef\xbf\xbf", "\"\xef\xbf\xbf\"");         /* U+FFFF */
    STR("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
    STR("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");         /* U+D7FF, below surrogates */
    STR("\xc2\x80", "\"\xc2\x80\"");                 /* smallest 2-byte */
    STR("\xe0\xa0\x80", "\"\xe0\xa0\x80\"");         /* smallest 3-byte */
    STR("\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\""); /* smallest 4-byte */
    RT("smile \xf0\x9f\x98\x80!", "smile \xf0\x9f\x98\x80!");
}

static void test_invalid_utf8_replaced(void **state)
{
    STR("\xff", "\"" FFFD "\"");
    STR("\xfe\xff", "\"" FFFD FFFD "\"");
    STR("\x80", "\"" FFFD "\"");     /* lone continuation */
    STR("a\xc3", "\"a" FFFD "\"");   /* truncated 2-byte at end */
    STR("\xc3z", "\"" FFFD "z\"");   /* truncated 2-byte mid-text */
    STR("\xe2\x82", "\"" FFFD "\""); /* truncated 3-byte: one U+FFFD */
    STR("\xe2\x82z", "\"" FFFD "z\"");
    STR("\xf0\x9f\x98", "\"" FFFD "\""); /* truncated 4-byte: one U+FFFD */
    STR("\xf0\x9f\x98\n", "\"" FFFD "\\n\"");
    STR("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\""); /* surrogate D800 */
    STR("\xc0\xaf", "\"" FFFD FFFD "\"");          /* overlong '/' */
    STR("\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\""); /* overlong 3-byte */
    STR("\xf0\x80\x80\xaf", "\"" FFFD FFFD FFFD FFFD "\"");
    STR("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\""); /* > U+10FFFF */
    STR("\xf5\x80", "\"" FFFD FFFD "\"");
    /* The example of Unicode section 3.9 (maximal subparts). */
    STR("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64",
        "\"a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d\"");
    /* A valid sequence right after a truncated one survives. */
    STR("\xe2\x82\xf0\x9f\x98\x80", "\"" FFFD "\xf0\x9f\x98\x80\"");
    RT("x\xffy\xed\xa0\x80z", "x" FFFD "y" FFFD FFFD FFFD "z");
}

static void test_cstr(void **state)
{
    buf b = BUF_INIT;
    assert_int_equal(jsonw_cstr(&b, NULL), 0);
    assert_int_equal(buf_putc(&b, ','), 0);
    assert_int_equal(jsonw_cstr(&b, "a\"b"), 0);
    assert_string_equal(b.data, "null,\"a\\\"b\"");
    buf_destroy(&b);
}

/* Pieces whose escaped forms concatenate: none starts with a continuation
 * byte, so a neighbour never changes how a piece is read. */
static const struct {
    const char *in;
    size_t len;
    const char *out;
} pieces[] = {
    {"a", 1, "a"},
    {"hello ", 6, "hello "},
    {"\n", 1, "\\n"},
    {"\0", 1, "\\u0000"},
    {"\"", 1, "\\\""},
    {"\xc3\xa9", 2, "\xc3\xa9"},
    {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},
    {"\xff", 1, FFFD},
    {"\xe2\x82", 2, FFFD},
    {"\xf0\x9f\x98", 3, FFFD},
};

/* Long inputs exercise the chunked writer: sequences straddle chunk ends. */
static void test_long_mixed_input(void **state)
{
    for (unsigned seed = 1; seed <= 20; seed++) {
        buf in = BUF_INIT, want = BUF_INIT, got = BUF_INIT;
        unsigned x = seed;
        buf_putc(&want, '"');
        while (in.len < 20000) {
            x = x * 1103515245u + 12345u;
            size_t k = (x >> 16) % (sizeof pieces / sizeof pieces[0]);
            buf_append(&in, pieces[k].in, pieces[k].len);
            buf_puts(&want, pieces[k].out);
        }
        buf_putc(&want, '"');
        assert_false(buf_failed(&in) || buf_failed(&want));
        assert_int_equal(jsonw_str(&got, in.data, in.len), 0);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.data, want.data, want.len);
        /* Still well-formed JSON that a client can read. */
        cJSON *v = cJSON_ParseWithLength(got.data, got.len);
        assert_non_null(v);
        cJSON_Delete(v);
        buf_destroy(&in);
        buf_destroy(&want);
        buf_destroy(&got);
    }
}

static void test_long_plain_ascii(void **state)
{
    size_t n = 1 << 20;
    char *in = malloc(n);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)('a' + i % 26);
    buf b = BUF_INIT;
    assert_int_equal(jsonw_str(&b, in, n), 0);
    assert_int_equal(b.len, n + 2);
    assert_memory_equal(b.data + 1, in, n);
    free(in);
    buf_destroy(&b);
}

static void test_failed_buf(void **state)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOMEM);
    assert_int_equal(jsonw_str(&b, "x", 1), -ENOMEM);
    assert_int_equal(jsonw_cstr(&b, NULL), -ENOMEM);
    assert_int_equal(jsonw_i64(&b, 1), -ENOMEM);
    assert_int_equal(jsonw_f64(&b, 1.5), -ENOMEM);
    assert_true(buf_failed(&b));
    buf_destroy(&b);
}

static void check_i64(int64_t v, const char *want)
{
    buf b = BUF_INIT;
    assert_int_equal(jsonw_i64(&b, v), 0);
    assert_string_equal(b.data, want);
    buf_destroy(&b);
}

static void test_i64(void **state)
{
    check_i64(0, "0");
    check_i64(7, "7");
    check_i64(-1, "-1");
    check_i64(1234567890123, "1234567890123");
    check_i64(INT64_MAX, "9223372036854775807");
    check_i64(INT64_MIN, "-9223372036854775808");
}

static void check_f64(double v, const char *want)
{
    buf b = BUF_INIT;
    assert_int_equal(jsonw_f64(&b, v), 0);
    assert_string_equal(b.data, want);
    buf_destroy(&b);
}

static void test_f64_exact_forms(void **state)
{
    check_f64(6, "6");
    check_f64(-6, "-6");
    check_f64(0.0, "0");
    check_f64(-0.0, "0");
    check_f64(2.5, "2.5");
    check_f64(-1.5, "-1.5");
    check_f64(0.1, "0.1");
    check_f64(0.1 + 0.2, "0.30000000000000004");
    check_f64(1.0 / 3.0, "0.3333333333333333");
    check_f64(1e300, "1e+300");
    check_f64(1e21, "1e+21");
    check_f64(1e-7, "1e-07");
    check_f64(9007199254740991.0, "9007199254740991"); /* 2^53 - 1 */
    check_f64(-9007199254740991.0, "-9007199254740991");
    check_f64(9007199254740993.0, "9007199254740992"); /* rounds to 2^53 */
    check_f64(1e15, "1000000000000000");
    check_f64(123456.789, "123456.789");
    check_f64(NAN, "null");
    check_f64(INFINITY, "null");
    check_f64(-INFINITY, "null");
}

/* Every finite double must come back exactly and be valid JSON. */
static void check_roundtrip_f64(double v)
{
    char out[32];
    int n = jsonw_f64_fmt(out, sizeof out, v);
    assert_true(n > 0 && (size_t)n < sizeof out);
    assert_int_equal(strlen(out), n);
    assert_true(strtod(out, NULL) == v);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_true(cJSON_IsNumber(j));
    cJSON_Delete(j);
}

static void test_f64_roundtrip(void **state)
{
    static const double fixed[] = {DBL_MAX,
                                   -DBL_MAX,
                                   DBL_MIN,
                                   5e-324,
                                   DBL_EPSILON,
                                   9007199254740992.0,
                                   1.7976931348623157e308,
                                   2.2250738585072009e-308,
                                   0.1,
                                   123e-20};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        check_roundtrip_f64(fixed[i]);

    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof v);
        if (isfinite(v))
            check_roundtrip_f64(v);
    }
}

static void test_f64_fmt_small_buffer(void **state)
{
    char out[32];
    assert_int_equal(jsonw_f64_fmt(out, 3, 0.1 + 0.2), -EINVAL);
    assert_int_equal(jsonw_f64_fmt(out, 4, 123), 3);
    assert_string_equal(out, "123");
    assert_int_equal(jsonw_f64_fmt(out, 3, 123), -EINVAL);
    assert_int_equal(jsonw_f64_fmt(out, sizeof out, -DBL_MAX), 24);
}

static void test_utf8_valid_prefix(void **state)
{
    assert_int_equal(jsonw_utf8_valid_prefix("", 0), 0);
    assert_int_equal(jsonw_utf8_valid_prefix("abc", 3), 3);
    assert_int_equal(jsonw_utf8_valid_prefix("a\0b", 3), 3);
    assert_int_equal(jsonw_utf8_valid_prefix("ab\xc3", 3), 2);
    assert_int_equal(jsonw_utf8_valid_prefix("ab\xc3\xa9", 4), 4);
    assert_int_equal(jsonw_utf8_valid_prefix("\xe2\x82\xac!", 4), 4);
    assert_int_equal(jsonw_utf8_valid_prefix("x\xf0\x9f\x98", 4), 1);
    assert_int_equal(jsonw_utf8_valid_prefix("a\xed\xa0\x80", 4), 1);
    assert_int_equal(jsonw_utf8_valid_prefix("\xc0\xaf", 2), 0);
    assert_int_equal(jsonw_utf8_valid_prefix("ok\xff more", 8), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_escapes),
        cmocka_unit_test(test_valid_utf8_passes_through),
        cmocka_unit_test(test_invalid_utf8_replaced),
        cmocka_unit_test(test_cstr),
        cmocka_unit_test(test_long_mixed_input),
        cmocka_unit_test(test_long_plain_ascii),
        cmocka_unit_test(test_failed_buf),
        cmocka_unit_test(test_i64),
        cmocka_unit_test(test_f64_exact_forms),
        cmocka_unit_test(test_f64_roundtrip),
        cmocka_unit_test(test_f64_fmt_small_buffer),
        cmocka_unit_test(test_utf8_valid_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
