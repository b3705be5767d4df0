/* dispatch: see dispatch.h. */
#include "dispatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "httpc.h"
#include "log.h"
#include "timefmt.h"

/* Largest answer read from a node; a result needs a few dozen bytes. */
#define DISPATCH_MAX_ANSWER (64 * 1024)
/* Longest wait in curl_multi_poll: probes are checked this often. */
#define DISPATCH_TICK_MS 200

struct dispatch_xfer {
    CURL *easy;
    registry_lease lease;
    jobs_op op; /* unused for probes */
    buf req, resp;
    httpc_sink sink; /* resp, capped at DISPATCH_MAX_ANSWER */
    char err[CURL_ERROR_SIZE];
    struct dispatch_xfer *prev, *next;
};

static void dispatch_xfer_free(struct dispatch_xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    buf_destroy(&x->req);
    buf_destroy(&x->resp);
    free(x);
}

/* Starts POST lease.url/compute with x->req. Returns 0 or -ENOMEM. */
static int dispatch_send(dispatch *d, struct dispatch_xfer *x)
{
    char url[REGISTRY_URL_MAX + 16];
    snprintf(url, sizeof url, "%s/compute", x->lease.url);
    x->easy = curl_easy_init();
    if (!x->easy)
        return -ENOMEM;
    long timeout_ms = (long)(d->cfg.op_timeout * 1000);
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)x->req.len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 3000 ? timeout_ms : 3000L);
    x->sink = (httpc_sink){&x->resp, DISPATCH_MAX_ANSWER};
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, httpc_sink_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x->sink);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->err);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(d->multi, e) != CURLM_OK)
        return -ENOMEM;
    x->next = d->xfers;
    if (d->xfers)
        d->xfers->prev = x;
    d->xfers = x;
    return 0;
}

/* Describes op for error messages: "4 / 0 at offset 5". */
static void dispatch_describe(const jobs_op *op, char *out, size_t size)
{
    char a[NUM_FMT_SIZE], b[NUM_FMT_SIZE];
    num_fmt(op->a, a, sizeof a);
    num_fmt(op->b, b, sizeof b);
    snprintf(out, size, "%s %c %s at offset %u", a, num_op_symbol(op->op), b, op->offset);
}

/* Computes ready operations in this thread (compute_local, no nodes). */
static void dispatch_local(dispatch *d)
{
    jobs_op op;
    while (!atomic_load(&d->stop) && jobs_take_ready(d->jobs, &op)) {
        num r;
        int rc = num_apply(op.op, op.a, op.b, &r);
        if (rc == 0) {
            jobs_op_done(d->jobs, &op, r);
            continue;
        }
        char what[128], msg[256];
        dispatch_describe(&op, what, sizeof what);
        snprintf(msg, sizeof msg, "%s: %s",
                 rc == -EDOM ? "division by zero" : "result is not a finite number", what);
        jobs_op_failed(d->jobs, &op, msg);
    }
}

/* Starts a request for every ready operation that a free slot can take. */
static void dispatch_fill(dispatch *d)
{
    if (d->cfg.compute_local && registry_count(d->reg) == 0) {
        dispatch_local(d);
        return;
    }
    while (jobs_has_ready(d->jobs)) {
        registry_lease lease;
        if (registry_acquire(d->reg, &lease) < 0)
            return;
        jobs_op op;
        if (!jobs_take_ready(d->jobs, &op)) {
            registry_release(d->reg, &lease, REGISTRY_UNUSED, NULL);
            return;
        }
        struct dispatch_xfer *x = calloc(1, sizeof *x);
        if (!x)
            goto fail_alloc;
        x->lease = lease;
        x->op = op;
        if (compute_request_json(&x->req, op.op, op.a, op.b) < 0 || dispatch_send(d, x) < 0)
            goto fail_send;
        log_debug("job %lld: %s sent to %s", (long long)op.job_id, num_op_name(op.op), lease.name);
        continue;

    fail_send:
        dispatch_xfer_free(x);
    fail_alloc:
        log_error("cannot start a request to %s: out of memory", lease.name);
        registry_release(d->reg, &lease, REGISTRY_UNUSED, NULL);
        jobs_requeue(d->jobs, &op);
        return; /* try again on the next tick */
    }
}

/* Starts a 0 + 0 request to each unhealthy node whose probe is due, and
 * once a second forgets nodes silent for longer than forget_after. */
static void dispatch_probe(dispatch *d)
{
    registry_lease lease;
    int64_t now = time_mono_us();
    if (d->cfg.forget_after > 0 && now >= d->forget_check_us) {
        d->forget_check_us = now + 1000000;
        registry_forget_silent(d->reg, time_now_us(), (int64_t)(d->cfg.forget_after * 1e6));
    }
    while (registry_probe_due(d->reg, now, &lease) == 0) {
        struct dispatch_xfer *x = calloc(1, sizeof *x);
        if (!x)
            goto fail_alloc;
        x->lease = lease;
        if (compute_request_json(&x->req, NUM_SUM, num_int(0), num_int(0)) < 0 ||
            dispatch_send(d, x) < 0)
            goto fail_send;
        continue;

    fail_send:
        dispatch_xfer_free(x);
    fail_alloc:
        registry_release(d->reg, &lease, REGISTRY_UNUSED, NULL);
        return;
    }
}

/* A node failed op: retry elsewhere or, past max_attempts, fail the job. */
static void dispatch_retry(dispatch *d, jobs_op *op, const char *node, const char *why)
{
    op->attempts++;
    if (op->attempts < d->cfg.max_attempts) {
        log_debug("job %lld: retrying after %s failed: %s", (long long)op->job_id, node, why);
        jobs_requeue(d->jobs, op);
        return;
    }
    char what[128], msg[1024];
    dispatch_describe(op, what, sizeof what);
    snprintf(msg, sizeof msg, "no node could compute %s (%d attempts; last: %s: %s)", what,
             op->attempts, node, why);
    jobs_op_failed(d->jobs, op, msg);
}

/* Handles one finished request. */
static void dispatch_done(dispatch *d, struct dispatch_xfer *x, CURLcode res)
{
    char why[COMPUTE_ERR_MAX + 64];
    long status = 0;
    int fault = 1;
    num result;
    if (res != CURLE_OK) {
        snprintf(why, sizeof why, "%s", x->err[0] ? x->err : curl_easy_strerror(res));
    } else {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        const char *body = x->resp.data ? x->resp.data : "";
        if (status == 200) {
            char err[COMPUTE_ERR_MAX];
            if (compute_parse_answer(body, x->resp.len, &result, err, sizeof err) == 0)
                fault = 0;
            else
                snprintf(why, sizeof why, "unusable answer: %s", err);
        } else if (status == 400 && !x->lease.probe) {
            fault = 0;
        } else {
            snprintf(why, sizeof why, "answered HTTP %ld", status);
        }
    }
    if (fault) {
        registry_release(d->reg, &x->lease, REGISTRY_FAILED, why);
        if (!x->lease.probe)
            dispatch_retry(d, &x->op, x->lease.name, why);
        return;
    }
    registry_release(d->reg, &x->lease, REGISTRY_ANSWERED, NULL);
    if (x->lease.probe)
        return;
    if (status == 200) {
        jobs_op_done(d->jobs, &x->op, result);
        return;
    }
    char err[COMPUTE_ERR_MAX], what[128], msg[COMPUTE_ERR_MAX + 160];
    compute_parse_error(x->resp.data ? x->resp.data : "", x->resp.len, err, sizeof err);
    dispatch_describe(&x->op, what, sizeof what);
    snprintf(msg, sizeof msg, "%s: %s", err, what);
    jobs_op_failed(d->jobs, &x->op, msg);
}

/* Collects finished requests. Returns how many finished. */
static int dispatch_reap(dispatch *d)
{
    int n = 0, left;
    CURLMsg *m;
    while ((m = curl_multi_info_read(d->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode res = m->data.result;
        struct dispatch_xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(d->multi, e);
        if (x->prev)
            x->prev->next = x->next;
        else
            d->xfers = x->next;
        if (x->next)
            x->next->prev = x->prev;
        dispatch_done(d, x, res);
        dispatch_xfer_free(x);
        n++;
    }
    return n;
}

static void *dispatch_main(void *arg)
{
    dispatch *d = arg;
    while (!atomic_load(&d->stop)) {
        dispatch_probe(d);
        dispatch_fill(d);
        int running;
        curl_multi_perform(d->multi, &running);
        if (dispatch_reap(d) > 0)
            continue; /* results may have made operations ready */
        curl_multi_poll(d->multi, NULL, 0, DISPATCH_TICK_MS, NULL);
    }
    return NULL;
}

int dispatch_start(dispatch *d, const dispatch_config *cfg, jobs *j, registry *r)
{
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    d->jobs = j;
    d->reg = r;
    atomic_init(&d->stop, 0);
    int rc = -ENOMEM;
    d->multi = curl_multi_init();
    if (!d->multi)
        goto fail_multi;
    /* "Expect:" keeps curl from waiting for a 100 Continue. */
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (!h)
        goto fail_headers;
    d->headers = h;
    h = curl_slist_append(d->headers, "Expect:");
    if (!h)
        goto fail_headers;
    d->headers = h;
    if (cfg->token) {
        char *line = NULL;
        if (asprintf(&line, "Authorization: Bearer %s", cfg->token) < 0)
            goto fail_headers;
        h = curl_slist_append(d->headers, line);
        explicit_bzero(line, strlen(line));
        free(line);
        if (!h)
            goto fail_headers;
        d->headers = h;
    }
    rc = -pthread_create(&d->thread, NULL, dispatch_main, d);
    if (rc)
        goto fail_headers;
    return 0;

fail_headers:
    curl_slist_free_all(d->headers);
    curl_multi_cleanup(d->multi);
fail_multi:
    memset(d, 0, sizeof *d);
    return rc;
}

void dispatch_wake(dispatch *d)
{
    curl_multi_wakeup(d->multi);
}

void dispatch_stop(dispatch *d)
{
    atomic_store(&d->stop, 1);
    curl_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);
    while (d->xfers) {
        struct dispatch_xfer *x = d->xfers;
        d->xfers = x->next;
        curl_multi_remove_handle(d->multi, x->easy);
        registry_release(d->reg, &x->lease, REGISTRY_UNUSED, NULL);
        dispatch_xfer_free(x);
    }
    curl_multi_cleanup(d->multi);
    curl_slist_free_all(d->headers);
    memset(d, 0, sizeof *d);
}
