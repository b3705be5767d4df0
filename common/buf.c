/* buf: see buf.h. */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_destroy(buf *b)
{
    free(b->data);
    *b = (buf)BUF_INIT;
}

void buf_reset(buf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->data)
        b->data[0] = '\0';
}

int buf_reserve(buf *b, size_t extra)
{
    if (b->oom)
        return -ENOMEM;
    if (extra > SIZE_MAX - b->len - 1)
        goto fail_size;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        goto fail_size;
    b->data = p;
    b->cap = cap;
    return 0;

fail_size:
    b->oom = 1;
    return -ENOMEM;
}

int buf_append(buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return -ENOMEM;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_puts(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_putc(buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    if (buf_reserve(b, (size_t)n) < 0)
        return -ENOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int buf_failed(const buf *b)
{
    return b->oom;
}

char *buf_steal(buf *b, size_t *len_out)
{
    if (b->oom) {
        buf_destroy(b);
        return NULL;
    }
    if (!b->data && buf_reserve(b, 0) < 0)
        return NULL;
    if (b->len == 0)
        b->data[0] = '\0';
    char *p = b->data;
    /* More than an eighth unused: give it back (a failed shrink keeps the
     * block as it is). */
    if (b->cap - b->len - 1 > b->cap / 8) {
        char *q = realloc(p, b->len + 1);
        if (q)
            p = q;
    }
    if (len_out)
        *len_out = b->len;
    *b = (buf)BUF_INIT;
    return p;
}
