/* nodes_api: see nodes_api.h. */
#include "nodes_api.h"

#include "http.h"

static int h_nodes(struct mg_connection *c, void *cbdata)
{
    tasks_pg *g = cbdata;
    if (!http_method_is(c, "GET"))
        return 405;
    buf b = BUF_INIT;
    int rc = tasks_pg_nodes_json(g, &b);
    int st = rc < 0 ? http_send_error(c, 503, "Retry-After: 1\r\n", NULL,
                                      "the store is unreachable; the nodes are not known")
                    : http_send_json(c, 200, NULL, b.data, b.len);
    buf_destroy(&b);
    return st;
}

int nodes_api_register(http_routes *routes, tasks_pg *g)
{
    return http_routes_add(routes, "/nodes$", h_nodes, g, "GET /nodes");
}
