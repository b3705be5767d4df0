/* Unit tests for rndlines: the splitter and parser of worker streams. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rndlines.h"

#define MAXV 64

struct collect {
    int64_t v[MAXV];
    size_t n;
    size_t stop_after; /* 0: never ask to stop */
};

static int collect_fn(void *arg, int64_t value)
{
    struct collect *c = arg;
    if (c->n < MAXV)
        c->v[c->n] = value;
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static void feed_all(rndlines *r, const char *s, size_t len, struct collect *c)
{
    assert_int_equal(rndlines_feed(r, s, len, collect_fn, c), len);
}

static void test_whole_lines(void **state)
{
    rndlines r;
    struct collect c = {0};
    rndlines_init(&r);
    const char *s = "rnd=97\nrnd=18\nrnd=0\nrnd=99\n";
    feed_all(&r, s, strlen(s), &c);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.v[0], 97);
    assert_int_equal(c.v[1], 18);
    assert_int_equal(c.v[2], 0);
    assert_int_equal(c.v[3], 99);
    assert_int_equal(r.values, 4);
    assert_int_equal(r.malformed, 0);
}

/* Every way of cutting the stream into two pieces, and byte by byte,
 * gives the same values as one piece. */
static void test_split_anywhere(void **state)
{
    const char *s = "rnd=97\r\nrnd=18\n\nrnd=5\r\nbad\nrnd=42\n";
    size_t len = strlen(s);
    for (size_t cut = 0; cut <= len; cut++) {
        rndlines r;
        struct collect c = {0};
        rndlines_init(&r);
        feed_all(&r, s, cut, &c);
        feed_all(&r, s + cut, len - cut, &c);
        assert_int_equal(c.n, 4);
        assert_int_equal(c.v[0], 97);
        assert_int_equal(c.v[1], 18);
        assert_int_equal(c.v[2], 5);
        assert_int_equal(c.v[3], 42);
        assert_int_equal(r.malformed, 1);
    }
    rndlines r;
    struct collect c = {0};
    rndlines_init(&r);
    for (size_t i = 0; i < len; i++)
        feed_all(&r, s + i, 1, &c);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.v[3], 42);
    assert_int_equal(r.malformed, 1);
}

static void test_malformed_counted(void **state)
{
    rndlines r;
    struct collect c = {0};
    rndlines_init(&r);
    const char *s = "rnd=\n"
                    "rnd=abc\n"
                    "foo\n"
                    "rnd=1x\n"
                    "RND=5\n"
                    "rnd=1234567890123456789\n" /* 19 digits */
                    "rnd=--1\n"
                    "rnd = 3\n"
                    "rnd=7\n";
    feed_all(&r, s, strlen(s), &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.v[0], 7);
    assert_int_equal(r.malformed, 8);
    assert_int_equal(r.values, 1);

    /* A NUL inside a line makes it malformed rather than truncating it. */
    const char nul[] = "rnd=4\0 2\nrnd=8\n";
    feed_all(&r, nul, sizeof nul - 1, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.v[1], 8);
    assert_int_equal(r.malformed, 9);
}

static void test_blanks_and_signs(void **state)
{
    int64_t v = 0;
    assert_int_equal(rndlines_parse_line("", 0, &v), 0);
    assert_int_equal(rndlines_parse_line(" \t\r", 3, &v), 0);
    assert_int_equal(rndlines_parse_line("  rnd= 12 \r", 11, &v), 1);
    assert_int_equal(v, 12);
    assert_int_equal(rndlines_parse_line("rnd=-3", 6, &v), 1);
    assert_int_equal(v, -3);
    assert_int_equal(rndlines_parse_line("rnd=123456789012345678", 22, &v), 1);
    assert_int_equal(v, 123456789012345678LL);
    assert_int_equal(rndlines_parse_line("rnd=-", 5, &v), -EINVAL);
    assert_int_equal(rndlines_parse_line("rnd=5\r\r", 7, &v), -EINVAL);
}

static void test_overlong_line(void **state)
{
    char big[1000];
    memset(big, 'x', sizeof big);
    rndlines r;
    struct collect c = {0};
    rndlines_init(&r);
    /* A long line in several pieces, then normal lines: one malformed. */
    feed_all(&r, big, 200, &c);
    feed_all(&r, big, 200, &c);
    feed_all(&r, big, sizeof big, &c);
    feed_all(&r, "rnd=1\nrnd=2\n", 12, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.v[0], 2);
    assert_int_equal(r.malformed, 1);

    /* Exactly the limit still parses; one byte more does not. */
    char line[RNDLINES_MAX_LINE + 2];
    memset(line, ' ', sizeof line);
    memcpy(line + RNDLINES_MAX_LINE - 5, "rnd=6", 5);
    line[RNDLINES_MAX_LINE] = '\n';
    feed_all(&r, line, RNDLINES_MAX_LINE + 1, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.v[1], 6);
    memset(line, ' ', sizeof line);
    memcpy(line + RNDLINES_MAX_LINE - 4, "rnd=6", 5);
    line[RNDLINES_MAX_LINE + 1] = '\n';
    feed_all(&r, line, RNDLINES_MAX_LINE + 2, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(r.malformed, 2);
}

static void test_finish_and_discard(void **state)
{
    rndlines r;
    struct collect c = {0};
    rndlines_init(&r);
    feed_all(&r, "rnd=1\nrnd=42", 12, &c);
    assert_int_equal(c.n, 1);
    /* A clean end completes the last line. */
    rndlines_finish(&r, collect_fn, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.v[1], 42);
    assert_int_equal(rndlines_finish(&r, collect_fn, &c), 0);
    assert_int_equal(c.n, 2);

    /* A cut stream must not turn "rnd=4" (of rnd=42) into 4. */
    feed_all(&r, "rnd=4", 5, &c);
    rndlines_discard(&r);
    assert_int_equal(r.dropped, 1);
    feed_all(&r, "rnd=9\n", 6, &c);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.v[2], 9);
    rndlines_discard(&r);
    assert_int_equal(r.dropped, 1);
    assert_int_equal(r.malformed, 0);
}

static void test_stop_request(void **state)
{
    rndlines r;
    struct collect c = {0};
    c.stop_after = 2;
    rndlines_init(&r);
    const char *s = "rnd=1\nrnd=2\nrnd=3\n";
    size_t used = rndlines_feed(&r, s, strlen(s), collect_fn, &c);
    assert_int_equal(used, 12);
    assert_int_equal(c.n, 2);
    c.stop_after = 0;
    feed_all(&r, s + used, strlen(s) - used, &c);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.v[2], 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_lines),       cmocka_unit_test(test_split_anywhere),
        cmocka_unit_test(test_malformed_counted), cmocka_unit_test(test_blanks_and_signs),
        cmocka_unit_test(test_overlong_line),     cmocka_unit_test(test_finish_and_discard),
        cmocka_unit_test(test_stop_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
