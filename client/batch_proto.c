/* batch_proto: see batch_proto.h. */
#include "batch_proto.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "jsonscan.h"
#include "jsonw.h"

int batch_proto_init(batch_proto *p, enum batch_api api, const char *url, const char *type,
                     const unsigned char *program, size_t len)
{
    memset(p, 0, sizeof *p);
    if (strncmp(url, "http://", 7) != 0 || !url[7])
        return -EINVAL;
    p->api = api;
    p->long_poll = 30;
    size_t n = strlen(url);
    while (n > 7 && url[n - 1] == '/')
        n--;
    p->base = strndup(url, n);
    if (!p->base)
        return -ENOMEM;
    if (api == BATCH_API_TASKSOLVER) {
        char *b64 = b64_encode(program, len);
        buf b = BUF_INIT;
        buf_puts(&b, "{\"type\":");
        jsonw_cstr(&b, type);
        buf_printf(&b, ",\"file\":\"%s\",\"args\":[\"", b64 ? b64 : "");
        free(b64);
        p->body_prefix = b64 ? buf_steal(&b, NULL) : NULL;
        buf_destroy(&b);
        if (!p->body_prefix) {
            free(p->base);
            return -ENOMEM;
        }
    }
    return 0;
}

void batch_proto_destroy(batch_proto *p)
{
    free(p->base);
    free(p->body_prefix);
    memset(p, 0, sizeof *p);
}

int batch_proto_submit(const batch_proto *p, const char *input, buf *url, buf *body)
{
    buf_reset(url);
    buf_reset(body);
    if (p->api == BATCH_API_CALC) {
        buf_printf(url, "%s/", p->base);
        buf_printf(body, "{\"data\":%s}", input);
    } else {
        /* The input is a JSON number: nothing in it needs escaping. */
        buf_printf(url, "%s/create_task", p->base);
        buf_printf(body, "%s%s\"]}", p->body_prefix, input);
    }
    return buf_failed(url) || buf_failed(body) ? -ENOMEM : 0;
}

/* Ids come from the server; keep only what a URL can carry unescaped. */
static void put_id(buf *b, const char *id)
{
    for (const char *s = id; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            buf_putc(b, (char)c);
        else
            buf_printf(b, "%%%02X", c);
    }
}

int batch_proto_poll(const batch_proto *p, const char *id, buf *url)
{
    buf_reset(url);
    if (p->api == BATCH_API_CALC) {
        buf_printf(url, "%s/?request_id=", p->base);
        put_id(url, id);
    } else {
        buf_printf(url, "%s/get_status?id=", p->base);
        put_id(url, id);
        buf_printf(url, "&wait=%g", p->long_poll);
    }
    return buf_failed(url) ? -ENOMEM : 0;
}

static cJSON *parse(const char *body, size_t len)
{
    return len ? cJSON_ParseWithLength(body, len) : NULL;
}

static const char *str_member(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* r->text = the server's "error" sentence, or "HTTP STATUS: BODY...". */
static void why(batch_reply *r, long status, const cJSON *doc, const char *body, size_t len)
{
    const char *e = str_member(doc, "error");
    buf_reset(&r->text);
    if (e && status == 200) {
        buf_puts(&r->text, e); /* a task that failed, not an HTTP problem */
        return;
    }
    if (e) {
        buf_printf(&r->text, "HTTP %ld: %s", status, e);
        return;
    }
    buf_printf(&r->text, "HTTP %ld", status);
    if (len) {
        buf_puts(&r->text, ": ");
        for (size_t i = 0; i < len && i < 200; i++)
            buf_putc(&r->text, body[i] >= ' ' && body[i] < 127 ? body[i] : ' ');
    }
}

static enum batch_verdict by_status(long status)
{
    if (status == 403 || status == 429 || status == 503)
        return BATCH_REFUSED;
    if (status == 0 || status == 502 || status == 504)
        return BATCH_TRANSIENT;
    return BATCH_FAILED;
}

int batch_proto_submit_reply(const batch_proto *p, long status, const char *body, size_t len,
                             batch_reply *r)
{
    cJSON *doc = parse(body, len);
    buf_reset(&r->text);
    const char *id = str_member(doc, p->api == BATCH_API_CALC ? "request_id" : "id");
    if (status >= 200 && status < 300 && id && *id && strlen(id) < 256) {
        r->verdict = BATCH_ACCEPTED;
        buf_puts(&r->text, id);
    } else {
        why(r, status, doc, body, len);
        if (status >= 200 && status < 300) {
            buf_puts(&r->text, " (no id in the answer)");
            r->verdict = BATCH_FAILED;
        } else if (status == 400) {
            r->verdict = BATCH_REJECTED;
        } else if (status == 503 &&
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "permanent"))) {
            r->verdict = BATCH_STOP; /* asking again will not help */
        } else if (status >= 400 && status < 500 && status != 403 && status != 429) {
            /* 404 (no such route), 405, 413...: every input would get it. */
            r->verdict = BATCH_FATAL;
        } else {
            r->verdict = by_status(status);
        }
    }
    cJSON_Delete(doc);
    return buf_failed(&r->text) ? -ENOMEM : 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && strchr(" \t\r\n\v\f", (*s)[0]))
        (*s)++, (*n)--;
    while (*n && strchr(" \t\r\n\v\f", (*s)[*n - 1]))
        (*n)--;
}

static void calc_poll(long status, const cJSON *doc, const char *body, size_t len, batch_reply *r)
{
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "result");
    if (status == 200 && res) {
        r->verdict = BATCH_RESULT;
        const char *raw;
        size_t n;
        if (cJSON_IsNumber(res) && jsonscan_member(body, len, "result", &raw, &n) == 0 &&
            jsonscan_is_number(raw, n)) {
            buf_append(&r->text, raw, n); /* exactly as the server wrote it */
        } else if (cJSON_IsString(res)) {
            buf_puts(&r->text, res->valuestring);
        } else {
            char *s = cJSON_PrintUnformatted(res);
            buf_puts(&r->text, s ? s : "null");
            free(s);
        }
        return;
    }
    why(r, status, doc, body, len);
    const char *st = str_member(doc, "status");
    if (status == 404 || (status == 400 && st && strcmp(st, "NOTEXIST") == 0))
        r->verdict = BATCH_LOST;
    else if (status == 400)
        r->verdict = BATCH_PENDING; /* the seed: "not yet available or missing" */
    else if (status == 200)
        r->verdict = BATCH_FAILED;
    else
        r->verdict = by_status(status);
}

static void tasksolver_poll(long status, const cJSON *doc, const char *body, size_t len,
                            batch_reply *r)
{
    const char *st = str_member(doc, "status");
    if (status == 200 && st && strcmp(st, "SUCCESS") == 0) {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "result");
        const char *out = str_member(res, "stdout");
        if (out) {
            size_t n = strlen(out);
            trim(&out, &n);
            r->verdict = BATCH_RESULT;
            buf_append(&r->text, out, n);
            return;
        }
    }
    if (status == 200 && st && (strcmp(st, "WAIT") == 0 || strcmp(st, "RUNNING") == 0)) {
        r->verdict = BATCH_PENDING;
        return;
    }
    why(r, status, doc, body, len);
    if (status == 404)
        r->verdict = BATCH_LOST;
    else if (status == 200)
        r->verdict = BATCH_FAILED; /* ERROR, or an answer without stdout */
    else
        r->verdict = by_status(status);
}

int batch_proto_poll_reply(const batch_proto *p, long status, const char *body, size_t len,
                           batch_reply *r)
{
    cJSON *doc = parse(body, len);
    buf_reset(&r->text);
    if (p->api == BATCH_API_CALC)
        calc_poll(status, doc, body, len, r);
    else
        tasksolver_poll(status, doc, body, len, r);
    cJSON_Delete(doc);
    return buf_failed(&r->text) ? -ENOMEM : 0;
}
