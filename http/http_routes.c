/* http_routes: see http_routes.h. */
#include "http_routes.h"

#include <errno.h>

#include "http.h"

void http_routes_init(http_routes *r, struct mg_context *ctx)
{
    r->ctx = ctx;
    r->list = (buf)BUF_INIT;
}

void http_routes_destroy(http_routes *r)
{
    buf_destroy(&r->list);
}

int http_routes_add(http_routes *r, const char *pattern, mg_request_handler h, void *cbdata,
                    const char *desc)
{
    mg_set_request_handler(r->ctx, pattern, h, cbdata);
    if (!desc)
        return 0;
    if (r->list.len)
        buf_puts(&r->list, ", ");
    buf_puts(&r->list, desc);
    return buf_failed(&r->list) ? -ENOMEM : 0;
}

static int http_routes_not_found(struct mg_connection *c, void *cbdata)
{
    const http_routes *r = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(c);
    return http_send_error(c, 404, NULL, NULL, "no route %s %s; routes: %s", ri->request_method,
                           ri->local_uri,
                           r->list.data && !buf_failed(&r->list) ? r->list.data : "");
}

/* Every request is authorised here: the server's own check (auth.h) runs
 * in begin_request, before civetweb gets this far. Without an auth
 * handler civetweb looks for a per-directory password file on every
 * request and, with no document root, that is "/.htpasswd": a file of that
 * name at the file-system root made every route answer 401, and the stat
 * cost ~2.6 us a request. */
static int http_routes_authorised(struct mg_connection *c, void *cbdata)
{
    (void)c;
    (void)cbdata;
    return 1;
}

void http_routes_fallback(http_routes *r)
{
    mg_set_auth_handler(r->ctx, "/**", http_routes_authorised, NULL);
    /* Not a plain "/": civetweb prefers a handler whose pattern equals the
     * URI over every pattern match, so "/" would shadow an exact-root route
     * ("/$") registered by a module; "/" followed by "**" matches any path
     * and leaves the root to such a route. */
    mg_set_request_handler(r->ctx, "/**", http_routes_not_found, r);
}
