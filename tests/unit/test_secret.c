/* Unit tests for secret: how a token file is read. */
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

#include "secret.h"

/* Writes text to a fresh temporary file; its path goes to path. */
static void write_tmp(char path[64], const char *text, size_t len)
{
    snprintf(path, 64, "/tmp/test_secret_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static void check_read(const char *text, size_t len, int want_rc, const char *want)
{
    char path[64];
    write_tmp(path, text, len);
    char *tok = (char *)"untouched";
    size_t n = 999;
    assert_int_equal(secret_read(path, &tok, &n), want_rc);
    if (want) {
        assert_string_equal(tok, want);
        assert_int_equal(n, strlen(want));
    } else {
        assert_null(tok);
        assert_int_equal(n, 999);
    }
    secret_free(tok);
    unlink(path);
}

#define READ(lit, rc, want) check_read(lit, sizeof(lit) - 1, rc, want)

static void test_first_line_trimmed(void **state)
{
    (void)state;
    READ("abc\n", 0, "abc");
    READ("  \tabc def \r\nsecond line\n", 0, "abc def");
    READ("no-newline", 0, "no-newline");
}

static void test_no_token(void **state)
{
    (void)state;
    READ("", -ENODATA, NULL);
    READ(" \t\r\n", -ENODATA, NULL);
    READ("\nabc\n", -ENODATA, NULL); /* only the first line counts */
}

static void test_missing_file(void **state)
{
    (void)state;
    char *tok = (char *)"untouched";
    assert_int_equal(secret_read("/nonexistent/token", &tok, NULL), -ENOENT);
    assert_null(tok);
    secret_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_line_trimmed),
        cmocka_unit_test(test_no_token),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
