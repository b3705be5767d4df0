/* tasks_pg_fields: the task fields that schema version 2 added to a row
 * (limits, tests, the language, peak memory, the limit hit, the compile
 * step) and version 3 (the request's files), turned into parameters and
 * read back. Kept apart from the backend's rows so that later fields add
 * functions here rather than lines in every statement's neighbours. */
#include "tasks_pg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "request_files.h"
#include "request_tests.h"
#include "testset.h"

const char *pg_limits_param(const task_limits *l, char *out, size_t n)
{
    if (!l->timeout && !l->cpu && !l->memory && !l->procs && !l->output && !l->fsize && !l->disk)
        return NULL;
    /* Every limit is below 2^53 (request_limits.c), so a double holds it
     * exactly. */
    snprintf(out, n, "{%.17g,%lld,%lld,%lld,%lld,%lld,%lld}", l->timeout, (long long)l->cpu,
             (long long)l->memory, (long long)l->procs, (long long)l->output, (long long)l->fsize,
             (long long)l->disk);
    return out;
}

int pg_limits_parse(const char *s, task_limits *l)
{
    double v[7];
    memset(l, 0, sizeof *l);
    if (*s++ != '{')
        return -EINVAL;
    for (int i = 0; i < 7; i++) {
        char *end;
        v[i] = strtod(s, &end);
        if (end == s || *end != (i < 6 ? ',' : '}'))
            return -EINVAL;
        s = end + 1;
    }
    *l = (task_limits){.timeout = v[0],
                       .cpu = (int64_t)v[1],
                       .memory = (int64_t)v[2],
                       .procs = (int64_t)v[3],
                       .output = (int64_t)v[4],
                       .fsize = (int64_t)v[5],
                       .disk = (int64_t)v[6]};
    return 0;
}

int pg_tests_read(task *t, const PGresult *r, int row, int col, int final)
{
    if (PQgetisnull(r, row, col))
        return 0;
    unsigned char *text;
    size_t len;
    int rc = pgconn_unhex(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col), &text, &len);
    if (rc < 0)
        return rc;
    testset *ts = NULL;
    char why[REQUEST_ERR_MAX];
    if (final)
        rc = (ts = testset_new_rendered((const char *)text, len)) ? 0 : -ENOMEM;
    else
        rc = request_tests_parse_text((const char *)text, len, &ts, why, sizeof why);
    free(text);
    if (rc == 0)
        task_set_tests(t, ts);
    return rc;
}

int pg_fields_fill(task *t, const PGresult *r, int row, int col)
{
    t->mem_peak = PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
    t->limit = PQgetisnull(r, row, col + 1) ? NULL : task_limit_named(PQgetvalue(r, row, col + 1));
    t->compiled = PQgetvalue(r, row, col + 2)[0] == 't';
    t->compile_exited = !PQgetisnull(r, row, col + 4);
    t->compile_exit_code = (int)strtol(PQgetvalue(r, row, col + 4), NULL, 10);
    if (PQgetisnull(r, row, col + 3))
        return 0;
    return pgconn_unhex(PQgetvalue(r, row, col + 3), (size_t)PQgetlength(r, row, col + 3),
                        (unsigned char **)&t->compile_out, &t->compile_out_len);
}

int pg_fields_copy(task *t, const task *src)
{
    t->mem_peak = src->mem_peak;
    t->limit = src->limit;
    t->compiled = src->compiled;
    t->compile_exited = src->compile_exited;
    t->compile_exit_code = src->compile_exit_code;
    if (src->compile_out) {
        if (!(t->compile_out = malloc(src->compile_out_len + 1)))
            return -ENOMEM;
        memcpy(t->compile_out, src->compile_out, src->compile_out_len + 1);
        t->compile_out_len = src->compile_out_len;
    }
    if (src->tests && src->tests->ended && !t->tests) {
        testset *ts = testset_new_rendered(src->tests->rendered.data, src->tests->rendered.len);
        if (!ts)
            return -ENOMEM;
        task_set_tests(t, ts);
    }
    return 0;
}

int pg_files_read(task *t, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    unsigned char *blob;
    size_t len;
    int rc = pgconn_unhex(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col), &blob, &len);
    if (rc < 0)
        return rc;
    task_file *files;
    int n;
    /* Checked again as the journal's are: the row is another node's word. */
    rc = request_files_unpack(blob, len, task_program_name(t->type), &files, &n);
    free(blob);
    if (rc == 0)
        task_set_files(t, files, n);
    return rc;
}
