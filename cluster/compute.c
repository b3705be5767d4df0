/* compute: see compute.h. */
#include "compute.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "jsonscan.h"
#include "jsonbody.h"

/* Reads member `key` as a number: a JSON number, or a string that holds
 * exactly one number. */
static int compute_member_num(const char *body, size_t len, const char *key, num *out, char *err,
                              size_t errsz)
{
    const char *v;
    size_t vl;
    int rc = jsonscan_member(body, len, key, &v, &vl);
    if (rc == -ENOENT) {
        snprintf(err, errsz, "missing field '%s'", key);
        return -EINVAL;
    }
    if (rc < 0) {
        snprintf(err, errsz, "body is not a JSON object");
        return -EINVAL;
    }
    if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"' && !memchr(v, '\\', vl)) {
        v++;
        vl -= 2;
    }
    rc = num_from_text(v, vl, out);
    if (rc == -ENOMEM) {
        snprintf(err, errsz, "out of memory");
        return -ENOMEM;
    }
    if (rc == -ERANGE) {
        snprintf(err, errsz, "field '%s' is out of range", key);
        return -EINVAL;
    }
    if (rc < 0) {
        snprintf(err, errsz, "field '%s' must be a number", key);
        return -EINVAL;
    }
    return 0;
}

int compute_parse_request(const char *body, size_t len, compute_req *out, char *err, size_t errsz)
{
    cJSON *root = jsonbody_parse_object(body, len, err, errsz);
    if (!root)
        return -EINVAL;
    compute_req r;
    int rc = -EINVAL;
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "operation");
    if (!op) {
        snprintf(err, errsz, "missing field 'operation' (sum, sub, mul or div)");
        goto out;
    }
    if (!cJSON_IsString(op) || num_op_parse(op->valuestring, &r.op) < 0) {
        snprintf(err, errsz, "field 'operation' must be \"sum\", \"sub\", \"mul\" or \"div\"");
        goto out;
    }
    rc = compute_member_num(body, len, "op1", &r.a, err, errsz);
    if (rc == 0)
        rc = compute_member_num(body, len, "op2", &r.b, err, errsz);
    if (rc == 0)
        *out = r;
out:
    cJSON_Delete(root);
    return rc;
}

int compute_run(const compute_req *r, num *out, char *err, size_t errsz)
{
    int rc = num_apply(r->op, r->a, r->b, out);
    if (rc == -EDOM)
        snprintf(err, errsz, "division by zero");
    else if (rc == -ERANGE)
        snprintf(err, errsz, "result is not a finite number");
    else if (rc < 0)
        snprintf(err, errsz, "unknown operation");
    return rc;
}

static void compute_put_num(buf *b, num v)
{
    char txt[NUM_FMT_SIZE];
    if (num_fmt(v, txt, sizeof txt) < 0)
        buf_puts(b, "null");
    else
        buf_puts(b, txt);
}

int compute_request_json(buf *b, enum num_op op, num a, num b_)
{
    buf_printf(b, "{\"operation\":\"%s\",\"op1\":", num_op_name(op));
    compute_put_num(b, a);
    buf_puts(b, ",\"op2\":");
    compute_put_num(b, b_);
    buf_putc(b, '}');
    return buf_failed(b) ? -ENOMEM : 0;
}

int compute_answer_json(buf *b, const compute_req *r, num result)
{
    buf_printf(b, "{\"operation\":\"%s\",\"op1\":", num_op_name(r->op));
    compute_put_num(b, r->a);
    buf_puts(b, ",\"op2\":");
    compute_put_num(b, r->b);
    buf_puts(b, ",\"result\":");
    compute_put_num(b, result);
    buf_puts(b, "}\n");
    return buf_failed(b) ? -ENOMEM : 0;
}

int compute_parse_answer(const char *body, size_t len, num *out, char *err, size_t errsz)
{
    cJSON *root = jsonbody_parse_object(body, len, err, errsz);
    if (!root)
        return -EINVAL;
    cJSON_Delete(root);
    int rc = compute_member_num(body, len, "result", out, err, errsz);
    return rc < 0 ? -EINVAL : 0;
}

void compute_parse_error(const char *body, size_t len, char *msg, size_t size)
{
    char err[COMPUTE_ERR_MAX];
    cJSON *root = jsonbody_parse_object(body, len, err, sizeof err);
    const cJSON *e = root ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
    if (cJSON_IsString(e))
        snprintf(msg, size, "%s", e->valuestring);
    else
        snprintf(msg, size, "error answer without an \"error\" field");
    cJSON_Delete(root);
}
