/* cluster: wires arithmetic jobs and worker nodes into a server.
 *
 * Every tasksolver node is both a master (it takes jobs and dispatches
 * their operations to registered nodes) and a worker (it answers
 * POST /compute); with --join it also announces itself to a master. */
#ifndef TS_CLUSTER_H
#define TS_CLUSTER_H

#include <stddef.h>

#include "cluster_api.h"
#include "dispatch.h"
#include "http_routes.h"
#include "jobs.h"
#include "jobstore.h"
#include "join.h"
#include "registry.h"

/* The server's settings that cluster mode reads (config.h names the
 * options), filled by the caller; the strings are borrowed. */
typedef struct cluster_config {
    const char *join;         /* master URL to announce to (url_check); "" for none */
    const char *name;         /* node name; "": HOSTNAME:PORT */
    const char *advertise;    /* URL the master calls back (url_check); "": derived */
    const char *address;      /* address listened on, for the derived URL */
    int slots;                /* operations taken at once, as announced */
    double announce_interval; /* seconds */
    int compute_local;        /* compute jobs here while no node is registered */
    double op_timeout;        /* seconds per operation request */
    int op_attempts;          /* node failures an operation survives */
    double forget_after;      /* seconds an unhealthy node stays listed; 0: forever */
    long max_jobs;            /* jobs kept */
    int compute_delay_ms;     /* demos and tests: slow down /compute */
    size_t max_body;          /* largest request body, bytes */
    const char *data_dir;     /* keep jobs in DIR/jobs.db; "" or NULL: memory only */
    int data_sync_full;       /* fsync every commit of the job store */
    const char *store;        /* keep jobs in this PostgreSQL store (--store); "" or NULL: none */
} cluster_config;

typedef struct cluster {
    registry reg;
    jobs jobs;
    jobstore store; /* with cluster_config.store or data_dir */
    dispatch disp;
    cluster_api api;
    join join;
    /* what cluster_start got to, for cluster_stop */
    int curl_ok, reg_ok, jobs_ok, store_ok, disp_ok, joined;
} cluster;

/* Starts the dispatcher, adds the routes to routes, then, with
 * cfg->join, starts announcing (after the routes exist, so the master
 * can call back at once). With cfg->store (a PostgreSQL URL, jobs kept
 * under this node's name) or cfg->data_dir, first opens the job store
 * there and loads the jobs it kept (jobs_restore); their operations are
 * dispatched once workers are back. port is the port actually listened
 * on. token
 * (NULL: none) is this node's --auth-token-file token: a cluster shares
 * one, so it is also sent on announces and operation requests. Request
 * bodies count against budget (NULL: not counted).
 * Returns 0, or -errno after logging why. Either way, call cluster_stop
 * once the HTTP server has stopped. */
int cluster_start(cluster *cl, http_routes *routes, const cluster_config *cfg, int port,
                  const char *token, membudget *budget);

/* Stops what cluster_start started and frees everything. Call after
 * mg_stop: handlers use the dispatcher. */
void cluster_stop(cluster *cl);

#endif
