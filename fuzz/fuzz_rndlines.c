/* libFuzzer harness for rndlines, the parser of worker streams (network input).
 *
 * The first input byte chooses how the rest is cut into pieces, so that line
 * splits at every position are explored. Checks that feeding in pieces gives
 * the same values and counters as feeding everything at once. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_thread.h"
#include "rndlines.h"

struct fz_sum {
    uint64_t n;
    uint64_t hash;
};

static int fz_value(void *arg, int64_t v)
{
    struct fz_sum *s = arg;
    s->n++;
    s->hash = s->hash * 1000003u ^ (uint64_t)v;
    return 0;
}

/* One input, on the small-stack thread. */
static void fuzz_one(const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    size_t step = (size_t)data[0] % 17 + 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    rndlines whole, pieces;
    struct fz_sum sw = {0, 0}, sp = {0, 0};
    rndlines_init(&whole);
    rndlines_init(&pieces);
    if (rndlines_feed(&whole, in, len, fz_value, &sw) != len)
        abort();
    for (size_t pos = 0; pos < len; pos += step) {
        size_t n = len - pos < step ? len - pos : step;
        if (rndlines_feed(&pieces, in + pos, n, fz_value, &sp) != n)
            abort();
    }
    if (sw.n != sp.n || sw.hash != sp.hash || whole.malformed != pieces.malformed)
        abort();
    if (whole.len > RNDLINES_MAX_LINE || whole.values != sw.n)
        abort();
    rndlines_finish(&whole, fz_value, &sw);
    if (whole.len != 0 || whole.overlong)
        abort();
    rndlines_discard(&pieces);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_thread_run(fuzz_one, data, size);
    return 0;
}
