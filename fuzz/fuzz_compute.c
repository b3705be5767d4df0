/* fuzz_compute: arbitrary bytes as a /compute request body (a worker reads
 * it from the network) and as a worker's answer (the master reads it).
 * Parsing must never crash or read out of bounds; a request that parses
 * must survive a round trip through the master's request writer with the
 * same exact numbers; jsonscan's spans must lie inside the input. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "fuzz_thread.h"
#include "jsonscan.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* The same value after printing and reading back. Integral doubles below
 * 2^53 print without a fraction ("6") and come back as integers; -0.0
 * comes back as 0. */
static int same(num a, num b)
{
    if (a.is_int)
        return b.is_int && a.i == b.i;
    return num_to_double(b) == a.d;
}

/* One input, on the small-stack thread. */
static void fuzz_one(const uint8_t *data, size_t size)
{
    /* A private copy, so that reading one byte too far trips ASan. */
    char *s = malloc(size ? size : 1);
    if (!s)
        return;
    memcpy(s, data, size);

    static const char *const keys[] = {"op1", "op2", "operation", "result", "error", ""};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *v;
        size_t vl;
        int rc = jsonscan_member(s, size, keys[k], &v, &vl);
        CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL);
        if (rc == 0)
            CHECK(v >= s && vl > 0 && (size_t)(v - s) + vl <= size);
    }

    compute_req r;
    char err[COMPUTE_ERR_MAX];
    int rc = compute_parse_request(s, size, &r, err, sizeof err);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc == 0) {
        buf b = BUF_INIT;
        CHECK(compute_request_json(&b, r.op, r.a, r.b) == 0);
        compute_req back;
        CHECK(compute_parse_request(b.data, b.len, &back, err, sizeof err) == 0);
        CHECK(back.op == r.op && same(r.a, back.a) && same(r.b, back.b));
        buf_destroy(&b);
        num out;
        rc = compute_run(&r, &out, err, sizeof err);
        CHECK(rc == 0 || rc == -EDOM || rc == -ERANGE);
    } else {
        CHECK(err[0] != '\0');
    }

    num res;
    rc = compute_parse_answer(s, size, &res, err, sizeof err);
    CHECK(rc == 0 || rc == -EINVAL);
    char msg[64];
    compute_parse_error(s, size, msg, sizeof msg);
    CHECK(strlen(msg) < sizeof msg);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_thread_run(fuzz_one, data, size);
    return 0;
}
