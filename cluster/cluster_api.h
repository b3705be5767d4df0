/* cluster_api: the HTTP routes of arithmetic jobs and worker nodes.
 *
 * Master side: POST /submit {"task": EXPR} -> {"job_id", "finished"};
 * GET /job/ID; GET /jobs (the 100 newest, newest first); POST /worker
 * {"worker_name", "url"?, "port"?, "slots"?} (idempotent by name);
 * GET /workers. Worker side: POST /compute (compute.h).
 *
 * Handlers never wait on worker nodes: they change the job table or the
 * registry and wake the dispatcher. */
#ifndef TS_CLUSTER_API_H
#define TS_CLUSTER_API_H

#include <civetweb.h>

#include "dispatch.h"
#include "http_routes.h"
#include "jobs.h"
#include "membudget.h"
#include "registry.h"

/* Jobs listed by GET /jobs. */
#define CLUSTER_API_LIST 100

typedef struct cluster_api {
    size_t max_body;      /* --max-body; cluster bodies are capped lower still */
    int compute_delay_ms; /* demos and tests: slow down /compute */
    jobs *jobs;
    registry *reg;
    dispatch *disp;
    membudget *budget; /* counts request bodies; NULL: not counted */
} cluster_api;

/* Fills a and adds its routes to routes (before the 404 fallback). Bodies
 * are read up to max_body bytes (at most 1 MiB) and count against budget
 * (NULL: not counted); /compute answers compute_delay_ms late. Everything
 * is borrowed and must outlive the HTTP server. */
void cluster_api_register(cluster_api *a, http_routes *routes, size_t max_body,
                          int compute_delay_ms, jobs *j, registry *r, dispatch *d,
                          membudget *budget);

#endif
