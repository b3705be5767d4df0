/* calc_api: see calc_api.h. */
#include "calc_api.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "jsonscan.h"
#include "jsonw.h"
#include "log.h"
#include "jsonbody.h"

/* A body holds one number: no need to accept the 64 MiB of a program. */
#define CALC_MAX_BODY 65536
/* stderr quoted in a failed calculation's answer. */
#define CALC_MAX_STDERR 1000

int calc_api_parse_data(const char *body, size_t len, char *out, size_t size, char *err,
                        size_t errsz)
{
    cJSON *root = jsonbody_parse_object(body, len, err, errsz);
    if (!root)
        return -EINVAL;
    int rc = -EINVAL;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "data");
    const char *text = NULL;
    size_t tlen = 0;
    char dbl[32];
    if (!d) {
        snprintf(err, errsz, "missing field 'data': send {\"data\": <number>}");
        goto fail_json;
    }
    if (cJSON_IsNumber(d)) {
        /* The raw text keeps the number exact; it must be the member cJSON
         * saw (a duplicate key spelt with escapes could differ). */
        if (jsonscan_member(body, len, "data", &text, &tlen) < 0 ||
            !jsonscan_is_number(text, tlen) || strtod(text, NULL) != d->valuedouble) {
            int n = jsonw_f64_fmt(dbl, sizeof dbl, d->valuedouble);
            if (n < 0 || strcmp(dbl, "null") == 0) {
                snprintf(err, errsz, "field 'data' is out of range");
                goto fail_json;
            }
            text = dbl;
            tlen = (size_t)n;
        }
    } else if (cJSON_IsString(d) && jsonscan_is_number(d->valuestring, strlen(d->valuestring))) {
        text = d->valuestring;
        tlen = strlen(text);
    } else {
        snprintf(err, errsz,
                 "field 'data' must be a number (or a string holding one, like \"17\")");
        goto fail_json;
    }
    if (tlen >= size || tlen > CALC_MAX_NUMBER) {
        snprintf(err, errsz, "field 'data' is longer than %d characters", CALC_MAX_NUMBER);
        goto fail_json;
    }
    memcpy(out, text, tlen);
    out[tlen] = '\0';
    rc = 0;
fail_json:
    cJSON_Delete(root);
    return rc;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int calc_api_result_json(buf *b, const task *t, enum task_status st)
{
    const char *out = t->out ? t->out : "";
    size_t n = t->out_len;
    while (n > 0 && is_space(*out)) {
        out++;
        n--;
    }
    while (n > 0 && is_space(out[n - 1]))
        n--;
    int status = 200;
    if (st == TASK_SUCCESS && jsonscan_is_number(out, n)) {
        buf_puts(b, "{\"result\":");
        buf_append(b, out, n);
        buf_puts(b, "}\n");
    } else {
        status = 500;
        buf b2 = BUF_INIT;
        if (st == TASK_SUCCESS) {
            buf_puts(&b2, "calculation output is not a number: ");
            buf_append(&b2, out, n > 200 ? 200 : n);
        } else {
            buf_printf(&b2, "calculation failed: %s", t->error ? t->error : "unknown error");
        }
        buf_puts(b, "{\"error\":");
        jsonw_str(b, b2.data ? b2.data : "", b2.len);
        buf_destroy(&b2);
        buf_puts(b, ",\"status\":\"ERROR\",\"stderr\":");
        size_t elen = t->err_len > CALC_MAX_STDERR ? CALC_MAX_STDERR : t->err_len;
        /* A character cut at the limit becomes U+FFFD, like any invalid byte. */
        jsonw_str(b, t->err ? t->err : "", t->err ? elen : 0);
        buf_puts(b, "}\n");
    }
    return buf_failed(b) ? -ENOMEM : status;
}

static int h_post(struct mg_connection *c, api *a)
{
    if (!atomic_load(&a->accepting))
        return http_send_error(c, 503, "Retry-After: 5\r\n", NULL,
                               "server is shutting down; not accepting calculations");
    int refused = api_refuse_tasks(c, a);
    if (refused)
        return refused;
    http_body body = HTTP_BODY_INIT(a->budget);
    size_t max = a->cfg->max_body < CALC_MAX_BODY ? a->cfg->max_body : CALC_MAX_BODY;
    int rc = http_read_body_or_answer(c, max, a->cfg->reject_status, &body);
    if (rc) {
        http_body_destroy(&body);
        return rc;
    }
    char number[CALC_MAX_NUMBER + 1], err[JSONBODY_ERR_MAX];
    rc = calc_api_parse_data(body.b.data ? body.b.data : "", body.b.len, number, sizeof number, err,
                             sizeof err);
    buf_destroy(&body.b); /* its reservation goes to the task */
    if (rc < 0) {
        http_body_destroy(&body);
        return http_send_error(c, 400, NULL, NULL, "%s", err);
    }

    char **args = calloc(2, sizeof *args);
    if (args)
        args[0] = strdup(number);
    if (!args || !args[0]) {
        free(args);
        http_body_destroy(&body);
        return http_send_error(c, 503, NULL, NULL, "out of memory");
    }
    task *t = task_new(TASK_CALC, NULL, 0, args, 1);
    int refused_st = api_submit(c, a, t, &body, "calculation", "calculations running", "waiting");
    if (refused_st)
        return refused_st;
    log_debug("task %s calc data=%s", t->id_str, number);
    char out[80];
    int n = snprintf(out, sizeof out, "{\"request_id\":\"%s\"}\n", t->id_str);
    task_unref(t);
    return http_send_json(c, 200, NULL, out, (size_t)n);
}

static int h_get(struct mg_connection *c, api *a)
{
    char id[128];
    int rc = http_query(c, "request_id", id, sizeof id);
    if (rc == -ENOENT)
        return http_send_error(c, 400, NULL, NULL,
                               "missing query parameter 'request_id': use GET /?request_id=ID");
    task *t = rc < 0 ? NULL : tasks_lookup(a->tk, id);
    if (t && t->type != TASK_CALC) {
        task_unref(t);
        t = NULL;
    }
    if (!t)
        return http_send_error(c, 400, NULL, "\"status\":\"NOTEXIST\"",
                               "no calculation with request_id '%.64s' (unknown, or its result "
                               "is no longer kept)",
                               rc < 0 ? "(too long)" : id);
    task_view v = tasks_view(a->tk, t, 0);
    if (!task_status_final(v.status)) {
        task_unref(t);
        char extra[40];
        snprintf(extra, sizeof extra, "\"status\":\"%s\"", task_status_name(v.status));
        return http_send_error(c, 400, NULL, extra,
                               "result not available yet: the calculation is %s",
                               v.status == TASK_WAIT ? "waiting for a worker" : "running");
    }
    buf b = BUF_INIT;
    int st = calc_api_result_json(&b, t, v.status);
    task_unref(t);
    if (st < 0)
        st = http_send_error(c, 503, NULL, NULL, "out of memory");
    else
        http_send_json(c, st, NULL, b.data, b.len);
    buf_destroy(&b);
    return st;
}

static int h_root(struct mg_connection *c, void *cbdata)
{
    api *a = cbdata;
    const char *m = mg_get_request_info(c)->request_method;
    if (strcmp(m, "POST") == 0)
        return h_post(c, a);
    if (strcmp(m, "GET") == 0)
        return h_get(c, a);
    return http_send_error(c, 405, "Allow: GET, POST\r\n", NULL,
                           "method %s not allowed on /; use POST / or GET /?request_id=ID", m);
}

void calc_api_register(http_routes *routes, api *a)
{
    /* Not named by the 404: it lists the routes every server has. */
    http_routes_add(routes, "/$", h_root, a, NULL);
}
