/* Unit tests for url: the base URLs nodes of a cluster are reached on. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "url.h"

static void accepted(void **state)
{
    (void)state;
    size_t len = 0;
    assert_int_equal(url_check("http://10.0.0.1:8080", 0, &len, NULL), 0);
    assert_int_equal(len, 20);
    assert_int_equal(url_check("HTTPS://master", 0, &len, NULL), 0);
    assert_int_equal(len, 14);
    /* Trailing slashes are not counted: the callers append paths. */
    assert_int_equal(url_check("http://h:1//", 0, &len, NULL), 0);
    assert_int_equal(len, 10);
    assert_int_equal(url_check("http://h:1/", 11, NULL, NULL), 0);
}

static void refused(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t max;
        const char *why;
    } cases[] = {
        {"", 0, "not a URL like http://HOST:PORT"},
        {"10.0.0.1:8080", 0, "not a URL like http://HOST:PORT"},
        {"ftp://h", 0, "not a URL like http://HOST:PORT"},
        {"http://", 0, "not a URL like http://HOST:PORT"},
        {"https:///", 0, "not a URL like http://HOST:PORT"},
        {"http://a b", 0, "not a URL: it has a space or control character"},
        {"http://a\tb", 0, "not a URL: it has a space or control character"},
        {"http://a\x7f", 0, "not a URL: it has a space or control character"},
        {"http://h:1", 10, "too long for a URL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = NULL;
        size_t len = 99;
        assert_int_equal(url_check(cases[i].s, cases[i].max, &len, &why), -EINVAL);
        assert_string_equal(why, cases[i].why);
        assert_int_equal(len, 99);
    }
    assert_int_equal(url_check("nope", 0, NULL, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepted),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
