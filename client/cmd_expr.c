/* cmd_expr: the `tasksolver-cli expr` subcommand, the seed's client flow for
 * arithmetic jobs: submit the expression to a master, check once that the
 * job is listed in GET /jobs, poll GET /job/ID every --interval seconds
 * and print the answer (exit 0) or the job's error (exit 1).
 *
 * Progress goes to stderr; stdout gets only the answer, exactly as the
 * master wrote it (big integers are not rounded through a double). */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "commands.h"
#include "httpc.h"
#include "jsonscan.h"
#include "jsonw.h"
#include "secret.h"

#define EXPR_HTTP_TIMEOUT 30.0
#define EXPR_MAX_FAILURES 3 /* consecutive failed polls before giving up */

struct expr_opts {
    const char *url;
    double interval;
    double timeout; /* 0: wait as long as it takes */
    const char *token_file;
    char *token; /* owned: bearer token read from token_file, or NULL */
    buf text;    /* the expression: the other arguments joined by spaces */
};

static void expr_usage(FILE *f)
{
    fprintf(f, "usage: tasksolver-cli expr EXPRESSION [--url URL] [--interval SECONDS]\n"
               "                          [--timeout SECONDS] [--token-file FILE]\n\n"
               "Submits EXPRESSION (+ - * / and parentheses) to a tasksolver master, checks\n"
               "that the job is listed, polls it and prints the answer. Exit status: 0 with\n"
               "the answer, 1 if the job failed or the master could not be used, 2 for\n"
               "bad usage. Several arguments are joined with spaces: expr 1 + 2.\n\n"
               "  --url URL           master [http://127.0.0.1:8080]\n"
               "  --interval SECONDS  time between polls [5]\n"
               "  --timeout SECONDS   give up after this long (0: never) [0]\n"
               "  --token-file FILE   send the first line of FILE as a bearer token\n"
               "                      (for a master started with --auth-token-file)\n");
}

static int expr_seconds(const char *s, double min, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < min)
        return -1;
    *out = v;
    return 0;
}

/* Returns 0, 1 after --help, or 2 after a usage error. */
static int expr_parse_args(int argc, char **argv, struct expr_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        const char *names[] = {"--url", "--interval", "--timeout", "--token-file"};
        int which = -1;
        for (int k = 0; k < 4; k++) {
            size_t n = strlen(names[k]);
            if (strcmp(a, names[k]) == 0) {
                which = k;
                if (i + 1 >= argc) {
                    fprintf(stderr, "tasksolver-cli expr: %s needs a value\n", a);
                    return 2;
                }
                val = argv[++i];
            } else if (strncmp(a, names[k], n) == 0 && a[n] == '=') {
                which = k;
                val = a + n + 1;
            }
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            expr_usage(stdout);
            return 1;
        }
        if (which == 0) {
            o->url = val;
        } else if (which == 1 && expr_seconds(val, 0.01, &o->interval) < 0) {
            fprintf(stderr, "tasksolver-cli expr: --interval must be seconds >= 0.01\n");
            return 2;
        } else if (which == 2 && expr_seconds(val, 0, &o->timeout) < 0) {
            fprintf(stderr, "tasksolver-cli expr: --timeout must be seconds >= 0\n");
            return 2;
        } else if (which == 3) {
            o->token_file = val;
        } else if (which < 0) {
            /* Not an option: part of the expression, so "-5+3" works. */
            if (o->text.len)
                buf_putc(&o->text, ' ');
            buf_puts(&o->text, a);
        }
    }
    if (!o->text.len) {
        fprintf(stderr, "tasksolver-cli expr: missing EXPRESSION\n");
        expr_usage(stderr);
        return 2;
    }
    return buf_failed(&o->text) ? 2 : 0;
}

/* Prints the "error" of an error answer, with a caret under the offset
 * for a malformed expression. */
static void expr_print_error(const char *what, int status, const buf *resp, const char *text)
{
    cJSON *root = cJSON_ParseWithLength(resp->data ? resp->data : "", resp->len);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(root, "offset");
    if (cJSON_IsString(err))
        fprintf(stderr, "tasksolver-cli: %s: %s\n", what, err->valuestring);
    else
        fprintf(stderr, "tasksolver-cli: %s: HTTP %d\n", what, status);
    if (text && cJSON_IsNumber(off) && off->valuedouble >= 0 &&
        off->valuedouble <= (double)strlen(text) && strlen(text) < 200 && !strchr(text, '\n'))
        fprintf(stderr, "  %s\n  %*s^\n", text, (int)off->valuedouble, "");
    cJSON_Delete(root);
}

/* Sends one request; on a transport failure prints why and returns -1. */
static int expr_call(const char *method, const struct expr_opts *o, const char *path,
                     const char *body, buf *resp)
{
    char url[2048], err[CURL_ERROR_SIZE + 64];
    snprintf(url, sizeof url, "%s%s", o->url, path);
    buf_reset(resp);
    int st =
        httpc_request(method, url, body, o->token, EXPR_HTTP_TIMEOUT, NULL, resp, err, sizeof err);
    if (st < 0)
        fprintf(stderr, "tasksolver-cli: %s %s: %s\n", method, url, err);
    return st;
}

static long long expr_submit(const struct expr_opts *o, buf *resp)
{
    buf body = BUF_INIT;
    buf_puts(&body, "{\"task\":");
    jsonw_str(&body, o->text.data, o->text.len);
    buf_putc(&body, '}');
    if (buf_failed(&body)) {
        buf_destroy(&body);
        return -1;
    }
    int st = expr_call("POST", o, "/submit", body.data, resp);
    buf_destroy(&body);
    if (st < 0)
        return -1;
    if (st != 200) {
        expr_print_error("submit refused", st, resp, o->text.data);
        return -1;
    }
    cJSON *root = cJSON_ParseWithLength(resp->data, resp->len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "job_id");
    long long v = cJSON_IsNumber(id) && id->valuedouble >= 1 ? (long long)id->valuedouble : -1;
    cJSON_Delete(root);
    if (v < 0)
        fprintf(stderr, "tasksolver-cli: submit answered without a job_id: %.200s\n", resp->data);
    return v;
}

/* The seed's check that the job is recorded: it must be in GET /jobs (or,
 * if many jobs came in since, answer GET /job/ID). Returns 0 or -1. */
static int expr_check_listed(const struct expr_opts *o, long long id, buf *resp)
{
    if (expr_call("GET", o, "/jobs", NULL, resp) == 200) {
        cJSON *root = cJSON_ParseWithLength(resp->data, resp->len);
        const cJSON *jb;
        int found = 0;
        cJSON_ArrayForEach(jb, root)
        {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(jb, "job_id");
            found |= cJSON_IsNumber(v) && (long long)v->valuedouble == id;
        }
        cJSON_Delete(root);
        if (found) {
            fprintf(stderr, "job %lld is listed in /jobs\n", id);
            return 0;
        }
    }
    char path[64];
    snprintf(path, sizeof path, "/job/%lld", id);
    if (expr_call("GET", o, path, NULL, resp) == 200) {
        fprintf(stderr, "job %lld is not among the newest in /jobs but exists\n", id);
        return 0;
    }
    fprintf(stderr, "tasksolver-cli: job %lld is not known to the master\n", id);
    return -1;
}

static double expr_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void expr_sleep(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Polls until the job finishes. Returns the exit status. */
static int expr_poll(const struct expr_opts *o, long long id, buf *resp)
{
    char path[64];
    snprintf(path, sizeof path, "/job/%lld", id);
    double start = expr_now();
    int failures = 0;
    for (;;) {
        int st = expr_call("GET", o, path, NULL, resp);
        if (st == 200) {
            failures = 0;
            cJSON *root = cJSON_ParseWithLength(resp->data, resp->len);
            int fin = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "finished"));
            const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
            int rc = -1;
            const char *ans;
            size_t alen;
            if (fin && cJSON_IsString(err)) {
                fprintf(stderr, "tasksolver-cli: job %lld failed: %s\n", id, err->valuestring);
                rc = 1;
            } else if (fin && jsonscan_member(resp->data, resp->len, "answer", &ans, &alen) == 0) {
                printf("%.*s\n", (int)alen, ans);
                rc = 0;
            } else if (!fin) {
                fprintf(stderr, "job %lld not finished yet\n", id);
            }
            cJSON_Delete(root);
            if (rc >= 0)
                return rc;
        } else if (st > 0) {
            expr_print_error("polling failed", st, resp, NULL);
            if (st == 404)
                return 1;
            failures++;
        } else {
            failures++;
        }
        if (failures >= EXPR_MAX_FAILURES) {
            fprintf(stderr, "tasksolver-cli: giving up after %d failed polls\n", failures);
            return 1;
        }
        if (o->timeout > 0 && expr_now() + o->interval - start > o->timeout) {
            fprintf(stderr, "tasksolver-cli: job %lld not finished after %g s\n", id, o->timeout);
            return 1;
        }
        expr_sleep(o->interval);
    }
}

/* Reads the bearer token of --token-file. Returns 0 or -1 (reported). */
static int expr_read_token(struct expr_opts *o)
{
    int rc = secret_read(o->token_file, &o->token, NULL);
    if (rc < 0)
        fprintf(stderr, "tasksolver-cli: %s: %s\n", o->token_file,
                rc == -ENODATA ? "no token on the first line" : strerror(-rc));
    return rc < 0 ? -1 : 0;
}

int cmd_expr(int argc, char **argv)
{
    struct expr_opts o = {.url = "http://127.0.0.1:8080", .interval = 5, .timeout = 0};
    int rc = expr_parse_args(argc, argv, &o);
    if (rc) {
        buf_destroy(&o.text);
        return rc == 1 ? 0 : 2;
    }
    if (o.token_file && expr_read_token(&o) < 0) {
        buf_destroy(&o.text);
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "tasksolver-cli: cannot initialise libcurl\n");
        buf_destroy(&o.text);
        secret_free(o.token);
        return 1;
    }
    /* Accept the URL with a trailing slash. */
    char url[1024];
    snprintf(url, sizeof url, "%s", o.url);
    for (size_t n = strlen(url); n > 0 && url[n - 1] == '/'; n--)
        url[n - 1] = '\0';
    o.url = url;
    buf resp = BUF_INIT;
    rc = 1;
    long long id = expr_submit(&o, &resp);
    if (id > 0) {
        fprintf(stderr, "job %lld submitted to %s\n", id, o.url);
        if (expr_check_listed(&o, id, &resp) == 0)
            rc = expr_poll(&o, id, &resp);
    }
    buf_destroy(&resp);
    buf_destroy(&o.text);
    secret_free(o.token);
    curl_global_cleanup();
    return rc;
}
