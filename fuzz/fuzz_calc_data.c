/* Fuzz harness for calc_api_parse_data: POST / bodies come from anyone
 * who can reach the port. Any input must be handled; an accepted number
 * must be valid JSON number text that fits the limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "calc_api.h"
#include "fuzz_thread.h"
#include "jsonscan.h"

/* One input, on the small-stack thread. */
static void fuzz_one(const uint8_t *data, size_t size)
{
    /* Bodies reach the parser NUL-terminated (buf); do the same. */
    char *body = malloc(size + 1);
    if (!body)
        return;
    memcpy(body, data, size);
    body[size] = '\0';
    char out[CALC_MAX_NUMBER + 1], err[256];
    int rc = calc_api_parse_data(body, size, out, sizeof out, err, sizeof err);
    if (rc == 0) {
        size_t n = strlen(out);
        if (n == 0 || n > CALC_MAX_NUMBER || !jsonscan_is_number(out, n))
            abort();
    } else if (!err[0]) {
        abort();
    }
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_thread_run(fuzz_one, data, size);
    return 0;
}
