/* join: see join.h. */
#include "join.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "httpc.h"
#include "jsonw.h"
#include "log.h"

#define JOIN_BACKOFF_MIN 0.25
#define JOIN_BACKOFF_MAX 5.0
#define JOIN_TIMEOUT 5.0

/* Waits up to `seconds` unless stopped. Returns non-zero once stopped. */
static int join_sleep(join *j, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long ns = ts.tv_nsec + (long long)(seconds * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&j->lock);
    while (!j->stop && pthread_cond_timedwait(&j->cond, &j->lock, &ts) != ETIMEDOUT)
        ;
    int stop = j->stop;
    pthread_mutex_unlock(&j->lock);
    return stop;
}

static void *join_main(void *arg)
{
    join *j = arg;
    double backoff = JOIN_BACKOFF_MIN;
    int state = 0; /* 0: not yet accepted, 1: accepted, -1: lost since */
    buf resp = BUF_INIT;
    for (;;) {
        char err[256];
        buf_reset(&resp);
        int st = httpc_request("POST", j->announce_url, j->body, j->token, JOIN_TIMEOUT, &j->cancel,
                               &resp, err, sizeof err);
        if (atomic_load(&j->cancel))
            break;
        double wait;
        if (st == 200) {
            if (state != 1)
                log_notice("announced to %s%s", j->announce_url, state ? " again" : "");
            state = 1;
            backoff = JOIN_BACKOFF_MIN;
            wait = j->interval;
        } else {
            if (st > 0)
                log_warn("announce to %s answered %d: %.200s", j->announce_url, st,
                         resp.data ? resp.data : "");
            else if (state == 1)
                log_warn("announce to %s failed: %s; retrying", j->announce_url, err);
            else
                log_info("announce to %s failed: %s; retrying in %.2f s", j->announce_url, err,
                         backoff);
            if (state == 1)
                state = -1;
            wait = backoff;
            backoff = backoff * 2 > JOIN_BACKOFF_MAX ? JOIN_BACKOFF_MAX : backoff * 2;
        }
        if (join_sleep(j, wait))
            break;
    }
    buf_destroy(&resp);
    return NULL;
}

static char *join_body(const join_config *cfg)
{
    buf b = BUF_INIT;
    buf_puts(&b, "{\"worker_name\":");
    jsonw_cstr(&b, cfg->name);
    if (cfg->url) {
        buf_puts(&b, ",\"url\":");
        jsonw_cstr(&b, cfg->url);
    } else {
        buf_printf(&b, ",\"port\":%d", cfg->port);
    }
    buf_printf(&b, ",\"slots\":%d}", cfg->slots);
    return buf_steal(&b, NULL);
}

int join_start(join *j, const join_config *cfg)
{
    memset(j, 0, sizeof *j);
    int rc = -ENOMEM;
    size_t n = strlen(cfg->master);
    while (n > 0 && cfg->master[n - 1] == '/')
        n--;
    if (asprintf(&j->announce_url, "%.*s/worker", (int)n, cfg->master) < 0) {
        j->announce_url = NULL;
        goto fail_alloc;
    }
    j->body = join_body(cfg);
    if (!j->body)
        goto fail_alloc;
    if (cfg->token && !(j->token = strdup(cfg->token)))
        goto fail_alloc;
    j->interval = cfg->interval;
    atomic_init(&j->cancel, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = -pthread_cond_init(&j->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        goto fail_alloc;
    rc = -pthread_mutex_init(&j->lock, NULL);
    if (rc)
        goto fail_mutex;
    rc = -pthread_create(&j->thread, NULL, join_main, j);
    if (rc)
        goto fail_thread;
    return 0;

fail_thread:
    pthread_mutex_destroy(&j->lock);
fail_mutex:
    pthread_cond_destroy(&j->cond);
fail_alloc:
    free(j->announce_url);
    free(j->body);
    free(j->token);
    memset(j, 0, sizeof *j);
    return rc;
}

void join_stop(join *j)
{
    atomic_store(&j->cancel, 1);
    pthread_mutex_lock(&j->lock);
    j->stop = 1;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->lock);
    pthread_join(j->thread, NULL);
    pthread_cond_destroy(&j->cond);
    pthread_mutex_destroy(&j->lock);
    free(j->announce_url);
    free(j->body);
    if (j->token) {
        explicit_bzero(j->token, strlen(j->token));
        free(j->token);
    }
    memset(j, 0, sizeof *j);
}
