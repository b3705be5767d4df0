/* nodes_api: GET /nodes, the live nodes sharing this node's store.
 *
 * Locking: none of its own (tasks_pg reads the database). */
#ifndef TS_NODES_API_H
#define TS_NODES_API_H

#include "http_routes.h"
#include "tasks_pg.h"

/* Adds GET /nodes answering from g (borrowed; must outlive the routes).
 * Returns 0 or -ENOMEM. */
int nodes_api_register(http_routes *routes, tasks_pg *g);

#endif
