/* auth: see auth.h. */
#include "auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "secret.h"

int auth_load(auth *a, const char *path)
{
    a->len = 0;
    return secret_read(path, &a->token, &a->len);
}

void auth_destroy(auth *a)
{
    secret_free(a->token);
    a->token = NULL;
    a->len = 0;
}

/* Compares in time that depends only on the lengths, not on where the
 * strings differ (libbsd 0.11 has no timingsafe_bcmp). */
static int equal_consttime(const char *x, size_t xl, const char *y, size_t yl)
{
    volatile unsigned char diff = (unsigned char)(xl != yl);
    for (size_t i = 0; i < yl; i++)
        diff |= (unsigned char)(x[i % (xl ? xl : 1)] ^ y[i]) | (unsigned char)(xl == 0);
    return diff == 0;
}

int auth_check_header(const auth *a, const char *header)
{
    if (!a->token)
        return 1;
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return 0;
    const char *t = header + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n && t[n - 1] == ' ')
        n--;
    return equal_consttime(t, n, a->token, a->len);
}

int auth_begin_request(struct mg_connection *c)
{
    const auth *a = mg_get_user_data(mg_get_context(c));
    if (!a || !a->token)
        return 0;
    const char *h = mg_get_header(c, "Authorization");
    if (auth_check_header(a, h))
        return 0;
    return http_send_error(c, 401, "WWW-Authenticate: Bearer realm=\"tasksolver\"\r\n", NULL,
                           h ? "invalid bearer token"
                             : "missing Authorization: Bearer <token> header");
}
