/* api: see api.h. */
#include "lang.h"
#include "api.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "jsonw.h"
#include "live.h"
#include "log.h"
#include "request.h"
#include "request_files.h"
#include "request_limits.h"
#include "request_tests.h"
#include "testset.h"
#include "timefmt.h"

#define ERRSZ REQUEST_ERR_MAX

static void put_time(buf *b, const char *key, int64_t us)
{
    char ts[TIMEFMT_LEN];
    buf_printf(b, ",\"%s\":\"%s\"", key, time_fmt_utc(us, ts));
}

/* The result's "memory_peak_bytes" and "limit" members. */
static void api_limits_json(buf *b, const task *t)
{
    buf_puts(b, ",\"memory_peak_bytes\":");
    if (t->mem_peak > 0)
        jsonw_i64(b, t->mem_peak);
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"limit\":");
    jsonw_cstr(b, t->limit);
}

int api_status_json(buf *b, const task *t, const task_view *v)
{
    buf_printf(b, "{\"id\":\"%s\",\"type\":\"%s\",\"status\":\"%s\",\"attempts\":%d,\"meta\":{",
               t->id_str, task_type_label(t), task_status_name(v->status), v->attempts);
    char ts[TIMEFMT_LEN];
    buf_printf(b, "\"created_at\":\"%s\"", time_fmt_utc(t->created_us, ts));
    if (v->status != TASK_WAIT)
        put_time(b, "started_at", v->started_us);
    if (task_status_final(v->status)) {
        put_time(b, "finished_at", v->finished_us);
        buf_printf(b, ",\"queued_ms\":%.3f,\"run_ms\":%.3f,\"cpu_ms\":%.3f",
                   (v->started_us - t->created_us) / 1e3, (v->finished_us - v->started_us) / 1e3,
                   t->cpu_us / 1e3);
    }
    buf_putc(b, '}');
    if (task_status_final(v->status)) {
        buf_puts(b, ",\"result\":{\"stdout\":");
        jsonw_str(b, t->out ? t->out : "", t->out_len);
        buf_puts(b, ",\"stderr\":");
        jsonw_str(b, t->err ? t->err : "", t->err_len);
        buf_puts(b, ",\"exit_code\":");
        if (t->exited)
            jsonw_i64(b, t->exit_code);
        else
            buf_puts(b, "null");
        buf_puts(b, ",\"signal\":");
        if (t->term_signal)
            jsonw_i64(b, t->term_signal);
        else
            buf_puts(b, "null");
        buf_printf(b, ",\"timed_out\":%s,\"stdout_truncated\":%s,\"stderr_truncated\":%s",
                   t->timed_out ? "true" : "false", t->out_truncated ? "true" : "false",
                   t->err_truncated ? "true" : "false");
        buf_printf(b, ",\"stdout_bytes\":%zu,\"stderr_bytes\":%zu", t->out_total, t->err_total);
        buf_printf(b, ",\"cancelled\":%s", t->cancelled ? "true" : "false");
        api_limits_json(b, t);
        if (t->tests && t->tests->ended)
            buf_append(b, t->tests->rendered.data, t->tests->rendered.len);
        lang_result_json(b, t);
        buf_puts(b, "}");
        if (t->error) {
            buf_puts(b, ",\"error\":");
            jsonw_cstr(b, t->error);
        }
    }
    buf_puts(b, "}\n");
    return buf_failed(b) ? -ENOMEM : 0;
}

/* Reads the query parameter `wait` (seconds, capped at --max-wait) into
 * *wait, -1 when absent. Returns 0, or the status of the 400 it sent. */
static int query_wait(struct mg_connection *c, const api *a, double *wait)
{
    char wait_s[32];
    *wait = -1;
    if (http_query(c, "wait", wait_s, sizeof wait_s) < 0)
        return 0;
    char *end;
    double w = strtod(wait_s, &end);
    if (end == wait_s || *end || !isfinite(w) || w < 0)
        return http_send_error(c, 400, NULL, NULL,
                               "query parameter 'wait' must be a number of seconds >= 0");
    *wait = w > a->cfg->max_wait ? a->cfg->max_wait : w;
    return 0;
}

/* Answers t's status document, first waiting up to `wait` seconds (none
 * if not above 0) for it to finish if the long-poll allowance has room. Takes over the caller's
 * reference to t. Returns the status sent. */
static int send_status(struct mg_connection *c, api *a, task *t, double wait)
{
    int64_t deadline = 0;
    int waiting = 0, refused = 0;
    if (wait > 0) {
        /* Past the cap a long poll answers at once rather than tie up
         * a connection thread that other clients need. */
        if (atomic_fetch_add(&a->waiters, 1) < a->max_waiters) {
            waiting = 1;
            deadline = time_mono_us() + (int64_t)(wait * 1e6);
        } else {
            atomic_fetch_sub(&a->waiters, 1);
            refused = 1;
        }
    }
    task_view v = tasks_view(a->tk, t, deadline);
    if (waiting)
        atomic_fetch_sub(&a->waiters, 1);
    /* A client whose wait was not granted would otherwise ask again at
     * once and spin: tell it when to come back. */
    const char *hint =
        refused && !task_status_final(v.status) ? "Retry-After: 1\r\nX-Wait-Refused: 1\r\n" : NULL;
    buf b = BUF_INIT;
    if (api_status_json(&b, t, &v) < 0) {
        buf_destroy(&b);
        task_unref(t);
        return http_send_error(c, 503, NULL, NULL, "out of memory");
    }
    http_send_json(c, 200, hint, b.data, b.len);
    buf_destroy(&b);
    task_unref(t);
    return 200;
}

static int h_create(struct mg_connection *c, void *cbdata)
{
    api *a = cbdata;
    if (!http_method_is(c, "POST"))
        return 405;
    if (!atomic_load(&a->accepting))
        return http_send_error(c, 503, "Retry-After: 5\r\n", NULL,
                               "server is shutting down; not accepting tasks");
    int refused = api_refuse_tasks(c, a);
    if (refused)
        return refused;
    /* ?wait=S answers the status document, as GET /get_status?wait=S
     * would, instead of the bare id: one exchange per task instead of two
     * for a client that wants the result. */
    double wait;
    int bad = query_wait(c, a, &wait);
    if (bad)
        return bad;
    http_body body = HTTP_BODY_INIT(a->budget);
    int answered = http_read_body_or_answer(c, a->cfg->max_body, a->cfg->reject_status, &body);
    if (answered) {
        http_body_destroy(&body);
        return answered;
    }
    create_req req;
    char err[ERRSZ];
    task_limits caps;
    request_limits_caps(a->cfg, &caps);
    int rc = request_parse_create(body.b.data ? body.b.data : "", body.b.len, &caps, &req, err,
                                  sizeof err);
    if (rc == 0)
        rc = lang_check_create(a->langs, &req, err, sizeof err);
    /* The bytes go; their reservation stays for the task to take over. */
    buf_destroy(&body.b);
    if (rc == 0) {
        rc = request_tests_check_cap(req.tests, a->cfg->max_tests, err, sizeof err);
        /* The files go to the task's disk: its own where it asked. */
        size_t disk = (size_t)task_limit_pick(req.limits.disk, (int64_t)a->cfg->task_disk);
        if (rc == 0)
            rc = request_files_fit(req.files, req.nfiles, req.file_len, disk, err, sizeof err);
        if (rc < 0)
            create_req_destroy(&req);
    }
    if (rc < 0) {
        http_body_destroy(&body);
        if (rc == -ENOMEM)
            return http_send_error(c, 503, NULL, NULL, "out of memory");
        return http_send_error(c, 400, NULL, NULL, "%s", err);
    }
    task *t = task_new(req.type, req.file, req.file_len, req.args, req.argc);
    if (!t) {
        http_body_destroy(&body);
        free(req.input);
        task_args_free(req.env);
        task_files_free(req.files, req.nfiles);
        testset_free(req.tests);
        return http_send_error(c, 503, NULL, NULL, "out of memory");
    }
    task_set_input(t, req.input, req.input_len, req.env, req.envc);
    t->limits = req.limits;
    task_set_files(t, req.files, req.nfiles);
    task_set_tests(t, req.tests);
    task_set_lang(t, req.lang);
    int refused_st = api_submit(c, a, t, &body, "task", "workers busy", "tasks waiting");
    if (refused_st)
        return refused_st;
    if (wait >= 0)
        return send_status(c, a, t, wait);
    char out[80];
    int n = snprintf(out, sizeof out, "{\"id\":\"%s\"}\n", t->id_str);
    task_unref(t);
    return http_send_json(c, 200, NULL, out, (size_t)n);
}

/* Reads the task id from ?id=ID or a JSON body {"id": ID} into id.
 * Returns 0, or the status of the error it answered. */
static int read_task_id(struct mg_connection *c, api *a, char *id, size_t idsz)
{
    char err[ERRSZ];
    int rc = http_query(c, "id", id, idsz);
    if (rc == -ENAMETOOLONG)
        return http_send_error(c, 404, NULL, "\"status\":\"NOTEXIST\"",
                               "no task with that id (ids are UUIDs)");
    if (rc >= 0)
        return 0;
    /* The seed's form: the id in a JSON body (of a GET, too). */
    http_body body = HTTP_BODY_INIT(a->budget);
    int answered = http_read_body_or_answer(c, a->cfg->max_body, a->cfg->reject_status, &body);
    if (answered) {
        http_body_destroy(&body);
        return answered;
    }
    rc = request_parse_id(body.b.data ? body.b.data : "", body.b.len, id, idsz, err, sizeof err);
    http_body_destroy(&body);
    if (rc == -ENOENT)
        return http_send_error(c, 400, NULL, NULL,
                               "missing task id: use ?id=ID or a JSON body {\"id\": ID}");
    if (rc < 0)
        return http_send_error(c, 400, NULL, NULL, "%s", err);
    return 0;
}

static int h_status(struct mg_connection *c, void *cbdata)
{
    api *a = cbdata;
    if (!http_method_is(c, "GET"))
        return 405;
    char id[128];
    int answered = read_task_id(c, a, id, sizeof id);
    if (answered)
        return answered;
    double wait;
    int bad = query_wait(c, a, &wait);
    if (bad)
        return bad;
    task *t = tasks_lookup(a->tk, id);
    if (!t)
        return http_send_error(c, 404, NULL, "\"status\":\"NOTEXIST\"", "no task with id '%s'", id);
    return send_status(c, a, t, wait);
}

/* How long POST /cancel_task waits for the task to be final before it
 * answers: the kill takes milliseconds, the worker then reaps the task
 * and, with --data-dir, the journal commits the end. */
#define API_CANCEL_WAIT 10.0

/* POST /cancel_task {"id": ID} or ?id=ID: the task never starts or is
 * killed; answers its status document once it is final. */
static int h_cancel(struct mg_connection *c, void *cbdata)
{
    api *a = cbdata;
    if (!http_method_is(c, "POST"))
        return 405;
    char id[128];
    int answered = read_task_id(c, a, id, sizeof id);
    if (answered)
        return answered;
    task *t = tasks_lookup(a->tk, id);
    if (!t)
        return http_send_error(c, 404, NULL, "\"status\":\"NOTEXIST\"", "no task with id '%s'", id);
    int rc = tasks_cancel(a->tk, t);
    if (rc == -EALREADY) {
        /* A shared store's copy may be older than the end that beat the
         * cancel: the status named is the one now. */
        task *now = tasks_lookup(a->tk, id);
        if (now) {
            task_unref(t);
            t = now;
        }
        task_view v = tasks_view(a->tk, t, 0);
        char extra[96];
        snprintf(extra, sizeof extra, "\"id\":\"%s\",\"status\":\"%s\"", t->id_str,
                 task_status_name(v.status));
        task_unref(t);
        return http_send_error(c, 409, NULL, extra, "task '%s' has already ended (%s)", id,
                               task_status_name(v.status));
    }
    if (rc < 0) {
        task_unref(t);
        return http_send_error(c, 503, "Retry-After: 1\r\n", NULL,
                               "the %s is unreachable: the task was not cancelled; retry later",
                               a->tk->ops->name);
    }
    return send_status(c, a, t, API_CANCEL_WAIT);
}

/* Sends data as chunks of the chunked response. Returns 0 or -1 once the
 * client is gone. */
static int send_chunks(struct mg_connection *c, const char *data, size_t len)
{
    while (len) {
        unsigned n = len > 65536 ? 65536 : (unsigned)len;
        if (mg_send_chunk(c, data, n) < 0)
            return -1;
        data += n;
        len -= n;
    }
    return 0;
}

/* Non-zero when s is one line of printable bytes, fit for a header. */
static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

/* Longest Location line: http_send_json's head has 1 KiB for the status
 * line and every header. */
#define API_LOCATION_MAX 768

/* Answers 307 to the same stream on the node at url, which runs t: only
 * there is its output live. Returns the status sent, or 0 when the
 * address would not fit in the header (then the caller streams here). */
static int redirect_stream(struct mg_connection *c, const task *t, const char *url)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *path = ri->local_uri && printable(ri->local_uri) ? ri->local_uri : "/stream";
    const char *query = ri->query_string && printable(ri->query_string) ? ri->query_string : "";
    buf h = BUF_INIT, b = BUF_INIT;
    buf_printf(&h, "Location: %s%s?%s\r\n", url, path, query);
    if (h.len > API_LOCATION_MAX) {
        buf_destroy(&h);
        return 0;
    }
    buf_printf(&b, "{\"id\":\"%s\",\"status\":\"RUNNING\",\"node\":", t->id_str);
    jsonw_cstr(&b, url);
    buf_puts(&b, "}\n");
    int st = buf_failed(&h) || buf_failed(&b) ? http_send_error(c, 503, NULL, NULL, "out of memory")
                                              : http_send_json(c, 307, h.data, b.data, b.len);
    buf_destroy(&b);
    buf_destroy(&h);
    return st;
}

/* GET /stream?id=ID: the task's stdout as it is produced, as a chunked
 * text/plain response that ends when the task ends. A finished task's
 * stdout is sent at once; a waiting one is streamed once it starts. With
 * a shared store, a task running on another node is redirected there. */
static int h_stream(struct mg_connection *c, void *cbdata)
{
    api *a = cbdata;
    if (!http_method_is(c, "GET"))
        return 405;
    char id[128];
    if (http_query(c, "id", id, sizeof id) < 0)
        return http_send_error(c, 400, NULL, NULL, "missing task id: use /stream?id=ID");
    task *t = tasks_lookup(a->tk, id);
    if (!t)
        return http_send_error(c, 404, NULL, "\"status\":\"NOTEXIST\"", "no task with id '%s'", id);
    char url[512];
    int st = tasks_runs_elsewhere(a->tk, t, url, sizeof url) ? redirect_stream(c, t, url) : 0;
    if (st) {
        task_unref(t);
        return st;
    }
    /* A stream holds a connection thread as long as the task runs: it
     * shares the long-poll allowance. */
    if (atomic_fetch_add(&a->waiters, 1) >= a->max_waiters) {
        atomic_fetch_sub(&a->waiters, 1);
        task_unref(t);
        return http_send_error(c, 429, "Retry-After: 1\r\n", NULL,
                               "too many streams and long polls in progress; retry later");
    }
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Transfer-Encoding: chunked\r\nCache-Control: no-store\r\n"
                      "X-Task-Id: %s\r\n\r\n",
                      t->id_str);
    int ok = mg_write(c, head, (size_t)hn) == hn;
    size_t off = 0;
    char *chunk = ok ? malloc(65536) : NULL;
    while (ok && chunk) {
        live *lv = tasks_live(a->tk, t);
        if (!lv) {
            task_view v = tasks_view(a->tk, t, 0);
            if (task_status_final(v.status)) {
                /* Finished: what was not streamed yet is in the result. */
                if (t->out_len > off)
                    ok = send_chunks(c, t->out + off, t->out_len - off) == 0;
                break;
            }
            if (tasks_closing(a->tk))
                break;
            if (v.status == TASK_WAIT)
                tasks_wait_started(a->tk, t, time_mono_us() + 1000000);
            else /* running without a live buffer (it could not be allocated) */
                tasks_view(a->tk, t, time_mono_us() + 1000000);
            continue;
        }
        int done = 0;
        while (ok && !done) {
            size_t n = live_read(lv, off, chunk, 65536, time_mono_us() + 5000000, &done);
            if (n) {
                ok = send_chunks(c, chunk, n) == 0;
                off += n;
            } else if (!done && tasks_closing(a->tk)) {
                done = 1;
            }
        }
        live_unref(lv);
        break;
    }
    free(chunk);
    if (ok)
        mg_send_chunk(c, "", 0);
    atomic_fetch_sub(&a->waiters, 1);
    task_unref(t);
    return 200;
}

static int h_count(struct mg_connection *c, void *cbdata)
{
    api *a = cbdata;
    if (!http_method_is(c, "GET"))
        return 405;
    tasks_counts n = tasks_service_counts(a->tk);
    char out[448];
    int len = snprintf(out, sizeof out,
                       "{\"tasks\":%ld,\"running\":%ld,\"workers\":%d,\"finished\":%ld,"
                       "\"total\":%ld,\"evicted\":%ld,\"max_queue\":%ld,\"queued_bytes\":%zu,"
                       "\"max_queue_bytes\":%zu}\n",
                       n.queued, n.running, a->cfg->workers, n.finished, n.total, n.evicted,
                       a->cfg->max_queue, membudget_used(a->budget), membudget_max(a->budget));
    return http_send_json(c, 200, NULL, out, (size_t)len);
}

static int h_info(struct mg_connection *c, void *cbdata)
{
    api *a = cbdata;
    if (!http_method_is(c, "GET"))
        return 405;
    buf b = BUF_INIT;
    buf_printf(&b,
               "{\"name\":\"tasksolver\",\"version\":\"%s\",\"workers\":%d,"
               "\"task_timeout\":%g,\"max_output\":%zu,\"max_body\":%zu,\"max_queue\":%ld,"
               "\"max_queue_bytes\":%zu,\"max_finished\":%ld,\"max_wait\":%g,\"python\":",
               TS_VERSION, a->cfg->workers, a->cfg->task_timeout, a->cfg->max_output,
               a->cfg->max_body, a->cfg->max_queue, membudget_max(a->budget), a->cfg->max_finished,
               a->cfg->max_wait);
    jsonw_cstr(&b, a->cfg->python);
    buf_puts(&b, ",\"limit_caps\":");
    task_limits caps;
    request_limits_caps(a->cfg, &caps);
    request_limits_caps_json(&b, &caps);
    buf_printf(&b, ",\"max_tests\":%d,\"compile_timeout\":%g", a->cfg->max_tests,
               a->cfg->compile_timeout);
    if (a->sandbox_json)
        buf_printf(&b, ",\"sandbox\":%s", a->sandbox_json);
    buf_puts(&b, "}\n");
    int st = buf_failed(&b) ? http_send_error(c, 503, NULL, NULL, "out of memory")
                            : http_send_json(c, 200, NULL, b.data, b.len);
    buf_destroy(&b);
    return st;
}

int api_register(api *a, http_routes *routes, const config *cfg, tasks *tk)
{
    a->cfg = cfg;
    a->tk = tk;
    atomic_init(&a->waiters, 0);
    atomic_init(&a->accepting, 1);
    /* Leave at least half of the connection threads to short requests. */
    a->max_waiters = cfg->http_threads / 2;
    http_routes_add(routes, "/create_task$", h_create, a, "POST /create_task");
    http_routes_add(routes, "/get_status$", h_status, a, "GET /get_status");
    http_routes_add(routes, "/get_task_count$", h_count, a, "GET /get_task_count");
    http_routes_add(routes, "/stream$", h_stream, a, "GET /stream");
    http_routes_add(routes, "/cancel_task$", h_cancel, a, "POST /cancel_task");
    http_routes_add(routes, "/info$", h_info, a, "GET /info");
    return 0;
}

static int send_refusal(struct mg_connection *c, const api *a, int rc, size_t need,
                        const char *noun, const char *busy, const char *waiting)
{
    if (rc == -ENOBUFS || rc == -E2BIG)
        return http_send_over_budget(c, rc, a->cfg->reject_status, a->budget, need, 0);
    if (rc == -ESHUTDOWN)
        return http_send_error(c, 503, "Retry-After: 5\r\n", NULL,
                               "server is shutting down; not accepting %ss", noun);
    if (rc == -EAGAIN) {
        int st = a->cfg->reject_status;
        return http_send_error(c, st, st == 429 ? "Retry-After: 1\r\n" : NULL, NULL,
                               "server is at capacity (%s: %d, %s: %ld, limit %ld); retry later",
                               busy, a->cfg->workers, waiting, tasks_service_counts(a->tk).queued,
                               a->cfg->max_queue);
    }
    if (rc == -ENOTCONN)
        return http_send_error(c, 503, "Retry-After: 1\r\n", NULL,
                               "the %s is unreachable: the %s was not accepted; retry later",
                               a->tk->ops->name, noun);
    return http_send_error(c, 503, "Retry-After: 5\r\n", NULL,
                           "could not record the %s in the %s: %s", noun, a->tk->ops->name,
                           strerror(-rc));
}

int api_submit(struct mg_connection *c, const api *a, task *t, http_body *body, const char *noun,
               const char *busy, const char *waiting)
{
    if (!t) {
        http_body_destroy(body);
        return http_send_error(c, 503, NULL, NULL, "out of memory");
    }
    int rc = tasks_submit(a->tk, t, &body->held);
    if (rc == 0)
        return 0;
    size_t need = task_bytes(t);
    task_unref(t);
    return send_refusal(c, a, rc, need, noun, busy, waiting);
}

int api_refuse_tasks(struct mg_connection *c, const api *a)
{
    if (!a->refusal)
        return 0;
    return http_send_error(c, 503, NULL, "\"permanent\":true", "%s", a->refusal);
}

void api_stop_accepting(api *a)
{
    atomic_store(&a->accepting, 0);
}
