/* batch_out: see batch_out.h. */
#include "batch_out.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonscan.h"
#include "jsonw.h"

int batch_format_parse(const char *name, enum batch_format *out)
{
    static const char *const names[] = {"space", "tsv", "csv", "jsonl"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (enum batch_format)i;
            return 0;
        }
    return -EINVAL;
}

/* Text for space/tsv: one line, one field. */
static void put_escaped(buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '\n':
            buf_puts(b, "\\n");
            break;
        case '\t':
            buf_puts(b, "\\t");
            break;
        case '\r':
            buf_puts(b, "\\r");
            break;
        case '\\':
            buf_puts(b, "\\\\");
            break;
        default:
            buf_putc(b, s[i]);
        }
    }
}

static void put_csv(buf *b, const char *s, size_t n)
{
    if (n > 0 && !memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\n', n) &&
        !memchr(s, '\r', n)) {
        buf_append(b, s, n);
        return;
    }
    buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            buf_putc(b, '"');
        buf_putc(b, s[i]);
    }
    buf_putc(b, '"');
}

void batch_out_result(buf *b, enum batch_format f, const char *input, const char *result,
                      size_t rlen)
{
    switch (f) {
    case BATCH_FMT_SPACE:
    case BATCH_FMT_TSV:
        buf_puts(b, input);
        buf_putc(b, f == BATCH_FMT_TSV ? '\t' : ' ');
        put_escaped(b, result, rlen);
        break;
    case BATCH_FMT_CSV:
        buf_puts(b, input);
        buf_putc(b, ',');
        put_csv(b, result, rlen);
        break;
    case BATCH_FMT_JSONL:
        buf_printf(b, "{\"input\":%s,\"result\":", input);
        if (jsonscan_is_number(result, rlen))
            buf_append(b, result, rlen);
        else
            jsonw_str(b, result, rlen);
        buf_putc(b, '}');
        break;
    }
    buf_putc(b, '\n');
}

void batch_out_error(buf *b, enum batch_format f, const char *input, const char *why)
{
    size_t n = strlen(why);
    switch (f) {
    case BATCH_FMT_SPACE:
    case BATCH_FMT_TSV: {
        const char *sep = f == BATCH_FMT_TSV ? "\t" : " ";
        buf_printf(b, "%s%sERROR%s", input, sep, sep);
        put_escaped(b, why, n);
        break;
    }
    case BATCH_FMT_CSV:
        buf_printf(b, "%s,ERROR,", input);
        put_csv(b, why, n);
        break;
    case BATCH_FMT_JSONL:
        buf_printf(b, "{\"input\":%s,\"error\":", input);
        jsonw_str(b, why, n);
        buf_putc(b, '}');
        break;
    }
    buf_putc(b, '\n');
}

/* Open addressing, linear probing; keys live NUL-separated in one arena. */
struct done_slot {
    uint64_t hash; /* 0: empty */
    size_t off;    /* key offset in the arena */
    uint32_t len;
    uint32_t count;
};

struct batch_done {
    struct done_slot *slots;
    size_t cap, used; /* cap: a power of two */
    buf keys;
};

static uint64_t hash_text(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

static struct done_slot *find(batch_done *d, const char *s, size_t n, uint64_t h)
{
    for (size_t i = h & (d->cap - 1);; i = (i + 1) & (d->cap - 1)) {
        struct done_slot *e = &d->slots[i];
        if (!e->hash || (e->hash == h && e->len == n && memcmp(d->keys.data + e->off, s, n) == 0))
            return e;
    }
}

static int grow(batch_done *d)
{
    size_t ncap = d->cap ? d->cap * 2 : 1024;
    struct done_slot *old = d->slots;
    size_t ocap = d->cap;
    d->slots = calloc(ncap, sizeof *d->slots);
    if (!d->slots) {
        d->slots = old;
        return -ENOMEM;
    }
    d->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].hash)
            *find(d, d->keys.data + old[i].off, old[i].len, old[i].hash) = old[i];
    free(old);
    return 0;
}

static int add(batch_done *d, const char *s, size_t n)
{
    if ((d->used + 1) * 2 > d->cap && grow(d) < 0)
        return -ENOMEM;
    uint64_t h = hash_text(s, n);
    struct done_slot *e = find(d, s, n, h);
    if (e->hash) {
        e->count++;
        return 0;
    }
    size_t off = d->keys.len;
    if (buf_append(&d->keys, s, n) < 0 || buf_putc(&d->keys, '\0') < 0)
        return -ENOMEM;
    *e = (struct done_slot){.hash = h, .off = off, .len = (uint32_t)n, .count = 1};
    d->used++;
    return 0;
}

/* The input of an output line: the "input" member of a JSON line, else the
 * first field (inputs are numbers: no space, tab or comma inside). */
static int line_input(const char *line, size_t n, const char **in, size_t *in_len)
{
    if (n > 0 && line[0] == '{')
        return jsonscan_member(line, n, "input", in, in_len);
    size_t i = 0;
    while (i < n && line[i] != ' ' && line[i] != '\t' && line[i] != ',')
        i++;
    *in = line;
    *in_len = i;
    return i > 0 ? 0 : -EINVAL;
}

int batch_done_load(FILE *f, batch_done **out, long long *keep, long *lines)
{
    batch_done *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    int rc = grow(d);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    *keep = 0;
    *lines = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n')
            break; /* cut short */
        *keep += n;
        (*lines)++;
        const char *in;
        size_t in_len;
        if (line_input(line, (size_t)n - 1, &in, &in_len) == 0 && in_len <= UINT32_MAX)
            rc = add(d, in, in_len);
    }
    if (rc == 0 && ferror(f))
        rc = -EIO;
    free(line);
    if (rc < 0) {
        batch_done_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int batch_done_take(batch_done *d, const char *input, size_t len)
{
    if (!d || d->used == 0)
        return 0;
    struct done_slot *e = find(d, input, len, hash_text(input, len));
    if (!e->hash || e->count == 0)
        return 0;
    e->count--;
    return 1;
}

void batch_done_free(batch_done *d)
{
    if (!d)
        return;
    free(d->slots);
    buf_destroy(&d->keys);
    free(d);
}
