/* url: see url.h. */
#include "url.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

int url_check(const char *s, size_t max, size_t *len, const char **why)
{
    const char *bad = NULL;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    size_t scheme = strncasecmp(s, "http://", 7) == 0    ? 7
                    : strncasecmp(s, "https://", 8) == 0 ? 8
                                                         : 0;
    if (!scheme || n <= scheme) {
        bad = "not a URL like http://HOST:PORT";
        goto fail;
    }
    if (max && n >= max) {
        bad = "too long for a URL";
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) {
            bad = "not a URL: it has a space or control character";
            goto fail;
        }
    }
    if (len)
        *len = n;
    return 0;

fail:
    if (why)
        *why = bad;
    return -EINVAL;
}
