/* jsonscan: see jsonscan.h. */
#include "jsonscan.h"

#include <errno.h>
#include <string.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Between tokens cJSON skips every byte up to the space, not only the four
 * of RFC 8259; doing the same keeps the value found here the one cJSON saw
 * when it validated the document. */
static int is_ws(char c)
{
    return (unsigned char)c <= ' ';
}

int jsonscan_is_number(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len || !is_digit(s[i]))
        return 0;
    if (s[i] == '0')
        i++; /* no leading zeros: "0" stands alone before '.', 'e' or the end */
    else
        while (i < len && is_digit(s[i]))
            i++;
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i]))
            return 0;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            return 0;
        while (i < len && is_digit(s[i]))
            i++;
    }
    return i == len;
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && is_ws(s[i]))
        i++;
    return i;
}

/* s[i] is the opening quote. Returns the index after the closing quote, or
 * len + 1 if the string does not end. */
static size_t skip_string(const char *s, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return len + 1;
}

/* Returns the index after the value starting at s[i], or len + 1 if it
 * does not end within the document. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
    if (i >= len)
        return len + 1;
    if (s[i] == '"')
        return skip_string(s, len, i);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        while (i < len) {
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, len, i);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']')
                if (--depth == 0)
                    return i + 1;
            i++;
        }
        return len + 1;
    }
    size_t start = i;
    while (i < len && !is_ws(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']')
        i++;
    return i > start ? i : len + 1;
}

int jsonscan_member(const char *doc, size_t len, const char *key, const char **val, size_t *vlen)
{
    size_t klen = strlen(key);
    size_t i = skip_ws(doc, len, 0);
    if (i >= len || doc[i] != '{')
        return -EINVAL;
    i = skip_ws(doc, len, i + 1);
    if (i < len && doc[i] == '}')
        return -ENOENT;
    for (;;) {
        if (i >= len || doc[i] != '"')
            return -EINVAL;
        size_t kstart = i + 1;
        i = skip_string(doc, len, i);
        if (i > len)
            return -EINVAL;
        size_t kend = i - 1;
        i = skip_ws(doc, len, i);
        if (i >= len || doc[i] != ':')
            return -EINVAL;
        size_t vstart = skip_ws(doc, len, i + 1);
        i = skip_value(doc, len, vstart);
        if (i > len)
            return -EINVAL;
        if (kend - kstart == klen && memcmp(doc + kstart, key, klen) == 0) {
            *val = doc + vstart;
            *vlen = i - vstart;
            return 0;
        }
        i = skip_ws(doc, len, i);
        if (i < len && doc[i] == ',') {
            i = skip_ws(doc, len, i + 1);
            continue;
        }
        return i < len && doc[i] == '}' ? -ENOENT : -EINVAL;
    }
}
