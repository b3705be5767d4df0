/* rndlines: see rndlines.h. */
#include "rndlines.h"

#include <errno.h>
#include <string.h>

/* 18 digits always fit in int64_t, so no overflow check is needed. */
#define RNDLINES_MAX_DIGITS 18

static int rndlines_blank(char c)
{
    return c == ' ' || c == '\t';
}

void rndlines_init(rndlines *r)
{
    memset(r, 0, sizeof *r);
}

int rndlines_parse_line(const char *line, size_t len, int64_t *value)
{
    size_t i = 0;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    while (i < len && rndlines_blank(line[i]))
        i++;
    while (len > i && rndlines_blank(line[len - 1]))
        len--;
    if (i == len)
        return 0;
    if (len - i < 4 || memcmp(line + i, "rnd=", 4) != 0)
        return -EINVAL;
    i += 4;
    while (i < len && rndlines_blank(line[i]))
        i++;
    int neg = 0;
    if (i < len && line[i] == '-') {
        neg = 1;
        i++;
    }
    size_t digits = len - i;
    if (digits == 0 || digits > RNDLINES_MAX_DIGITS)
        return -EINVAL;
    int64_t v = 0;
    for (; i < len; i++) {
        if (line[i] < '0' || line[i] > '9')
            return -EINVAL;
        v = v * 10 + (line[i] - '0');
    }
    *value = neg ? -v : v;
    return 1;
}

/* Parses a completed line; returns what fn returned, or 0. */
static int rndlines_complete(rndlines *r, rndlines_value_fn fn, void *arg)
{
    int stop = 0;
    if (r->overlong) {
        r->malformed++;
    } else {
        int64_t v;
        int rc = rndlines_parse_line(r->line, r->len, &v);
        if (rc < 0) {
            r->malformed++;
        } else if (rc == 1) {
            r->values++;
            stop = fn ? fn(arg, v) : 0;
        }
    }
    r->len = 0;
    r->overlong = 0;
    return stop;
}

size_t rndlines_feed(rndlines *r, const char *data, size_t len, rndlines_value_fn fn, void *arg)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t piece = nl ? (size_t)(nl - (data + pos)) : len - pos;
        if (!r->overlong) {
            if (piece > sizeof r->line - r->len) {
                r->overlong = 1;
                r->len = 0;
            } else {
                memcpy(r->line + r->len, data + pos, piece);
                r->len += piece;
            }
        }
        pos += piece;
        if (!nl)
            break;
        pos++; /* the '\n' */
        if (rndlines_complete(r, fn, arg))
            break;
    }
    return pos;
}

int rndlines_finish(rndlines *r, rndlines_value_fn fn, void *arg)
{
    if (r->len == 0 && !r->overlong)
        return 0;
    return rndlines_complete(r, fn, arg);
}

void rndlines_discard(rndlines *r)
{
    if (r->len > 0 || r->overlong)
        r->dropped++;
    r->len = 0;
    r->overlong = 0;
}
