/* Unit tests for the node registry: idempotent announces, slot leasing
 * spread over nodes, health changes and probes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"
#include "timefmt.h"

static void announce_is_idempotent_by_name(void **state)
{
    registry r;
    assert_int_equal(registry_init(&r), 0);
    assert_int_equal(registry_announce(&r, "w1", "http://127.0.0.1:9001", 1), 1);
    assert_int_equal(registry_announce(&r, "w1", "http://127.0.0.1:9002", 2), 0);
    assert_int_equal(registry_count(&r), 1);
    registry_node_info *nodes;
    size_t n;
    assert_int_equal(registry_snapshot(&r, &nodes, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(nodes[0].url, "http://127.0.0.1:9002");
    assert_int_equal(nodes[0].slots, 2);
    assert_true(nodes[0].healthy);
    free(nodes);
    assert_int_equal(registry_announce(&r, "", "http://x", 1), -EINVAL);
    assert_int_equal(registry_announce(&r, "w2", "http://x", 0), -EINVAL);
    registry_destroy(&r);
}

static void leases_spread_and_respect_slots(void **state)
{
    registry r;
    assert_int_equal(registry_init(&r), 0);
    registry_lease a, b, c;
    assert_int_equal(registry_acquire(&r, &a), -EAGAIN); /* no nodes */
    registry_announce(&r, "w1", "http://h:1", 1);
    registry_announce(&r, "w2", "http://h:2", 1);
    assert_int_equal(registry_acquire(&r, &a), 0);
    assert_int_equal(registry_acquire(&r, &b), 0);
    assert_string_not_equal(a.name, b.name);
    assert_int_equal(registry_acquire(&r, &c), -EAGAIN); /* every slot taken */
    registry_release(&r, &a, REGISTRY_ANSWERED, NULL);
    assert_int_equal(registry_acquire(&r, &c), 0);
    assert_string_equal(c.name, a.name);
    assert_string_equal(c.url, a.url);
    registry_release(&r, &b, REGISTRY_ANSWERED, NULL);
    registry_release(&r, &c, REGISTRY_UNUSED, NULL);
    registry_node_info *nodes;
    size_t n;
    assert_int_equal(registry_snapshot(&r, &nodes, &n), 0);
    assert_int_equal(nodes[0].done + nodes[1].done, 2); /* unused leases do not count */
    assert_int_equal(nodes[0].in_flight + nodes[1].in_flight, 0);
    free(nodes);
    registry_destroy(&r);
}

static void round_robin_when_idle(void **state)
{
    registry r;
    assert_int_equal(registry_init(&r), 0);
    registry_announce(&r, "w1", "http://h:1", 4);
    registry_announce(&r, "w2", "http://h:2", 4);
    registry_announce(&r, "w3", "http://h:3", 4);
    char seen[3][REGISTRY_NAME_MAX];
    for (int i = 0; i < 3; i++) {
        registry_lease l;
        assert_int_equal(registry_acquire(&r, &l), 0);
        strcpy(seen[i], l.name);
        registry_release(&r, &l, REGISTRY_ANSWERED, NULL);
    }
    assert_string_not_equal(seen[0], seen[1]);
    assert_string_not_equal(seen[1], seen[2]);
    assert_string_not_equal(seen[0], seen[2]);
    registry_destroy(&r);
}

static void failure_marks_unhealthy_until_probe_or_announce(void **state)
{
    registry r;
    assert_int_equal(registry_init(&r), 0);
    registry_announce(&r, "w1", "http://h:1", 2);
    registry_lease l, p;
    assert_int_equal(registry_acquire(&r, &l), 0);
    registry_release(&r, &l, REGISTRY_FAILED, "connection refused");
    assert_int_equal(registry_healthy(&r), 0);
    assert_int_equal(registry_acquire(&r, &l), -EAGAIN);
    /* The first probe waits a second. */
    assert_int_equal(registry_probe_due(&r, time_mono_us(), &p), -EAGAIN);
    int64_t later = time_mono_us() + 2 * 1000 * 1000;
    assert_int_equal(registry_probe_due(&r, later, &p), 0);
    assert_true(p.probe);
    assert_int_equal(registry_probe_due(&r, later, &l), -EAGAIN); /* one at a time */
    registry_release(&r, &p, REGISTRY_FAILED, "still refused");
    /* The interval doubled: not due 1.5 s later, due 2.5 s later. */
    assert_int_equal(registry_probe_due(&r, time_mono_us() + 1500 * 1000, &p), -EAGAIN);
    assert_int_equal(registry_probe_due(&r, time_mono_us() + 2500 * 1000, &p), 0);
    registry_release(&r, &p, REGISTRY_ANSWERED, NULL);
    assert_int_equal(registry_healthy(&r), 1);

    registry_node_info *nodes;
    size_t n;
    assert_int_equal(registry_snapshot(&r, &nodes, &n), 0);
    assert_int_equal(nodes[0].done, 0); /* probes are not work */
    assert_int_equal(nodes[0].failures, 1);
    assert_string_equal(nodes[0].last_error, "still refused");
    free(nodes);

    assert_int_equal(registry_acquire(&r, &l), 0);
    registry_release(&r, &l, REGISTRY_FAILED, "timeout");
    assert_int_equal(registry_healthy(&r), 0);
    assert_int_equal(registry_announce(&r, "w1", "http://h:1", 2), 0);
    assert_int_equal(registry_healthy(&r), 1);
    registry_destroy(&r);
}

static void silent_unhealthy_nodes_are_forgotten(void **state)
{
    registry r;
    assert_int_equal(registry_init(&r), 0);
    assert_int_equal(registry_announce(&r, "a", "http://127.0.0.1:9001", 1), 1);
    assert_int_equal(registry_announce(&r, "b", "http://127.0.0.1:9002", 1), 1);
    assert_int_equal(registry_announce(&r, "c", "http://127.0.0.1:9003", 1), 1);
    int64_t later = time_now_us() + 60 * 1000000LL;
    /* Healthy nodes stay however long they are silent. */
    assert_int_equal(registry_forget_silent(&r, later, 1000000), 0);

    /* a fails and is idle; b (two slots) fails with a second request
     * still in flight. */
    assert_int_equal(registry_announce(&r, "b", "http://127.0.0.1:9002", 2), 0);
    registry_lease la, lb1, lb2, lc;
    assert_int_equal(registry_acquire(&r, &la), 0);
    assert_int_equal(registry_acquire(&r, &lb1), 0);
    assert_int_equal(registry_acquire(&r, &lc), 0);
    assert_int_equal(registry_acquire(&r, &lb2), 0);
    assert_string_equal(la.name, "a");
    assert_string_equal(lb1.name, "b");
    assert_string_equal(lc.name, "c");
    assert_string_equal(lb2.name, "b");
    registry_release(&r, &lc, REGISTRY_UNUSED, NULL);
    registry_release(&r, &la, REGISTRY_FAILED, "refused");
    registry_release(&r, &lb1, REGISTRY_FAILED, "refused");

    /* Not silent long enough yet: nothing goes. */
    assert_int_equal(registry_forget_silent(&r, time_now_us(), 30 * 1000000LL), 0);
    /* Long silent: a goes; b has a request in flight; c is healthy. */
    assert_int_equal(registry_forget_silent(&r, later, 1000000), 1);
    assert_int_equal(registry_count(&r), 2);
    registry_node_info *nodes;
    size_t n;
    assert_int_equal(registry_snapshot(&r, &nodes, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(nodes[0].name, "b");
    assert_string_equal(nodes[1].name, "c");
    free(nodes);

    /* Once b's last request is back it goes too; its lease is harmless. */
    registry_release(&r, &lb2, REGISTRY_FAILED, "refused");
    assert_int_equal(registry_forget_silent(&r, later, 1000000), 1);
    assert_int_equal(registry_count(&r), 1);
    registry_release(&r, &lb2, REGISTRY_UNUSED, NULL);
    /* Announcing again brings a forgotten node back as new. */
    assert_int_equal(registry_announce(&r, "a", "http://127.0.0.1:9001", 1), 1);
    assert_int_equal(registry_healthy(&r), 2);
    registry_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(announce_is_idempotent_by_name),
        cmocka_unit_test(leases_spread_and_respect_slots),
        cmocka_unit_test(round_robin_when_idle),
        cmocka_unit_test(failure_marks_unhealthy_until_probe_or_announce),
        cmocka_unit_test(silent_unhealthy_nodes_are_forgotten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
