/* Unit tests for batch_input: numbers from a stream, malformed lines
 * reported with their numbers, nothing blocking, bounded memory. */
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

#include "batch_input.h"

/* A reader on the read end of a fresh pipe; *wfd gets the write end. */
static void open_pipe(batch_input *in, int *wfd)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", fds[0]);
    assert_int_equal(batch_input_open(in, path), 0);
    close(fds[0]); /* the reader opened its own descriptor */
    assert_int_equal(in->size, -1);
    *wfd = fds[1];
}

static void put(int fd, const char *s)
{
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Next line, filling as needed; the caller knows data is there. */
static enum batch_line next(batch_input *in, char *out, size_t size)
{
    const char *t;
    size_t n;
    enum batch_line k;
    while ((k = batch_input_next(in, &t, &n)) == BATCH_LINE_WAIT)
        assert_true(batch_input_fill(in) >= 0);
    if (k == BATCH_LINE_NUMBER || k == BATCH_LINE_MALFORMED)
        snprintf(out, size, "%.*s", (int)n, t);
    return k;
}

static void numbers_blanks_and_malformed_lines(void **state)
{
    batch_input in;
    int w;
    open_pipe(&in, &w);
    put(w, "12\n\n  7 \r\nabc\n-3.5e2\n0x10\n\t\n1.2.3\n99");
    close(w);
    char s[64];
    assert_int_equal(next(&in, s, sizeof s), BATCH_LINE_NUMBER);
    assert_string_equal(s, "12");
    assert_int_equal(in.lineno, 1);
    assert_int_equal(next(&in, s, sizeof s), BATCH_LINE_NUMBER);
    assert_string_equal(s, "7");
    assert_int_equal(in.lineno, 3);
    assert_int_equal(next(&in, s, sizeof s), BATCH_LINE_MALFORMED);
    assert_string_equal(s, "abc");
    assert_int_equal(in.lineno, 4);
    assert_string_equal(in.why, "not a number");
    assert_int_equal(next(&in, s, sizeof s), BATCH_LINE_NUMBER);
    assert_string_equal(s, "-3.5e2");
    assert_int_equal(next(&in, s, sizeof s), BATCH_LINE_MALFORMED);
    assert_string_equal(s, "0x10");
    assert_int_equal(next(&in, s, sizeof s), BATCH_LINE_MALFORMED);
    assert_string_equal(s, "1.2.3");
    assert_int_equal(in.lineno, 8);
    /* The last line has no newline and still counts. */
    assert_int_equal(next(&in, s, sizeof s), BATCH_LINE_NUMBER);
    assert_string_equal(s, "99");
    assert_int_equal(in.lineno, 9);
    assert_int_equal(next(&in, s, sizeof s), BATCH_LINE_END);
    batch_input_close(&in);
}

/* A half-written line waits for the rest instead of being split. */
static void partial_lines_wait(void **state)
{
    batch_input in;
    int w;
    open_pipe(&in, &w);
    const char *t;
    size_t n;
    assert_int_equal(batch_input_next(&in, &t, &n), BATCH_LINE_WAIT);
    put(w, "12");
    assert_int_equal(batch_input_fill(&in), 2);
    assert_int_equal(batch_input_next(&in, &t, &n), BATCH_LINE_WAIT);
    put(w, "34\n5");
    assert_int_equal(batch_input_fill(&in), 4);
    assert_int_equal(batch_input_next(&in, &t, &n), BATCH_LINE_NUMBER);
    assert_int_equal(n, 4);
    assert_memory_equal(t, "1234", 4);
    assert_int_equal(batch_input_next(&in, &t, &n), BATCH_LINE_WAIT);
    close(w);
    assert_int_equal(batch_input_fill(&in), 0);
    assert_int_equal(batch_input_next(&in, &t, &n), BATCH_LINE_NUMBER);
    assert_memory_equal(t, "5", 1);
    assert_int_equal(batch_input_next(&in, &t, &n), BATCH_LINE_END);
    assert_int_equal(in.pos, 6);
    batch_input_close(&in);
}

/* A line far longer than the buffer is reported once and skipped whole. */
static void huge_line_is_malformed_once(void **state)
{
    char path[] = "/tmp/test_batch_input.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    put(fd, "1\n");
    char chunk[4096];
    memset(chunk, '7', sizeof chunk);
    for (int i = 0; i < 100; i++)
        assert_int_equal(write(fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    put(fd, "\n2\n");
    close(fd);
    batch_input in;
    assert_int_equal(batch_input_open(&in, path), 0);
    unlink(path);
    assert_int_equal(in.size, 2 + 409600 + 3);
    char s[64];
    assert_int_equal(next(&in, s, sizeof s), BATCH_LINE_NUMBER);
    assert_int_equal(next(&in, s, sizeof s), BATCH_LINE_MALFORMED);
    assert_string_equal(in.why, "line too long");
    assert_int_equal(in.lineno, 2);
    assert_int_equal(next(&in, s, sizeof s), BATCH_LINE_NUMBER);
    assert_string_equal(s, "2");
    assert_int_equal(in.lineno, 3);
    assert_int_equal(next(&in, s, sizeof s), BATCH_LINE_END);
    assert_int_equal(in.pos, in.size);
    batch_input_close(&in);
}

static void missing_file(void **state)
{
    batch_input in;
    assert_int_equal(batch_input_open(&in, "/nonexistent/input"), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_blanks_and_malformed_lines),
        cmocka_unit_test(partial_lines_wait),
        cmocka_unit_test(huge_line_is_malformed_once),
        cmocka_unit_test(missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
