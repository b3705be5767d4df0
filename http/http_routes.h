/* http_routes: the routes of a server, each module registering its own,
 * and the JSON 404 that lists them.
 *
 * A module adds its handlers with a short description each ("GET /jobs");
 * the fallback, registered last, answers any other path with a 404 naming
 * the method and path asked for and every route described, in the order
 * they were added. */
#ifndef TS_HTTP_ROUTES_H
#define TS_HTTP_ROUTES_H

#include <civetweb.h>

#include "buf.h"

typedef struct http_routes {
    struct mg_context *ctx;
    /* "POST /create_task, GET /get_status, ...": written by the adds, all
     * made before http_routes_fallback; read unlocked by the fallback's
     * handler afterwards. */
    buf list;
} http_routes;

/* Starts an empty list of routes for ctx (borrowed, must outlive r). */
void http_routes_init(http_routes *r, struct mg_context *ctx);

/* Frees the list. Call after mg_stop: the fallback reads it. */
void http_routes_destroy(http_routes *r);

/* Registers handler h (with cbdata) for civetweb URI pattern `pattern`
 * ("/jobs$", "/job/"), and adds `desc` ("GET /job/ID") to the routes the
 * 404 names (NULL: a route the 404 leaves out). Call before
 * http_routes_fallback, from one thread. Returns 0 or -ENOMEM (the route
 * is registered all the same, only not named). */
int http_routes_add(http_routes *r, const char *pattern, mg_request_handler h, void *cbdata,
                    const char *desc);

/* Registers the JSON 404 for every path no route matches: "no route
 * METHOD PATH; routes: " and the descriptions, and turns off civetweb's
 * own per-directory password files for every path (authentication is
 * auth.h's). Call once, after every http_routes_add. */
void http_routes_fallback(http_routes *r);

#endif
