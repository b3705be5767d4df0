/* Unit tests for nodename: --name when given, else HOSTNAME:PORT, the
 * same for the shared store and cluster mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nodename.h"

static void given_name_wins(void **state)
{
    (void)state;
    char out[32];
    nodename_get("alpha", 8080, out, sizeof out);
    assert_string_equal(out, "alpha");
    /* Truncated to the buffer, never past it. */
    char small[4];
    nodename_get("alpha", 8080, small, sizeof small);
    assert_string_equal(small, "alp");
}

static void default_is_host_and_port(void **state)
{
    (void)state;
    char host[64] = "node", want[96], out[96], none[96];
    if (gethostname(host, sizeof host - 1) < 0 || !host[0])
        snprintf(host, sizeof host, "node");
    snprintf(want, sizeof want, "%s:%d", host, 8081);
    nodename_get("", 8081, out, sizeof out);
    assert_string_equal(out, want);
    nodename_get(NULL, 8081, none, sizeof none);
    assert_string_equal(none, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(given_name_wins),
        cmocka_unit_test(default_is_host_and_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
