/* Unit tests for shsplit: task argument strings split like a POSIX shell. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "shsplit.h"

/* Splits in and compares with the NULL-terminated list of expected words. */
__attribute__((sentinel)) static void check_words(const char *in, ...)
{
    char **argv = NULL;
    int argc = -1;
    const char *err = NULL;
    assert_int_equal(shsplit(in, strlen(in), &argv, &argc, &err), 0);
    assert_non_null(argv);

    va_list ap;
    va_start(ap, in);
    int i = 0;
    for (const char *w; (w = va_arg(ap, const char *)) != NULL; i++) {
        assert_true(i < argc);
        assert_string_equal(argv[i], w);
    }
    va_end(ap);
    assert_int_equal(argc, i);
    assert_null(argv[argc]);
    shsplit_free(argv);
}

static void check_error(const char *in, size_t len, const char *want_err)
{
    char *sentinel[1];
    char **argv = sentinel;
    int argc = 42;
    const char *err = NULL;
    assert_int_equal(shsplit(in, len, &argv, &argc, &err), -EINVAL);
    assert_ptr_equal(argv, sentinel);
    assert_int_equal(argc, 42);
    assert_non_null(err);
    assert_string_equal(err, want_err);
}

#define ERR(lit, want) check_error(lit, sizeof(lit) - 1, want)

static void test_blanks_separate_words(void **state)
{
    check_words("", NULL);
    check_words("   \t\n ", NULL);
    check_words("a b", "a", "b", NULL);
    check_words("  a   b  ", "a", "b", NULL);
    check_words("a\tb\nc", "a", "b", "c", NULL);
    check_words("--n=5 input.txt", "--n=5", "input.txt", NULL);
    check_words("a\rb", "a\rb", NULL); /* CR is not a separator */
    check_words("\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80", "\xc3\xa9t\xc3\xa9", "\xf0\x9f\x98\x80",
                NULL);
}

static void test_single_quotes(void **state)
{
    check_words("'a b'", "a b", NULL);
    check_words("''", "", NULL);
    check_words("'' ''", "", "", NULL);
    check_words("'a\\b'", "a\\b", NULL); /* backslash is literal */
    check_words("'a\\'", "a\\", NULL);
    check_words("'\"$x\"'", "\"$x\"", NULL);
    check_words("'a\nb'", "a\nb", NULL);
}

static void test_double_quotes(void **state)
{
    check_words("\"a \\\"b\\\"\"", "a \"b\"", NULL);
    check_words("\"\"", "", NULL);
    check_words("\"\\$x\"", "$x", NULL);
    check_words("\"\\n\"", "\\n", NULL); /* backslash-n stays two characters */
    check_words("\"\\\\\"", "\\", NULL);
    check_words("\"\\`\"", "`", NULL);
    check_words("\"a\\\nb\"", "ab", NULL); /* backslash-newline removed */
    check_words("\"$HOME 'x'\"", "$HOME 'x'", NULL);
    check_words("\"a\tb\nc\"", "a\tb\nc", NULL);
}

static void test_backslash_outside_quotes(void **state)
{
    check_words("a\\ b", "a b", NULL);
    check_words("\\'", "'", NULL);
    check_words("\\\"", "\"", NULL);
    check_words("\\\\", "\\", NULL);
    check_words("\\n", "n", NULL);
    check_words("a\\\nb", "ab", NULL);       /* line continuation */
    check_words("a \\\n b", "a", "b", NULL); /* continuation alone is no word */
    check_words("\\\n", NULL);
}

static void test_quotes_join_parts(void **state)
{
    check_words("a\"b\"'c'", "abc", NULL);
    check_words("a''b", "ab", NULL);
    check_words("--msg=\"hello world\"", "--msg=hello world", NULL);
    check_words("x\"\"y ''z", "xy", "z", NULL);
}

static void test_no_expansion(void **state)
{
    check_words("$HOME *", "$HOME", "*", NULL);
    check_words("~ a#b # c", "~", "a#b", "#", "c", NULL);
    check_words("a|b;c&&d>e", "a|b;c&&d>e", NULL);
    check_words("$(id) `id`", "$(id)", "`id`", NULL);
}

static void test_errors(void **state)
{
    ERR("'abc", "unterminated single quote");
    ERR("a 'b", "unterminated single quote");
    ERR("\"abc", "unterminated double quote");
    ERR("\"abc\\\"", "unterminated double quote");
    ERR("\"abc\\", "unterminated double quote");
    ERR("abc\\", "trailing backslash");
    ERR("\\", "trailing backslash");
    ERR("a\0b", "NUL byte in command line");
    ERR("'a\0'", "NUL byte in command line");
}

static void test_err_optional_and_len(void **state)
{
    char **argv = NULL;
    int argc = 0;
    assert_int_equal(shsplit("'x", 2, &argv, &argc, NULL), -EINVAL);
    assert_null(argv);

    /* Only len bytes are read: the quote after them is not seen. */
    assert_int_equal(shsplit("ab 'c", 2, &argv, &argc, NULL), 0);
    assert_int_equal(argc, 1);
    assert_string_equal(argv[0], "ab");
    shsplit_free(argv);

    assert_int_equal(shsplit(NULL, 0, &argv, &argc, NULL), 0);
    assert_int_equal(argc, 0);
    assert_null(argv[0]);
    shsplit_free(argv);
    shsplit_free(NULL);
}

static void test_many_words(void **state)
{
    buf in = BUF_INIT;
    for (int i = 0; i < 10000; i++)
        buf_printf(&in, "w%d '' ", i);
    char **argv = NULL;
    int argc = 0;
    assert_int_equal(shsplit(in.data, in.len, &argv, &argc, NULL), 0);
    assert_int_equal(argc, 20000);
    char want[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(want, sizeof want, "w%d", i);
        assert_string_equal(argv[2 * i], want);
        assert_string_equal(argv[2 * i + 1], "");
    }
    assert_null(argv[argc]);
    shsplit_free(argv);
    buf_destroy(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blanks_separate_words),
        cmocka_unit_test(test_single_quotes),
        cmocka_unit_test(test_double_quotes),
        cmocka_unit_test(test_backslash_outside_quotes),
        cmocka_unit_test(test_quotes_join_parts),
        cmocka_unit_test(test_no_expansion),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_err_optional_and_len),
        cmocka_unit_test(test_many_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
