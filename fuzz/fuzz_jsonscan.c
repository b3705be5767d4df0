/* Fuzz harness for jsonscan: request bodies and responses of the
 * calculation API go through it. Any input must be handled without reading
 * out of bounds; a value found must lie inside the document, and when the
 * whole document is valid JSON (cJSON agrees, without control bytes) the
 * value found must itself be valid JSON, and a value that jsonscan_is_number accepts must parse as
 * a number. cJSON only sees text that jsonscan_check_depth let through, as
 * in the server: if the bound missed a level, cJSON would overflow the
 * small stack here. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "fuzz_thread.h"
#include "jsonscan.h"

/* The server's bound (JSONBODY_MAX_DEPTH): deeper text never reaches cJSON. */
#define FUZZ_MAX_DEPTH 64

static int parses(const char *s, size_t len)
{
    if (jsonscan_check_depth(s, len, FUZZ_MAX_DEPTH) < 0)
        return 0;
    char *copy = malloc(len + 1);
    if (!copy)
        abort();
    memcpy(copy, s, len);
    copy[len] = '\0';
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithOpts(copy, &end, 0);
    int ok = v && (size_t)(end - copy) == len;
    cJSON_Delete(v);
    free(copy);
    return ok;
}

/* cJSON also skips other control bytes as whitespace; the scanner keeps
 * to the four of RFC 8259, so the property is checked on such documents. */
static int json_whitespace_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

/* One input, on the small-stack thread. */
static void fuzz_one(const uint8_t *data, size_t size)
{
    const char *doc = (const char *)data;
    const char *v = NULL;
    size_t n = 0;
    int rc = jsonscan_check_depth(doc, size, 8);
    if (rc != 0 && rc != -E2BIG)
        abort();
    /* A document within a bound is within every larger one. */
    if (rc == 0 && jsonscan_check_depth(doc, size, FUZZ_MAX_DEPTH) != 0)
        abort();
    rc = jsonscan_member(doc, size, "data", &v, &n);
    if (rc != 0 && rc != -ENOENT && rc != -EINVAL)
        abort();
    if (rc == 0) {
        if (v < doc || v + n > doc + size || n == 0)
            abort();
        if (json_whitespace_only(doc, size) && parses(doc, size) && !parses(v, n))
            abort();
    }
    if (jsonscan_is_number(doc, size)) {
        if (memchr(doc, '\0', size) || !parses(doc, size))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_thread_run(fuzz_one, data, size);
    return 0;
}
