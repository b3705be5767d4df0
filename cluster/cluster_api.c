/* cluster_api: see cluster_api.h. */
#include "cluster_api.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compute.h"
#include "expr.h"
#include "http.h"
#include "jsonscan.h"
#include "jsonw.h"
#include "log.h"
#include "jsonbody.h"
#include "timefmt.h"
#include "url.h"

/* Cluster requests are small: an expression of EXPR_MAX_LEN bytes with
 * JSON escaping fits easily. */
#define CLUSTER_API_MAX_BODY (1024 * 1024)
#define ERRSZ JSONBODY_ERR_MAX

/* The largest body a cluster route reads. */
static size_t cluster_max_body(const cluster_api *a)
{
    return a->max_body < CLUSTER_API_MAX_BODY ? a->max_body : CLUSTER_API_MAX_BODY;
}

/* Takes a POST whose body is a JSON object, answering errors itself (405,
 * the body's, 400). Returns 0 with the tree in *root (caller deletes it,
 * then destroys body, whose reservation covers the tree), or the status
 * answered, body destroyed. The raw body is left in body->b for exact
 * number scanning. */
static int cluster_post_object(struct mg_connection *c, const cluster_api *a, http_body *body,
                               cJSON **root)
{
    if (!http_method_is(c, "POST"))
        return 405;
    int st = http_read_body_or_answer(c, cluster_max_body(a), 429, body);
    if (st == 0) {
        char err[ERRSZ];
        const buf *b = &body->b;
        *root = jsonbody_parse_object(b->data ? b->data : "", b->len, err, sizeof err);
        if (!*root)
            st = http_send_error(c, 400, NULL, NULL, "%s", err);
    }
    if (st)
        http_body_destroy(body);
    return st;
}

static int cluster_send_buf(struct mg_connection *c, int status, buf *b)
{
    int st = buf_failed(b) ? http_send_error(c, 503, NULL, NULL, "out of memory")
                           : http_send_json(c, status, NULL, b->data, b->len);
    buf_destroy(b);
    return st;
}

/* True if the raw JSON string of "task" has a \u0000 escape, which cJSON
 * would silently cut the text at. */
static int cluster_task_has_nul(const char *body, size_t len)
{
    const char *v;
    size_t vl;
    if (jsonscan_member(body, len, "task", &v, &vl) < 0)
        return 0;
    for (size_t i = 0; i + 6 <= vl; i++)
        if (v[i] == '\\' && v[i + 1] == 'u' && strncmp(v + i + 2, "0000", 4) == 0)
            return 1;
    return 0;
}

static int h_submit(struct mg_connection *c, void *cbdata)
{
    cluster_api *a = cbdata;
    http_body body = HTTP_BODY_INIT(a->budget);
    cJSON *root = NULL;
    int answered = cluster_post_object(c, a, &body, &root);
    if (answered)
        return answered;
    const cJSON *expr = cJSON_GetObjectItemCaseSensitive(root, "task");
    int st;
    if (!expr) {
        st = http_send_error(c, 400, NULL, NULL, "missing field 'task' (an expression)");
        goto out;
    }
    if (!cJSON_IsString(expr)) {
        st = http_send_error(c, 400, NULL, NULL, "field 'task' must be a string");
        goto out;
    }
    if (cluster_task_has_nul(body.b.data, body.b.len)) {
        st = http_send_error(c, 400, NULL, NULL, "field 'task' contains a NUL character");
        goto out;
    }
    const char *text = expr->valuestring;
    size_t len = strlen(text);
    expr_plan *plan;
    expr_error perr;
    int rc = expr_parse(text, len, &plan, &perr);
    if (rc == -E2BIG) {
        st = http_send_error(c, 400, NULL, NULL, "expression longer than %d bytes", EXPR_MAX_LEN);
        goto out;
    }
    if (rc == -EINVAL) {
        char extra[48];
        snprintf(extra, sizeof extra, "\"offset\":%zu", perr.offset);
        st = http_send_error(c, 400, NULL, extra, "malformed expression: %s", perr.msg);
        goto out;
    }
    int64_t id = 0;
    int finished = 0;
    if (rc == 0 && (rc = jobs_submit(a->jobs, text, len, plan, &id, &finished)) < 0)
        expr_plan_free(plan);
    if (rc < 0) {
        st = http_send_error(c, 503, NULL, NULL, "%s",
                             rc == -ENOMEM ? "out of memory" : "the job could not be stored");
        goto out;
    }
    dispatch_wake(a->disp);
    char out[96];
    int n = snprintf(out, sizeof out, "{\"job_id\":%lld,\"finished\":%s}\n", (long long)id,
                     finished ? "true" : "false");
    st = http_send_json(c, 200, NULL, out, (size_t)n);
out:
    cJSON_Delete(root);
    http_body_destroy(&body);
    return st;
}

static int h_job(struct mg_connection *c, void *cbdata)
{
    cluster_api *a = cbdata;
    if (!http_method_is(c, "GET"))
        return 405;
    const char *s = mg_get_request_info(c)->local_uri + strlen("/job/");
    char *end;
    errno = 0;
    long long id = strtoll(s, &end, 10);
    if (end == s || *end || errno || id < 1 || s[0] == '+' || s[0] == '-' || s[0] == ' ')
        return http_send_error(c, 400, NULL, NULL, "job ids are integers from 1: GET /job/ID");
    buf b = BUF_INIT;
    int rc = jobs_json(a->jobs, id, &b);
    if (rc == -ENOENT) {
        buf_destroy(&b);
        return http_send_error(c, 404, NULL, NULL, "no job %lld (never submitted or dropped)", id);
    }
    return cluster_send_buf(c, 200, &b);
}

static int h_jobs(struct mg_connection *c, void *cbdata)
{
    cluster_api *a = cbdata;
    if (!http_method_is(c, "GET"))
        return 405;
    buf b = BUF_INIT;
    jobs_list_json(a->jobs, CLUSTER_API_LIST, &b);
    return cluster_send_buf(c, 200, &b);
}

/* Builds the URL of an announcing node: its "url", else the source address
 * of the request and its "port" (default 8080). Returns 0 or -1 with err. */
static int cluster_node_url(struct mg_connection *c, const cJSON *root, char *url, size_t size,
                            char *err, size_t errsz)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "url");
    if (u && !cJSON_IsNull(u)) {
        if (!cJSON_IsString(u)) {
            snprintf(err, errsz, "field 'url' must be a string like \"http://HOST:PORT\"");
            return -1;
        }
        const char *s = u->valuestring, *why;
        size_t n;
        if (url_check(s, size, &n, &why) < 0) {
            snprintf(err, errsz, "field 'url' is %s", why);
            return -1;
        }
        memcpy(url, s, n);
        url[n] = '\0';
        return 0;
    }
    long port = 8080;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "port");
    if (p && !cJSON_IsNull(p)) {
        if (!cJSON_IsNumber(p) || p->valuedouble != floor(p->valuedouble) || p->valuedouble < 1 ||
            p->valuedouble > 65535) {
            snprintf(err, errsz, "field 'port' must be an integer from 1 to 65535");
            return -1;
        }
        port = (long)p->valuedouble;
    }
    snprintf(url, size, "http://%s:%ld", mg_get_request_info(c)->remote_addr, port);
    return 0;
}

static int h_worker(struct mg_connection *c, void *cbdata)
{
    cluster_api *a = cbdata;
    http_body body = HTTP_BODY_INIT(a->budget);
    cJSON *root = NULL;
    int answered = cluster_post_object(c, a, &body, &root);
    if (answered)
        return answered;
    char url[REGISTRY_URL_MAX], err[ERRSZ];
    int st, slots = 1;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "worker_name");
    const cJSON *sl = cJSON_GetObjectItemCaseSensitive(root, "slots");
    if (!cJSON_IsString(name) || !name->valuestring[0] ||
        strlen(name->valuestring) >= REGISTRY_NAME_MAX) {
        st = http_send_error(c, 400, NULL, NULL,
                             "field 'worker_name' must be a non-empty string of at most %d bytes",
                             REGISTRY_NAME_MAX - 1);
        goto out;
    }
    if (sl && !cJSON_IsNull(sl)) {
        if (!cJSON_IsNumber(sl) || sl->valuedouble != floor(sl->valuedouble) ||
            sl->valuedouble < 1 || sl->valuedouble > REGISTRY_MAX_SLOTS) {
            st =
                http_send_error(c, 400, NULL, NULL, "field 'slots' must be an integer from 1 to %d",
                                REGISTRY_MAX_SLOTS);
            goto out;
        }
        slots = (int)sl->valuedouble;
    }
    if (cluster_node_url(c, root, url, sizeof url, err, sizeof err) < 0) {
        st = http_send_error(c, 400, NULL, NULL, "%s", err);
        goto out;
    }
    int rc = registry_announce(a->reg, name->valuestring, url, slots);
    if (rc == -ENOSPC) {
        st = http_send_error(c, 503, NULL, NULL, "too many worker nodes (limit %d)",
                             REGISTRY_MAX_NODES);
        goto out;
    }
    if (rc < 0) {
        st = http_send_error(c, rc == -EINVAL ? 400 : 503, NULL, NULL, "cannot register: %s",
                             strerror(-rc));
        goto out;
    }
    if (rc == 1)
        log_info("worker %s registered at %s (%d slots)", name->valuestring, url, slots);
    dispatch_wake(a->disp);
    buf b = BUF_INIT;
    buf_puts(&b, "{\"worker_name\":");
    jsonw_cstr(&b, name->valuestring);
    buf_puts(&b, ",\"url\":");
    jsonw_cstr(&b, url);
    buf_printf(&b, ",\"slots\":%d,\"new\":%s}\n", slots, rc == 1 ? "true" : "false");
    st = cluster_send_buf(c, 200, &b);
out:
    cJSON_Delete(root);
    http_body_destroy(&body);
    return st;
}

static int h_workers(struct mg_connection *c, void *cbdata)
{
    cluster_api *a = cbdata;
    if (!http_method_is(c, "GET"))
        return 405;
    registry_node_info *nodes;
    size_t n;
    if (registry_snapshot(a->reg, &nodes, &n) < 0)
        return http_send_error(c, 503, NULL, NULL, "out of memory");
    buf b = BUF_INIT;
    char ts[TIMEFMT_LEN];
    buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        const registry_node_info *w = &nodes[i];
        buf_puts(&b, i ? ",{\"worker_name\":" : "{\"worker_name\":");
        jsonw_cstr(&b, w->name);
        buf_puts(&b, ",\"url\":");
        jsonw_cstr(&b, w->url);
        buf_printf(&b,
                   ",\"healthy\":%s,\"slots\":%d,\"in_flight\":%d,\"operations\":%ld,"
                   "\"failures\":%ld",
                   w->healthy ? "true" : "false", w->slots, w->in_flight, w->done, w->failures);
        buf_printf(&b, ",\"registered_at\":\"%s\"", time_fmt_utc(w->registered_us, ts));
        buf_printf(&b, ",\"last_seen\":\"%s\",\"last_error\":", time_fmt_utc(w->seen_us, ts));
        if (w->last_error[0])
            jsonw_cstr(&b, w->last_error);
        else
            buf_puts(&b, "null");
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]\n");
    free(nodes);
    return cluster_send_buf(c, 200, &b);
}

static int h_compute(struct mg_connection *c, void *cbdata)
{
    cluster_api *a = cbdata;
    if (!http_method_is(c, "POST"))
        return 405;
    http_body body = HTTP_BODY_INIT(a->budget);
    int rc = http_read_body_or_answer(c, cluster_max_body(a), 429, &body);
    if (rc) {
        http_body_destroy(&body);
        return rc;
    }
    compute_req req;
    char err[COMPUTE_ERR_MAX];
    rc = compute_parse_request(body.b.data ? body.b.data : "", body.b.len, &req, err, sizeof err);
    http_body_destroy(&body);
    if (rc < 0)
        return http_send_error(c, rc == -ENOMEM ? 503 : 400, NULL, NULL, "%s", err);
    if (a->compute_delay_ms > 0) {
        struct timespec ts = {a->compute_delay_ms / 1000,
                              (long)(a->compute_delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    num result;
    if (compute_run(&req, &result, err, sizeof err) < 0)
        return http_send_error(c, 400, NULL, NULL, "%s", err);
    buf b = BUF_INIT;
    compute_answer_json(&b, &req, result);
    return cluster_send_buf(c, 200, &b);
}

void cluster_api_register(cluster_api *a, http_routes *routes, size_t max_body,
                          int compute_delay_ms, jobs *j, registry *r, dispatch *d,
                          membudget *budget)
{
    a->max_body = max_body;
    a->compute_delay_ms = compute_delay_ms;
    a->budget = budget;
    a->jobs = j;
    a->reg = r;
    a->disp = d;
    http_routes_add(routes, "/submit$", h_submit, a, "POST /submit");
    http_routes_add(routes, "/job/", h_job, a, "GET /job/ID");
    http_routes_add(routes, "/jobs$", h_jobs, a, "GET /jobs");
    http_routes_add(routes, "/worker$", h_worker, a, "POST /worker");
    http_routes_add(routes, "/workers$", h_workers, a, "GET /workers");
    http_routes_add(routes, "/compute$", h_compute, a, "POST /compute");
}
