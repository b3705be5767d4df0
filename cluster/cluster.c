/* cluster: see cluster.h. */
#include "cluster.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "jobstore_pg.h"
#include "jobstore_sqlite.h"
#include "log.h"
#include "nodename.h"

/* Starts the announce thread with the defaults of cluster_config filled in. */
static int cluster_join(cluster *cl, const cluster_config *cfg, int port, const char *token)
{
    char name[REGISTRY_NAME_MAX], url[REGISTRY_URL_MAX];
    nodename_get(cfg->name, port, name, sizeof name);
    const char *adv = NULL;
    if (cfg->advertise[0]) {
        adv = cfg->advertise;
    } else if (strcmp(cfg->address, "0.0.0.0") != 0) {
        snprintf(url, sizeof url, "http://%s:%d", cfg->address, port);
        adv = url;
    }
    join_config jc = {.master = cfg->join,
                      .name = name,
                      .url = adv,
                      .port = port,
                      .slots = cfg->slots,
                      .interval = cfg->announce_interval,
                      .token = token};
    int rc = join_start(&cl->join, &jc);
    if (rc < 0) {
        log_error("cannot start announcing to %s: %s", cfg->join, strerror(-rc));
        return rc;
    }
    log_notice("joining %s as %s, called back on %s", cfg->join, name,
               adv ? adv : "the announce's source address");
    cl->joined = 1;
    return 0;
}

/* Opens the job store of cfg->store (this master's jobs, by node name) or
 * cfg->data_dir and loads it into the job table. */
static int cluster_open_store(cluster *cl, const cluster_config *cfg, int port)
{
    char err[512], name[REGISTRY_NAME_MAX], where[REGISTRY_NAME_MAX + 4200];
    int rc;
    if (cfg->store && cfg->store[0]) {
        nodename_get(cfg->name, port, name, sizeof name);
        jobstore_pg_config pc = {.url = cfg->store, .master = name};
        rc = jobstore_pg_open(&cl->store, &pc, err, sizeof err);
        snprintf(where, sizeof where, "in the shared store as master %s", name);
    } else {
        jobstore_sqlite_config sc = {.dir = cfg->data_dir, .sync_full = cfg->data_sync_full};
        rc = jobstore_sqlite_open(&cl->store, &sc, err, sizeof err);
        snprintf(where, sizeof where, "%s/%s", cfg->data_dir, JOBSTORE_SQLITE_FILE);
    }
    if (rc < 0)
        goto fail;
    cl->store_ok = 1;
    jobs_restored n;
    if ((rc = jobs_restore(&cl->jobs, &cl->store, &n, err, sizeof err)) < 0)
        goto fail;
    log_notice("job store %s: %ld finished, %ld to compute again, %ld old ones dropped; "
               "next job id %lld",
               where, n.finished, n.unfinished, n.dropped, (long long)n.next_id);
    return 0;

fail:
    log_error("%s", err);
    return rc;
}

int cluster_start(cluster *cl, http_routes *routes, const cluster_config *cfg, int port,
                  const char *token, membudget *budget)
{
    memset(cl, 0, sizeof *cl);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("cannot initialise libcurl");
        return -ENOMEM;
    }
    cl->curl_ok = 1;
    int rc = registry_init(&cl->reg);
    if (rc < 0)
        goto fail;
    cl->reg_ok = 1;
    if ((rc = jobs_init(&cl->jobs, cfg->max_jobs)) < 0)
        goto fail;
    cl->jobs_ok = 1;
    int kept = (cfg->store && cfg->store[0]) || (cfg->data_dir && cfg->data_dir[0]);
    if (kept && (rc = cluster_open_store(cl, cfg, port)) < 0)
        return rc;
    dispatch_config dc = {.op_timeout = cfg->op_timeout,
                          .max_attempts = cfg->op_attempts,
                          .compute_local = cfg->compute_local,
                          .forget_after = cfg->forget_after,
                          .token = token};
    if ((rc = dispatch_start(&cl->disp, &dc, &cl->jobs, &cl->reg)) < 0)
        goto fail;
    cl->disp_ok = 1;
    cluster_api_register(&cl->api, routes, cfg->max_body, cfg->compute_delay_ms, &cl->jobs,
                         &cl->reg, &cl->disp, budget);
    if (cfg->join[0])
        return cluster_join(cl, cfg, port, token);
    return 0;

fail:
    log_error("cannot start the cluster services: %s", strerror(-rc));
    return rc;
}

void cluster_stop(cluster *cl)
{
    if (cl->joined)
        join_stop(&cl->join);
    if (cl->disp_ok)
        dispatch_stop(&cl->disp);
    if (cl->jobs_ok)
        jobs_destroy(&cl->jobs);
    /* After the dispatcher and the handlers: the last finishes are queued. */
    if (cl->store_ok)
        cl->store.ops->close(cl->store.impl);
    if (cl->reg_ok)
        registry_destroy(&cl->reg);
    if (cl->curl_ok)
        curl_global_cleanup();
    memset(cl, 0, sizeof *cl);
}
