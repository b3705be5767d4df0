/* Unit tests for httpc's write callback: bodies kept whole up to the
 * sink's cap, and the transfer failed (0 taken) past it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "httpc.h"

static void keeps_up_to_the_cap_then_refuses(void **state)
{
    buf b = BUF_INIT;
    httpc_sink sink = {&b, 10};
    char data[] = "0123456789abc";
    assert_int_equal(httpc_sink_write(data, 1, 4, &sink), 4);
    assert_int_equal(httpc_sink_write(data + 4, 2, 3, &sink), 6);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    /* One byte more would pass the cap: curl is told to stop. */
    assert_int_equal(httpc_sink_write(data + 10, 1, 1, &sink), 0);
    assert_int_equal(b.len, 10);
    /* Empty calls are taken (curl may make them). */
    assert_int_equal(httpc_sink_write(data, 1, 0, &sink), 0);
    buf_destroy(&b);
}

static void the_cap_counts_what_the_buffer_held(void **state)
{
    buf b = BUF_INIT;
    buf_puts(&b, "12345678");
    httpc_sink sink = {&b, 10};
    assert_int_equal(httpc_sink_write("abc", 1, 3, &sink), 0);
    assert_int_equal(httpc_sink_write("ab", 1, 2, &sink), 2);
    assert_string_equal(b.data, "12345678ab");
    buf_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keeps_up_to_the_cap_then_refuses),
        cmocka_unit_test(the_cap_counts_what_the_buffer_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
