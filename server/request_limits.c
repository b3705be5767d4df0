/* request_limits: see request_limits.h. */
#include "request_limits.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "jsonbody.h"
#include "jsonw.h"

/* One key of `limits`: where it goes, its unit in sentences, the option
 * that sets its cap. */
typedef struct limit_key {
    const char *name;
    size_t off; /* of an int64_t in task_limits; timeout is the double */
    const char *unit;
    const char *option;
} limit_key;

#define KEY(f, unit, opt)                                                                          \
    {                                                                                              \
#f, offsetof(task_limits, f), unit, opt                                                    \
    }
static const limit_key keys[] = {
    KEY(timeout, "seconds", "--task-timeout"), KEY(cpu, "seconds", "--task-cpu"),
    KEY(memory, "bytes", "--task-memory"),     KEY(procs, "processes", "--task-procs"),
    KEY(output, "bytes", "--max-output"),      KEY(fsize, "bytes", "--task-fsize"),
    KEY(disk, "bytes", "--task-disk"),
};
#undef KEY
#define NKEYS (sizeof keys / sizeof *keys)

/* Whole values above this are refused whatever the cap: they would not
 * fit the int64_t they go to, nor be exact in the JSON double. */
#define LIMIT_MAX 9007199254740992.0 /* 2^53 */

static int is_timeout(const limit_key *k)
{
    return k->off == offsetof(task_limits, timeout);
}

/* Key k of a task_limits: a cap in caps, or what a task asked for. */
static double field_of(const limit_key *k, const task_limits *caps)
{
    if (!caps)
        return 0;
    if (is_timeout(k))
        return caps->timeout;
    return (double)*(const int64_t *)((const char *)caps + k->off);
}

void request_limits_caps(const config *cfg, task_limits *caps)
{
    *caps = (task_limits){
        .timeout = cfg->task_timeout,
        .cpu = cfg->task_cpu,
        .memory = (int64_t)cfg->task_memory,
        .procs = cfg->task_procs,
        .output = (int64_t)cfg->max_output,
        .fsize = (int64_t)cfg->task_fsize,
        .disk = (int64_t)cfg->task_disk,
    };
    if (!cfg->sandbox)
        caps->cpu = caps->memory = caps->procs = caps->fsize = caps->disk = -1;
}

/* Checks one member of `limits` and stores it. 0 or -EINVAL. */
static int parse_one(const cJSON *v, const cJSON *limits, const task_limits *caps, task_limits *out,
                     char *err, size_t errsz)
{
    const limit_key *k = NULL;
    for (size_t i = 0; i < NKEYS && !k; i++)
        if (strcmp(v->string, keys[i].name) == 0)
            k = &keys[i];
    if (!k) {
        snprintf(err, errsz,
                 "limits.%.64s is not a limit: use timeout, cpu, memory, procs, output, fsize "
                 "or disk",
                 v->string);
        return -EINVAL;
    }
    /* cJSON keeps duplicate keys: refuse rather than pick one. */
    if (cJSON_GetObjectItemCaseSensitive(limits, k->name) != v) {
        snprintf(err, errsz, "limits.%s is given twice", k->name);
        return -EINVAL;
    }
    if (!cJSON_IsNumber(v)) {
        snprintf(err, errsz, "limits.%s must be a number of %s", k->name, k->unit);
        return -EINVAL;
    }
    double d = v->valuedouble;
    char num[32], capn[32];
    jsonw_f64_fmt(num, sizeof num, d);
    if (!(d > 0) || !isfinite(d)) {
        snprintf(err, errsz, "limits.%s must be a positive number of %s, not %s", k->name, k->unit,
                 num);
        return -EINVAL;
    }
    if (!is_timeout(k) && d != floor(d)) {
        snprintf(err, errsz, "limits.%s must be a whole number of %s, not %s", k->name, k->unit,
                 num);
        return -EINVAL;
    }
    double cap = field_of(k, caps);
    if (cap < 0) {
        snprintf(err, errsz,
                 "limits.%s cannot be applied: this server runs tasks with --sandbox off, "
                 "where only timeout and output apply",
                 k->name);
        return -EINVAL;
    }
    if (cap > 0 && d > cap) {
        jsonw_f64_fmt(capn, sizeof capn, cap);
        snprintf(err, errsz, "limits.%s %s is above this server's cap of %s %s (%s)", k->name, num,
                 capn, k->unit, k->option);
        return -EINVAL;
    }
    if (d > LIMIT_MAX) {
        snprintf(err, errsz, "limits.%s %s is too large", k->name, num);
        return -EINVAL;
    }
    if (is_timeout(k))
        out->timeout = d;
    else
        *(int64_t *)((char *)out + k->off) = (int64_t)d;
    return 0;
}

int request_parse_limits(const cJSON *limits, const task_limits *caps, task_limits *out, char *err,
                         size_t errsz)
{
    memset(out, 0, sizeof *out);
    if (!limits || cJSON_IsNull(limits))
        return 0;
    if (!cJSON_IsObject(limits)) {
        snprintf(err, errsz,
                 "field 'limits' must be an object such as {\"timeout\": 5, \"memory\": 67108864}");
        return -EINVAL;
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, limits)
    {
        int rc = parse_one(v, limits, caps, out, err, errsz);
        if (rc < 0) {
            memset(out, 0, sizeof *out);
            return rc;
        }
    }
    return 0;
}

int request_limits_caps_json(buf *b, const task_limits *caps)
{
    buf_putc(b, '{');
    for (size_t i = 0, n = 0; i < NKEYS; i++) {
        double cap = field_of(&keys[i], caps);
        if (cap < 0)
            continue;
        buf_printf(b, "%s\"%s\":", n++ ? "," : "", keys[i].name);
        if (cap > 0)
            jsonw_f64(b, cap);
        else
            buf_puts(b, "null");
    }
    buf_putc(b, '}');
    return buf_failed(b) ? -ENOMEM : 0;
}

int request_limits_json(buf *b, const task_limits *l)
{
    buf_putc(b, '{');
    for (size_t i = 0, n = 0; i < NKEYS; i++) {
        double v = field_of(&keys[i], l);
        if (v <= 0)
            continue;
        buf_printf(b, "%s\"%s\":", n++ ? "," : "", keys[i].name);
        jsonw_f64(b, v);
    }
    buf_putc(b, '}');
    return buf_failed(b) ? -ENOMEM : 0;
}

int request_limits_parse_text(const char *text, size_t len, task_limits *out, char *err,
                              size_t errsz)
{
    memset(out, 0, sizeof *out);
    cJSON *root = jsonbody_parse_object(text, len, err, errsz);
    if (!root)
        return -EINVAL;
    int rc = request_parse_limits(root, NULL, out, err, errsz);
    cJSON_Delete(root);
    return rc;
}
