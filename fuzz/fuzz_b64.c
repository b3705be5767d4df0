/* Fuzz harness for b64_decode: uploaded task files arrive as base64.
 * Checks that errors point inside the input, that the output length
 * matches the number of data characters, and that whatever decodes
 * re-encodes to text that decodes to the same bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "fuzz_thread.h"

static int is_data_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '-' || c == '_';
}

/* One input, on the small-stack thread. */
static void fuzz_one(const uint8_t *data, size_t size)
{
    unsigned char *out = NULL;
    size_t out_len = 0, pos = SIZE_MAX;

    int rc = b64_decode((const char *)data, size, &out, &out_len, &pos);
    if (rc == -EINVAL) {
        if (pos >= size || out)
            abort();
        return;
    }
    if (rc != 0)
        abort();

    size_t ndata = 0;
    for (size_t i = 0; i < size; i++)
        ndata += is_data_char(data[i]);
    if (out_len != ndata * 6 / 8 || out[out_len] != '\0')
        abort();

    char *enc = b64_encode(out, out_len);
    if (!enc)
        abort();
    unsigned char *again = NULL;
    size_t again_len = 0;
    if (b64_decode(enc, strlen(enc), &again, &again_len, NULL) != 0)
        abort();
    if (again_len != out_len || memcmp(again, out, out_len) != 0)
        abort();

    free(again);
    free(enc);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_thread_run(fuzz_one, data, size);
    return 0;
}
