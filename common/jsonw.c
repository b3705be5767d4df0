/* jsonw: see jsonw.h.
 *
 * jsonw_str runs on every status response over task output that may be
 * megabytes long, so it writes straight into the buf: it reserves room for
 * the worst case of a bounded chunk of input (6 output bytes per input byte,
 * "\u0001") and copies runs of bytes that need no change with one memcpy.
 * Chunks keep that over-reservation small for large inputs. */
#include "jsonw.h"

#include <errno.h>
#include <math.h> /* isfinite: a macro, no libm needed */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Input bytes handled per reservation; bounds the over-reservation. */
#define CHUNK 4096
/* Worst-case output bytes per input byte. */
#define MAX_EXPAND 6

/* Byte classes: 0 = ASCII copied as is, 1 = ASCII that needs an escape,
 * 2 = start of a multi-byte sequence (or an invalid byte). */
/* clang-format off */
static const unsigned char byte_class[256] = {
    /* 0x00-0x1f: control characters */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x20-0x3f: '"' is 0x22 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x40-0x5f: '\\' is 0x5c */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    /* 0x60-0x7f: DEL is valid JSON and left alone */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x80-0xff */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};
/* clang-format on */

/* Looks at the non-ASCII sequence at p (n >= 1 bytes available). Returns
 * its length if it is well-formed UTF-8 (Unicode table 3-7), otherwise the
 * negated length of its maximal ill-formed subpart (at least 1 byte), which
 * is what one U+FFFD replaces. */
static int utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    unsigned lo = 0x80, hi = 0xbf;
    size_t need;

    if (c < 0x80)
        return 1;
    if (c < 0xc2) /* continuation byte or overlong 2-byte lead */
        return -1;
    if (c < 0xe0) {
        need = 1;
    } else if (c < 0xf0) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c < 0xf5) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* > U+10FFFF */
    } else {
        return -1;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || p[i] < lo || p[i] > hi)
            return -(int)i;
        lo = 0x80;
        hi = 0xbf;
    }
    return (int)need + 1;
}

static const char hexdig[] = "0123456789abcdef";

/* Writes the escape for ASCII byte c (class 1) at o; returns the end. */
static char *put_escape(char *o, unsigned char c)
{
    *o++ = '\\';
    switch (c) {
    case '"':
        *o++ = '"';
        break;
    case '\\':
        *o++ = '\\';
        break;
    case '\b':
        *o++ = 'b';
        break;
    case '\f':
        *o++ = 'f';
        break;
    case '\n':
        *o++ = 'n';
        break;
    case '\r':
        *o++ = 'r';
        break;
    case '\t':
        *o++ = 't';
        break;
    default:
        *o++ = 'u';
        *o++ = '0';
        *o++ = '0';
        *o++ = hexdig[c >> 4];
        *o++ = hexdig[c & 15];
        break;
    }
    return o;
}

int jsonw_str(buf *b, const char *s, size_t len)
{
    if (buf_putc(b, '"') < 0)
        return -ENOMEM;
    if (len == 0) /* s may then be NULL, where even s + 0 is undefined */
        return buf_putc(b, '"');

    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + len;
    while (p < end) {
        size_t chunk = (size_t)(end - p) < CHUNK ? (size_t)(end - p) : CHUNK;
        const unsigned char *stop = p + chunk;
        /* A valid sequence may run up to 3 bytes past stop. */
        if (buf_reserve(b, (chunk + 3) * MAX_EXPAND) < 0)
            return -ENOMEM;
        char *o = b->data + b->len;

        while (p < stop) {
            /* Run of bytes copied unchanged: plain ASCII and valid UTF-8. */
            const unsigned char *run = p;
            for (;;) {
                while (p < stop && byte_class[*p] == 0)
                    p++;
                if (p >= stop || byte_class[*p] != 2)
                    break;
                int n = utf8_seq(p, (size_t)(end - p));
                if (n < 0)
                    break;
                p += n;
            }
            memcpy(o, run, (size_t)(p - run));
            o += p - run;
            if (p >= stop)
                break;
            if (byte_class[*p] == 1) {
                o = put_escape(o, *p);
                p++;
            } else {
                /* Ill-formed: one U+FFFD per maximal subpart. */
                p += -utf8_seq(p, (size_t)(end - p));
                memcpy(o, "\xef\xbf\xbd", 3);
                o += 3;
            }
        }
        b->len = (size_t)(o - b->data);
    }
    if (buf_putc(b, '"') < 0)
        return -ENOMEM;
    return 0;
}

int jsonw_cstr(buf *b, const char *s)
{
    if (!s)
        return buf_append(b, "null", 4);
    return jsonw_str(b, s, strlen(s));
}

int jsonw_i64(buf *b, int64_t v)
{
    char tmp[24];
    char *o = tmp + sizeof tmp;
    /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--o = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--o = '-';
    return buf_append(b, o, (size_t)(tmp + sizeof tmp - o));
}

int jsonw_f64_fmt(char *out, size_t size, double v)
{
    int n = -1;

    if (!isfinite(v)) {
        n = snprintf(out, size, "null");
    } else if (v > -9007199254740992.0 && v < 9007199254740992.0 && (double)(long long)v == v) {
        /* Exact integer, printed without exponent or fraction; -0 gives 0.
         * The range check comes first so the conversion cannot overflow. */
        n = snprintf(out, size, "%lld", (long long)v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            n = snprintf(out, size, "%.*g", prec, v);
            if (n < 0 || (size_t)n >= size || strtod(out, NULL) == v)
                break;
        }
    }
    if (n < 0 || (size_t)n >= size)
        return -EINVAL;
    return n;
}

int jsonw_f64(buf *b, double v)
{
    char tmp[32];
    int n = jsonw_f64_fmt(tmp, sizeof tmp, v);
    /* Cannot fail with 32 bytes; keep the buf consistent if it ever did. */
    if (n < 0)
        return buf_append(b, "null", 4);
    return buf_append(b, tmp, (size_t)n);
}

size_t jsonw_utf8_valid_prefix(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        int n = utf8_seq(p + i, len - i);
        if (n < 0)
            break;
        i += (size_t)n;
    }
    return i;
}
