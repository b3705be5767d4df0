/* Fuzz harness for shsplit: task args come straight from requests.
 * Checks the vector's shape and that quoting the words again with single
 * quotes and splitting gives the same words (what sh would do). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_thread.h"
#include "shsplit.h"

/* Appends w as one single-quoted shell word: ' becomes '\''. */
static void quote_word(buf *b, const char *w)
{
    buf_putc(b, '\'');
    for (const char *q; (q = strchr(w, '\'')) != NULL; w = q + 1) {
        buf_append(b, w, (size_t)(q - w));
        buf_puts(b, "'\\''");
    }
    buf_puts(b, w);
    buf_puts(b, "' ");
}

/* One input, on the small-stack thread. */
static void fuzz_one(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char **argv = NULL;
    int argc = -1;
    const char *err = NULL;

    if (shsplit(s, size, &argv, &argc, &err) != 0) {
        if (!err || argv)
            abort();
        return;
    }
    /* Words cannot hold NUL, so a NUL in the input must have been refused. */
    if (size && memchr(s, '\0', size))
        abort();

    size_t total = 0;
    for (int i = 0; i < argc; i++) {
        if (!argv[i])
            abort();
        total += strlen(argv[i]);
    }
    if (argv[argc] || total > size)
        abort();

    buf q = BUF_INIT;
    for (int i = 0; i < argc; i++)
        quote_word(&q, argv[i]);
    if (buf_failed(&q))
        abort();
    char **again = NULL;
    int again_argc = -1;
    if (shsplit(q.data, q.len, &again, &again_argc, NULL) != 0 || again_argc != argc)
        abort();
    for (int i = 0; i < argc; i++)
        if (strcmp(again[i], argv[i]) != 0)
            abort();

    shsplit_free(again);
    buf_destroy(&q);
    shsplit_free(argv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_thread_run(fuzz_one, data, size);
    return 0;
}
