/* Unit tests for num: exactness of integer arithmetic, overflow to double,
 * division, errors, formatting and parsing of number text. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "num.h"

#define I(v) num_int(v)
#define D(v) num_dbl(v)

static void check_num(num got, num want, const char *what)
{
    char g[NUM_FMT_SIZE], w[NUM_FMT_SIZE];
    int same =
        got.is_int == want.is_int &&
        (got.is_int ? got.i == want.i : (got.d == want.d && signbit(got.d) == signbit(want.d)));
    if (!same) {
        num_fmt(got, g, sizeof g);
        num_fmt(want, w, sizeof w);
        fail_msg("%s: got %s %s (%.17g), want %s %s (%.17g)", what, got.is_int ? "int" : "double",
                 g, got.d, want.is_int ? "int" : "double", w, want.d);
    }
}

struct apply_case {
    enum num_op op;
    num a, b;
    int rc;
    num want;
};

static void test_apply_table(void **state)
{
    const double two63 = 9223372036854775808.0;
    const struct apply_case cases[] = {
        {NUM_SUM, I(2), I(3), 0, I(5)},
        {NUM_SUB, I(2), I(3), 0, I(-1)},
        {NUM_MUL, I(-4), I(3), 0, I(-12)},
        {NUM_DIV, I(6), I(3), 0, I(2)},
        {NUM_DIV, I(7), I(2), 0, D(3.5)},
        {NUM_DIV, I(-7), I(2), 0, D(-3.5)},
        {NUM_DIV, I(1), I(3), 0, D(1.0 / 3.0)},
        {NUM_DIV, I(-6), I(-3), 0, I(2)},
        {NUM_DIV, I(0), I(-5), 0, I(0)},
        /* exact beyond 2^53 while it fits in int64 */
        {NUM_MUL, I(9007199254740993), I(1), 0, I(9007199254740993)},
        {NUM_SUM, I(9007199254740992), I(1), 0, I(9007199254740993)},
        {NUM_SUM, I(INT64_MAX), I(0), 0, I(INT64_MAX)},
        {NUM_SUB, I(INT64_MIN + 1), I(1), 0, I(INT64_MIN)},
        /* overflow falls back to double */
        {NUM_SUM, I(INT64_MAX), I(1), 0, D(two63)},
        {NUM_SUB, I(INT64_MIN), I(1), 0, D(-two63)},
        {NUM_SUB, I(0), I(INT64_MIN), 0, D(two63)},
        {NUM_MUL, I(INT64_MAX), I(2), 0, D(2.0 * two63)},
        {NUM_MUL, I(INT64_MIN), I(-1), 0, D(two63)},
        {NUM_DIV, I(INT64_MIN), I(-1), 0, D(two63)},
        {NUM_DIV, I(INT64_MIN), I(1), 0, I(INT64_MIN)},
        {NUM_DIV, I(INT64_MIN), I(2), 0, I(INT64_MIN / 2)},
        /* the quotient is rounded once: (double)a/(double)b would give
         * 1286742750677284.5 for the first (values from exact rationals) */
        {NUM_DIV, I(9007199254740993), I(7), 0, D(1286742750677284.8)},
        {NUM_DIV, I(-5757763313810287289), I(-821575228382), 0, D(7008199.754451646)},
        {NUM_DIV, I(-4720586066214327776), I(221510463151), 0, D(-21310894.298462022)},
        {NUM_DIV, I(220121936330067728), I(-432322578386), 0, D(-509161.32382410864)},
        {NUM_DIV, I(1740816960299813499), I(-796904530070), 0, D(-2184473.666057464)},
        {NUM_DIV, I(1), I(INT64_MIN), 0, D(-1.0 / two63)},
        {NUM_DIV, I(INT64_MAX), I(INT64_MIN), 0, D(-1.0)},
        {NUM_DIV, I(4611686018427387905), I(INT64_MAX), 0, D(0.5)},
        /* any double operand gives a double */
        {NUM_SUM, D(0.1), D(0.2), 0, D(0.30000000000000004)},
        {NUM_SUM, I(1), D(0.5), 0, D(1.5)},
        {NUM_MUL, D(2.0), I(3), 0, D(6.0)},
        {NUM_DIV, D(6.0), I(3), 0, D(2.0)},
        {NUM_DIV, I(1), D(4.0), 0, D(0.25)},
        {NUM_SUB, D(-0.0), I(0), 0, D(-0.0)},
        /* errors */
        {NUM_DIV, I(1), I(0), -EDOM, I(0)},
        {NUM_DIV, I(0), I(0), -EDOM, I(0)},
        {NUM_DIV, D(1.5), I(0), -EDOM, I(0)},
        {NUM_DIV, I(1), D(0.0), -EDOM, I(0)},
        {NUM_DIV, I(1), D(-0.0), -EDOM, I(0)},
        {NUM_DIV, D(0.0), D(0.0), -EDOM, I(0)},
        {NUM_MUL, D(1e308), I(10), -ERANGE, I(0)},
        {NUM_SUM, D(1e308), D(1e308), -ERANGE, I(0)},
        {NUM_SUB, D(-1e308), D(1e308), -ERANGE, I(0)},
        {NUM_DIV, D(1e308), D(1e-308), -ERANGE, I(0)},
        {NUM_SUM, D(INFINITY), I(0), -ERANGE, I(0)},
        {NUM_MUL, I(0), D(NAN), -ERANGE, I(0)},
        {NUM_DIV, D(NAN), I(0), -ERANGE, I(0)},
        {(enum num_op)4, I(1), I(1), -EINVAL, I(0)},
    };
    (void)state;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct apply_case *c = &cases[k];
        char what[64];
        snprintf(what, sizeof what, "case %zu", k);
        num out = num_int(424242); /* sentinel: must survive an error */
        int rc = num_apply(c->op, c->a, c->b, &out);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", what, rc, c->rc);
        check_num(out, rc == 0 ? c->want : num_int(424242), what);
    }
}

static void test_op_names(void **state)
{
    static const char *const names[] = {"sum", "sub", "mul", "div"};
    static const char symbols[] = "+-*/";
    enum num_op op;
    (void)state;
    for (int k = 0; k < 4; k++) {
        assert_string_equal(num_op_name((enum num_op)k), names[k]);
        assert_int_equal(num_op_symbol((enum num_op)k), symbols[k]);
        assert_int_equal(num_op_parse(names[k], &op), 0);
        assert_int_equal(op, k);
    }
    assert_null(num_op_name((enum num_op)4));
    assert_int_equal(num_op_symbol((enum num_op)9), '?');
    op = NUM_MUL;
    assert_int_equal(num_op_parse("SUM", &op), -EINVAL);
    assert_int_equal(num_op_parse("", &op), -EINVAL);
    assert_int_equal(num_op_parse("sums", &op), -EINVAL);
    assert_int_equal(num_op_parse("add", &op), -EINVAL);
    assert_int_equal(op, NUM_MUL);
}

struct fmt_case {
    num v;
    const char *want;
};

static void test_fmt_table(void **state)
{
    const struct fmt_case cases[] = {
        {I(0), "0"},
        {I(-5), "-5"},
        {I(9007199254740993), "9007199254740993"},
        {I(INT64_MAX), "9223372036854775807"},
        {I(INT64_MIN), "-9223372036854775808"},
        {D(2.5), "2.5"},
        {D(6.0), "6"},
        {D(-6.0), "-6"},
        {D(0.0), "0"},
        {D(-0.0), "0"},
        {D(0.1), "0.1"},
        {D(0.1 + 0.2), "0.30000000000000004"},
        {D(1.0 / 3.0), "0.3333333333333333"},
        {D(-3.5), "-3.5"},
        {D(1e300), "1e+300"},
        {D(1.5e-7), "1.5e-07"},
        {D(9007199254740991.0), "9007199254740991"},
        {D(9007199254740992.0), "9007199254740992"},
        {D(9223372036854775808.0), "9.223372036854776e+18"},
        {D(1e21), "1e+21"},
        {D(123456789012.5), "123456789012.5"},
        {D(5e-324), "5e-324"},
        {D(2.2250738585072014e-308), "2.2250738585072014e-308"},
        {D(1e-310), "1e-310"},
        {D(-1.7976931348623157e308), "-1.7976931348623157e+308"},
    };
    (void)state;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char out[NUM_FMT_SIZE];
        int n = num_fmt(cases[k].v, out, sizeof out);
        if (n < 0 || strcmp(out, cases[k].want) != 0 || (size_t)n != strlen(out))
            fail_msg("case %zu: got \"%s\" (%d), want \"%s\"", k, out, n, cases[k].want);
    }
}

static void test_fmt_errors(void **state)
{
    char out[NUM_FMT_SIZE] = "x";
    (void)state;
    assert_int_equal(num_fmt(D(NAN), out, sizeof out), -ERANGE);
    assert_string_equal(out, "");
    assert_int_equal(num_fmt(D(-INFINITY), out, sizeof out), -ERANGE);
    assert_int_equal(num_fmt(I(12345), out, 5), -ENOSPC);
    assert_string_equal(out, "");
    assert_int_equal(num_fmt(I(12345), out, 6), 5);
    assert_string_equal(out, "12345");
    assert_int_equal(num_fmt(D(2.5), out, 3), -ENOSPC);
    assert_int_equal(num_fmt(D(2.5), out, 4), 3);
    assert_int_equal(num_fmt(I(1), NULL, 0), -ENOSPC);
}

/* Formatting then parsing gives back the same double for values of every
 * magnitude, and never more text than NUM_FMT_SIZE allows. */
static void test_fmt_round_trip(void **state)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    (void)state;
    for (int k = 0; k < 20000; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d))
            continue;
        char out[NUM_FMT_SIZE];
        int n = num_fmt(D(d), out, sizeof out);
        assert_true(n > 0);
        num back;
        assert_int_equal(num_from_text(out, (size_t)n, &back), 0);
        if (num_to_double(back) != d)
            fail_msg("%.17g printed as %s reads back as %.17g", d, out, num_to_double(back));
    }
}

struct text_case {
    const char *text;
    int rc;
    num want;
};

static void test_from_text_table(void **state)
{
    const struct text_case cases[] = {
        {"0", 0, I(0)},
        {"-0", 0, I(0)},
        {"42", 0, I(42)},
        {"-42", 0, I(-42)},
        {"007", 0, I(7)},
        {"9007199254740993", 0, I(9007199254740993)},
        {"9223372036854775807", 0, I(INT64_MAX)},
        {"-9223372036854775808", 0, I(INT64_MIN)},
        {"9223372036854775808", 0, D(9223372036854775808.0)},
        {"-9223372036854775809", 0, D(-9223372036854775808.0)},
        {"18446744073709551616", 0, D(18446744073709551616.0)},
        {"1.5", 0, D(1.5)},
        {"-1.5", 0, D(-1.5)},
        {".5", 0, D(0.5)},
        {"5.", 0, D(5.0)},
        {"-0.0", 0, D(-0.0)},
        {"1e2", 0, D(100.0)},
        {"1E+2", 0, D(100.0)},
        {"2E-3", 0, D(0.002)},
        {"1.5e2", 0, D(150.0)},
        {"0.1", 0, D(0.1)},
        {"1e-999", 0, D(0.0)},
        {"1.7976931348623157e308", 0, D(1.7976931348623157e308)},
        {"1e999", -ERANGE, I(0)},
        {"-1e999", -ERANGE, I(0)},
        {"1.8e308", -ERANGE, I(0)},
        {"", -EINVAL, I(0)},
        {"-", -EINVAL, I(0)},
        {"+1", -EINVAL, I(0)},
        {"--1", -EINVAL, I(0)},
        {" 1", -EINVAL, I(0)},
        {"1 ", -EINVAL, I(0)},
        {".", -EINVAL, I(0)},
        {"-.", -EINVAL, I(0)},
        {"1.2.3", -EINVAL, I(0)},
        {"e5", -EINVAL, I(0)},
        {"1e", -EINVAL, I(0)},
        {"1e+", -EINVAL, I(0)},
        {"1e5.0", -EINVAL, I(0)},
        {"0x10", -EINVAL, I(0)},
        {"inf", -EINVAL, I(0)},
        {"nan", -EINVAL, I(0)},
        {"1,5", -EINVAL, I(0)},
        {"1_000", -EINVAL, I(0)},
    };
    (void)state;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct text_case *c = &cases[k];
        char what[64];
        snprintf(what, sizeof what, "\"%s\"", c->text);
        num out = num_int(424242);
        int rc = num_from_text(c->text, strlen(c->text), &out);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", what, rc, c->rc);
        check_num(out, rc == 0 ? c->want : num_int(424242), what);
    }
}

static void test_from_text_bounds(void **state)
{
    num out;
    (void)state;
    /* only len bytes count: the text need not be NUL-terminated */
    assert_int_equal(num_from_text("12abc", 2, &out), 0);
    check_num(out, I(12), "prefix");
    assert_int_equal(num_from_text("1.5}", 3, &out), 0);
    check_num(out, D(1.5), "prefix");

    /* long literals go through a heap copy */
    char text[700];
    memset(text, '0', sizeof text);
    text[1] = '.';
    text[600] = '1';
    assert_int_equal(num_from_text(text, 601, &out), 0);
    check_num(out, D(0.0), "1e-599 underflows");
    text[0] = '1';
    memset(text + 1, '0', 299);
    assert_int_equal(num_from_text(text, 300, &out), 0);
    check_num(out, D(1e299), "300-digit integer");
    assert_int_equal(num_from_text(text, 400, &out), -ERANGE);
    text[0] = '0';
    text[1] = '.';
    memset(text + 2, '0', 300);
    text[302] = '3';
    assert_int_equal(num_from_text(text, 303, &out), 0);
    check_num(out, D(3e-301), "long fraction");
}

static void test_from_literal_sign(void **state)
{
    num out;
    (void)state;
    assert_int_equal(num_from_literal("9223372036854775808", 19, 1, &out), 0);
    check_num(out, I(INT64_MIN), "negated 2^63");
    assert_int_equal(num_from_literal("9223372036854775808", 19, 0, &out), 0);
    check_num(out, D(9223372036854775808.0), "2^63");
    assert_int_equal(num_from_literal("0.5", 3, 1, &out), 0);
    check_num(out, D(-0.5), "negated 0.5");
    assert_int_equal(num_from_literal("0", 1, 1, &out), 0);
    check_num(out, I(0), "negated 0");
    assert_int_equal(num_from_literal("-1", 2, 0, &out), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_table),      cmocka_unit_test(test_op_names),
        cmocka_unit_test(test_fmt_table),        cmocka_unit_test(test_fmt_errors),
        cmocka_unit_test(test_fmt_round_trip),   cmocka_unit_test(test_from_text_table),
        cmocka_unit_test(test_from_text_bounds), cmocka_unit_test(test_from_literal_sign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
