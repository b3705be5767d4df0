/* Unit tests for buf: the growable buffer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <malloc.h>

#include "buf.h"

static void test_empty_buf(void **state)
{
    buf b = BUF_INIT;
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_false(buf_failed(&b));
    buf_destroy(&b); /* destroying an unused buf is fine */
    assert_null(b.data);
}

static void test_append_keeps_nul_terminator(void **state)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_append(&b, "ab", 2), 0);
    assert_int_equal(buf_puts(&b, "cd"), 0);
    assert_int_equal(buf_putc(&b, 'e'), 0);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "abcde");
    assert_true(b.cap > b.len);
    buf_destroy(&b);
}

static void test_binary_data_with_nul(void **state)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_append(&b, "a\0b", 3), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 4); /* plus the terminator */
    buf_destroy(&b);
}

static void test_growth_over_many_appends(void **state)
{
    buf b = BUF_INIT;
    for (int i = 0; i < 100000; i++)
        assert_int_equal(buf_putc(&b, (char)('a' + i % 26)), 0);
    assert_int_equal(b.len, 100000);
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(b.data[i], 'a' + (int)(i % 26));
    assert_int_equal(b.data[b.len], '\0');
    buf_destroy(&b);
}

static void test_printf_short_and_long(void **state)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(b.data, "42-x");

    /* Longer than the 256-byte stack buffer buf_vprintf tries first. */
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(buf_printf(&b, "[%s]%d", big, 7), 0);
    assert_int_equal(b.len, 4 + 1 + 999 + 1 + 1);
    assert_memory_equal(b.data, "42-x[", 5);
    assert_int_equal(b.data[5], 'z');
    assert_int_equal(b.data[5 + 998], 'z');
    assert_string_equal(b.data + 5 + 999, "]7");
    buf_destroy(&b);
}

static void test_reset_keeps_storage(void **state)
{
    buf b = BUF_INIT;
    buf_puts(&b, "hello");
    char *data = b.data;
    size_t cap = b.cap;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    buf_puts(&b, "x");
    assert_string_equal(b.data, "x");
    buf_destroy(&b);
}

static void test_steal(void **state)
{
    buf b = BUF_INIT;
    buf_puts(&b, "owned");
    size_t len = 0;
    char *s = buf_steal(&b, &len);
    assert_non_null(s);
    assert_string_equal(s, "owned");
    assert_int_equal(len, 5);
    assert_null(b.data); /* b is reset and reusable */
    assert_int_equal(b.len, 0);
    free(s);

    /* An untouched buf still yields an allocated empty string. */
    s = buf_steal(&b, &len);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);

    /* len_out is optional. */
    buf_puts(&b, "z");
    s = buf_steal(&b, NULL);
    assert_string_equal(s, "z");
    free(s);
}

/* A finished task keeps its output for a long time: the stolen block
 * must not carry the room that doubling left (64 KiB + NUL would sit in
 * 128 KiB). */
static void test_steal_trims_unused_room(void **state)
{
    (void)state;
    buf b = BUF_INIT;
    char *chunk = malloc(65536);
    assert_non_null(chunk);
    memset(chunk, 'x', 65536);
    assert_int_equal(buf_append(&b, chunk, 65536), 0);
    assert_true(b.cap >= 2 * 65536);
    size_t len;
    char *s = buf_steal(&b, &len);
    assert_int_equal(len, 65536);
    assert_true(malloc_usable_size(s) < 65536 + 4096);
    assert_memory_equal(s, chunk, 65536);
    assert_int_equal(s[len], '\0');
    free(s);
    free(chunk);
}

static void test_failure_is_sticky(void **state)
{
    buf b = BUF_INIT;
    buf_puts(&b, "abc");
    /* An impossible size fails without touching the contents. */
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOMEM);
    assert_true(buf_failed(&b));
    assert_string_equal(b.data, "abc");
    assert_int_equal(buf_puts(&b, "more"), -ENOMEM);
    assert_int_equal(buf_printf(&b, "%d", 1), -ENOMEM);
    assert_int_equal(b.len, 3);

    /* A failed buf cannot be stolen: the caller must notice the failure. */
    size_t len = 99;
    assert_null(buf_steal(&b, &len));
    assert_null(b.data);

    /* reset clears the failure. */
    buf_puts(&b, "x");
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOMEM);
    buf_reset(&b);
    assert_false(buf_failed(&b));
    assert_int_equal(buf_puts(&b, "ok"), 0);
    assert_string_equal(b.data, "ok");
    buf_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_buf),
        cmocka_unit_test(test_append_keeps_nul_terminator),
        cmocka_unit_test(test_binary_data_with_nul),
        cmocka_unit_test(test_growth_over_many_appends),
        cmocka_unit_test(test_printf_short_and_long),
        cmocka_unit_test(test_reset_keeps_storage),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_steal_trims_unused_room),
        cmocka_unit_test(test_failure_is_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
