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
#include "request.h"
#include "timefmt.h"
#include "url.h"

/* Cluster requests are small: an expression of EXPR_MAX_LEN bytes with
 * JSON escaping fits easily. */
#define CLUSTER_API_MAX_BODY (1024 * 1024)
#define ERRSZ REQUEST_ERR_MAX

static int cluster_method_is(struct mg_connection *c, const char *want)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (strcmp(ri->request_method, want) == 0)
        return 1;
    char allow[64];
    snprintf(allow, sizeof allow, "Allow: %s\r\n", want);
    http_send_error(c, 405, allow, NULL, "method %s not allowed on %s; use %s", ri->request_method,
                    ri->local_uri, want);
    return 0;
}

/* Reads the body and parses it as a JSON object, answering errors itself.
 * Returns the tree (caller deletes it, then destroys body, whose reservation
 * covers the tree) or NULL (answered). The raw body is left in b for
 * exact number scanning. */
static cJSON *cluster_read_object(struct mg_connection *c, const cluster_api *a, http_body *body)
{
    size_t max = a->cfg->max_body < CLUSTER_API_MAX_BODY ? a->cfg->max_body : CLUSTER_API_MAX_BODY;
    int rc = http_read_body(c, max, body);
    const buf *b = &body->b;
    if (rc == -EFBIG) {
        http_send_error(c, 413, "Connection: close\r\n", NULL,
                        "request body is larger than the limit of %zu bytes", max);
        return NULL;
    }
    if (rc == -ENOBUFS || rc == -E2BIG) {
        http_send_over_budget(c, rc, 429, a->budget, body->need, 1);
        return NULL;
    }
    if (rc == -ENOMEM) {
        http_send_error(c, 503, NULL, NULL, "out of memory reading the request body");
        return NULL;
    }
    if (rc < 0)
        return NULL; /* client gone */
    char err[ERRSZ];
    cJSON *root = request_parse_object(b->data ? b->data : "", b->len, err, sizeof err);
    if (!root)
        http_send_error(c, 400, NULL, NULL, "%s", err);
    return root;
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
    if (!cluster_method_is(c, "POST"))
        return 405;
    http_body body = HTTP_BODY_INIT(a->budget);
    cJSON *root = cluster_read_object(c, a, &body);
    if (!root) {
        http_body_destroy(&body);
        return 400;
    }
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
        st = http_send_error(c, 503, NULL, NULL, "out of memory");
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
    if (!cluster_method_is(c, "GET"))
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
    if (!cluster_method_is(c, "GET"))
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
    if (!cluster_method_is(c, "POST"))
        return 405;
    http_body body = HTTP_BODY_INIT(a->budget);
    cJSON *root = cluster_read_object(c, a, &body);
    if (!root) {
        http_body_destroy(&body);
        return 400;
    }
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
    if (!cluster_method_is(c, "GET"))
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
    if (!cluster_method_is(c, "POST"))
        return 405;
    http_body body = HTTP_BODY_INIT(a->budget);
    size_t max = a->cfg->max_body < CLUSTER_API_MAX_BODY ? a->cfg->max_body : CLUSTER_API_MAX_BODY;
    int rc = http_read_body(c, max, &body);
    if (rc < 0) {
        http_body_destroy(&body);
        if (rc == -EIO || rc == -ETIMEDOUT) /* gone, or answered 408 */
            return 400;
        if (rc == -ENOBUFS || rc == -E2BIG)
            return http_send_over_budget(c, rc, 429, a->budget, body.need, 1);
        return http_send_error(c, rc == -EFBIG ? 413 : 503, NULL, NULL,
                               "cannot read the request body");
    }
    compute_req req;
    char err[COMPUTE_ERR_MAX];
    rc = compute_parse_request(body.b.data ? body.b.data : "", body.b.len, &req, err, sizeof err);
    http_body_destroy(&body);
    if (rc < 0)
        return http_send_error(c, rc == -ENOMEM ? 503 : 400, NULL, NULL, "%s", err);
    if (a->cfg->compute_delay_ms > 0) {
        struct timespec ts = {a->cfg->compute_delay_ms / 1000,
                              (long)(a->cfg->compute_delay_ms % 1000) * 1000000L};
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

void cluster_api_register(cluster_api *a, struct mg_context *ctx, const config *cfg, jobs *j,
                          registry *r, dispatch *d, membudget *budget)
{
    a->cfg = cfg;
    a->budget = budget;
    a->jobs = j;
    a->reg = r;
    a->disp = d;
    mg_set_request_handler(ctx, "/submit$", h_submit, a);
    mg_set_request_handler(ctx, "/job/", h_job, a);
    mg_set_request_handler(ctx, "/jobs$", h_jobs, a);
    mg_set_request_handler(ctx, "/worker$", h_worker, a);
    mg_set_request_handler(ctx, "/workers$", h_workers, a);
    mg_set_request_handler(ctx, "/compute$", h_compute, a);
}
