/* cluster: wires arithmetic jobs and worker nodes into a server.
 *
 * Every tasksolver node is both a master (it takes jobs and dispatches
 * their operations to registered nodes) and a worker (it answers
 * POST /compute); with --join it also announces itself to a master. */
#ifndef TS_CLUSTER_H
#define TS_CLUSTER_H

#include <civetweb.h>

#include "cluster_api.h"
#include "config.h"
#include "dispatch.h"
#include "jobs.h"
#include "join.h"
#include "registry.h"

typedef struct cluster {
    registry reg;
    jobs jobs;
    dispatch disp;
    cluster_api api;
    join join;
    /* what cluster_start got to, for cluster_stop */
    int curl_ok, reg_ok, jobs_ok, disp_ok, joined;
} cluster;

/* Starts the dispatcher, registers the routes on ctx, then, with
 * cfg->join, starts announcing (after the routes exist, so the master
 * can call back at once). port is the port actually listened on. token
 * (NULL: none) is this node's --auth-token-file token: a cluster shares
 * one, so it is also sent on announces and operation requests. Request
 * bodies count against budget (NULL: not counted).
 * Returns 0, or -errno after logging why. Either way, call cluster_stop
 * once the HTTP server has stopped. */
int cluster_start(cluster *cl, struct mg_context *ctx, const config *cfg, int port,
                  const char *token, membudget *budget);

/* Stops what cluster_start started and frees everything. Call after
 * mg_stop: handlers use the dispatcher. */
void cluster_stop(cluster *cl);

#endif
