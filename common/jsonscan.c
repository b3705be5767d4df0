/* jsonscan: see jsonscan.h. */
#include "jsonscan.h"

#include <errno.h>
#include <string.h>

struct jsonscan {
    const char *s;
    size_t len;
    size_t pos;
};

static void jsonscan_ws(struct jsonscan *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

/* Steps over the string starting at the '"' at p->pos. */
static int jsonscan_string(struct jsonscan *p)
{
    p->pos++;
    while (p->pos < p->len) {
        char c = p->s[p->pos++];
        if (c == '"')
            return 0;
        if (c == '\\')
            p->pos++; /* the escaped byte; \uXXXX digits are plain bytes */
    }
    return -EINVAL;
}

/* Steps over one value of any kind at p->pos. Brackets are counted, not
 * matched: the scanner only needs to find where the value ends. */
static int jsonscan_value(struct jsonscan *p)
{
    if (p->pos >= p->len)
        return -EINVAL;
    char c = p->s[p->pos];
    if (c == '"')
        return jsonscan_string(p);
    if (c == '{' || c == '[') {
        size_t depth = 0;
        while (p->pos < p->len) {
            c = p->s[p->pos];
            if (c == '"') {
                if (jsonscan_string(p) < 0)
                    return -EINVAL;
                continue;
            }
            p->pos++;
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return 0;
        }
        return -EINVAL;
    }
    size_t start = p->pos;
    while (p->pos < p->len && !strchr(",}] \t\r\n{[\"", p->s[p->pos]))
        p->pos++;
    /* strchr matches the NUL terminator too, so a NUL byte ends a scalar. */
    return p->pos > start ? 0 : -EINVAL;
}

static int jsonscan_hex4(const char *s, size_t n, unsigned *out)
{
    if (n < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Decodes the escape at raw[0] == '\\' into UTF-8 bytes in out. Returns
 * the number of bytes written (0: malformed) and sets *used. */
static size_t jsonscan_unescape(const char *raw, size_t n, char out[4], size_t *used)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (n < 2)
        return 0;
    const char *hit = raw[1] ? strchr(from, raw[1]) : NULL;
    if (hit) {
        out[0] = to[hit - from];
        *used = 2;
        return 1;
    }
    unsigned cp;
    if (raw[1] != 'u' || jsonscan_hex4(raw + 2, n - 2, &cp) < 0)
        return 0;
    *used = 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned lo;
        if (n < 12 || raw[6] != '\\' || raw[7] != 'u' || jsonscan_hex4(raw + 8, n - 8, &lo) < 0 ||
            lo < 0xDC00 || lo > 0xDFFF)
            return 0;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        *used = 12;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return 0;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Compares the raw (still escaped) member name with key. */
static int jsonscan_key_is(const char *raw, size_t n, const char *key)
{
    size_t k = 0, klen = strlen(key);
    for (size_t i = 0; i < n;) {
        if (raw[i] != '\\') {
            if (k >= klen || raw[i] != key[k])
                return 0;
            i++;
            k++;
            continue;
        }
        char dec[4];
        size_t used = 0, m = jsonscan_unescape(raw + i, n - i, dec, &used);
        if (m == 0 || klen - k < m || memcmp(dec, key + k, m) != 0)
            return 0;
        i += used;
        k += m;
    }
    return k == klen;
}

int jsonscan_member(const char *s, size_t len, const char *key, const char **val, size_t *vlen)
{
    struct jsonscan p = {s, len, 0};
    jsonscan_ws(&p);
    if (p.pos >= len || s[p.pos] != '{')
        return -EINVAL;
    p.pos++;
    jsonscan_ws(&p);
    if (p.pos < len && s[p.pos] == '}')
        return -ENOENT;
    for (;;) {
        if (p.pos >= len || s[p.pos] != '"')
            return -EINVAL;
        size_t kstart = p.pos + 1;
        if (jsonscan_string(&p) < 0)
            return -EINVAL;
        size_t kend = p.pos - 1;
        jsonscan_ws(&p);
        if (p.pos >= len || s[p.pos] != ':')
            return -EINVAL;
        p.pos++;
        jsonscan_ws(&p);
        size_t vstart = p.pos;
        if (jsonscan_value(&p) < 0)
            return -EINVAL;
        if (jsonscan_key_is(s + kstart, kend - kstart, key)) {
            *val = s + vstart;
            *vlen = p.pos - vstart;
            return 0;
        }
        jsonscan_ws(&p);
        if (p.pos < len && s[p.pos] == ',') {
            p.pos++;
            jsonscan_ws(&p);
            continue;
        }
        return p.pos < len && s[p.pos] == '}' ? -ENOENT : -EINVAL;
    }
}

static int jsonscan_digit(char c)
{
    return c >= '0' && c <= '9';
}

int jsonscan_is_number(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len || !jsonscan_digit(s[i]))
        return 0;
    if (s[i] == '0')
        i++; /* no leading zeros: "0" stands alone before '.', 'e' or the end */
    else
        while (i < len && jsonscan_digit(s[i]))
            i++;
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !jsonscan_digit(s[i]))
            return 0;
        while (i < len && jsonscan_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !jsonscan_digit(s[i]))
            return 0;
        while (i < len && jsonscan_digit(s[i]))
            i++;
    }
    return i == len;
}

int jsonscan_check_depth(const char *s, size_t len, unsigned max)
{
    struct jsonscan p = {s, len, 0};
    unsigned depth = 0;
    while (p.pos < len) {
        char c = s[p.pos];
        if (c == '"') {
            /* An unterminated string runs to the end: nothing more nests. */
            if (jsonscan_string(&p) < 0)
                return 0;
            continue;
        }
        p.pos++;
        if (c == '[' || c == '{') {
            if (++depth > max)
                return -E2BIG;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}
