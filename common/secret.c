/* secret: see secret.h. */
#include "secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int secret_read(const char *path, char **out, size_t *len)
{
    *out = NULL;
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char line[1024];
    errno = 0;
    char *s = fgets(line, sizeof line, f);
    int err = !s && ferror(f) ? (errno ? -errno : -EIO) : 0;
    fclose(f);
    if (err)
        goto out_wipe;
    err = -ENODATA;
    if (!s)
        goto out_wipe;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0)
        goto out_wipe;
    *out = strndup(s, n);
    err = *out ? 0 : -ENOMEM;
    if (*out && len)
        *len = n;

out_wipe:
    explicit_bzero(line, sizeof line);
    return err;
}

void secret_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}
