/* Fuzz harness for jsonw: task output of any bytes goes into responses.
 * The escaped string must parse as exactly one JSON string; input that is
 * valid UTF-8 without NUL must come back unchanged, anything else must come
 * back as valid UTF-8. The first 8 bytes, read as a double, must print in a
 * form that parses back to the same value. Run it also with -max_len=20000
 * now and then: jsonw_str works in 4 KiB chunks. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "fuzz_thread.h"
#include "jsonw.h"

static void check_string(const char *s, size_t size)
{
    buf b = BUF_INIT;
    if (jsonw_str(&b, s, size) != 0)
        abort();
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(b.data, b.len, &end, 0);
    if (!v || !cJSON_IsString(v) || end != b.data + b.len)
        abort();

    const char *got = v->valuestring;
    size_t got_len = strlen(got);
    int clean = jsonw_utf8_valid_prefix(s, size) == size && (!size || !memchr(s, '\0', size));
    if (clean && (got_len != size || memcmp(got, s, size) != 0))
        abort();
    if (jsonw_utf8_valid_prefix(got, got_len) != got_len)
        abort();

    cJSON_Delete(v);
    buf_destroy(&b);
}

static void check_number(const uint8_t *data)
{
    double d;
    memcpy(&d, data, sizeof d);
    char out[32];
    int n = jsonw_f64_fmt(out, sizeof out, d);
    if (n <= 0 || (size_t)n >= sizeof out)
        abort();
    cJSON *v = cJSON_Parse(out);
    if (!v)
        abort();
    if (isfinite(d)) {
        if (!cJSON_IsNumber(v) || strtod(out, NULL) != d)
            abort();
    } else if (!cJSON_IsNull(v)) {
        abort();
    }
    cJSON_Delete(v);
}

/* One input, on the small-stack thread. */
static void fuzz_one(const uint8_t *data, size_t size)
{
    check_string((const char *)data, size);
    if (size >= sizeof(double))
        check_number(data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_thread_run(fuzz_one, data, size);
    return 0;
}
