/* auth: bearer-token access control for every route.
 *
 * With --auth-token-file, each request must carry
 * "Authorization: Bearer <token>"; anything else is answered 401 with a
 * JSON error before any handler runs (civetweb's begin_request hook), so
 * routes added by any module are covered. The comparison takes the same
 * time whatever the first differing byte. */
#ifndef TS_AUTH_H
#define TS_AUTH_H

#include <civetweb.h>
#include <stddef.h>

typedef struct auth {
    char *token; /* NULL: no authentication */
    size_t len;
} auth;

/* Loads the token from the first line of path (surrounding whitespace
 * trimmed). Returns 0, -ENODATA for an empty token, or -errno. On error a
 * is left with no token. */
int auth_load(auth *a, const char *path);

/* Forgets the token (wiping it from memory). */
void auth_destroy(auth *a);

/* Returns non-zero if the Authorization header value carries the token. */
int auth_check_header(const auth *a, const char *header);

/* civetweb begin_request callback; the context's user data must be an
 * auth. Answers 401 and returns 401 when the request is not authorised,
 * 0 to let it through. */
int auth_begin_request(struct mg_connection *c);

#endif
