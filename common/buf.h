/* buf: a growable byte buffer, the one way this project builds text.
 *
 * The bytes are always followed by a NUL that is not counted in len, so
 * data can be handed to C string functions when it holds no NUL itself.
 * A buf that failed to grow is marked (oom) and ignores further appends,
 * so callers may append many times and check once with buf_failed(). */
#ifndef TS_BUF_H
#define TS_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    int oom; /* non-zero once an allocation failed */
} buf;

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

/* Releases the storage and resets b to BUF_INIT. */
void buf_destroy(buf *b);

/* Empties b but keeps its storage. */
void buf_reset(buf *b);

/* Makes room for at least `extra` more bytes. Returns 0 or -ENOMEM
 * (then b is marked failed and unchanged otherwise). */
int buf_reserve(buf *b, size_t extra);

/* Appends bytes / a C string / one byte / printf output. Return 0 or -ENOMEM. */
int buf_append(buf *b, const void *data, size_t len);
int buf_puts(buf *b, const char *s);
int buf_putc(buf *b, char c);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Returns non-zero if any append on b failed since init/reset. */
int buf_failed(const buf *b);

/* Hands the storage to the caller (who frees it with free()) and resets b.
 * The block is trimmed to its contents when doubling left much unused
 * room: stolen buffers are the long-lived ones (a finished task's output),
 * and a 64 KiB output would otherwise keep 128 KiB. Returns NULL if b is
 * failed; an empty buf yields an allocated "". */
char *buf_steal(buf *b, size_t *len_out);

#endif
