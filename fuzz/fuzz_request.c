/* Fuzzes the parsers of POST /create_task and GET /get_status bodies:
 * any bytes must give either a well-formed request or an error message,
 * never a crash, a leak or an unterminated argument vector; the files,
 * limits and tests of a request must pass the journal's round trip. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_thread.h"
#include "request.h"
#include "request_files.h"
#include "request_limits.h"
#include "request_tests.h"
#include "testset.h"

/* Non-zero when name climbs out of the task directory: absolute, or with
 * a ".." component ("..ox" is a plain name). Written apart from
 * request_files.c's own check on purpose: the oracle must not share the
 * code it judges. */
static int escapes(const char *name)
{
    if (name[0] == '/')
        return 1;
    for (const char *c = name;; c++) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return 1;
        c += n;
        if (!*c)
            return 0;
    }
}

/* Aborts unless r's files survive the journal's blob unchanged. */
static void check_files(const create_req *r)
{
    if (r->nfiles > REQUEST_MAX_FILES || (r->nfiles && !r->files))
        abort();
    unsigned char *blob;
    size_t len;
    task_file *back;
    int n;
    if (request_files_pack(r->files, r->nfiles, &blob, &len) < 0)
        return;
    int rc = request_files_unpack(blob, len, task_program_name(r->type), &back, &n);
    if (rc == -EINVAL || (rc == 0 && n != r->nfiles))
        abort();
    for (int i = 0; rc == 0 && i < n; i++)
        if (strcmp(back[i].name, r->files[i].name) || back[i].len != r->files[i].len ||
            (back[i].len && memcmp(back[i].data, r->files[i].data, back[i].len)) ||
            escapes(back[i].name))
            abort();
    if (rc == 0)
        task_files_free(back, n);
    free(blob);
}

/* Aborts unless r's limits read back from the journal's text unchanged. */
static void check_limits(const create_req *r)
{
    buf b = BUF_INIT;
    task_limits back;
    char err[REQUEST_ERR_MAX];
    if (request_limits_json(&b, &r->limits) == 0 &&
        (request_limits_parse_text(b.data, b.len, &back, err, sizeof err) < 0 ||
         memcmp(&back, &r->limits, sizeof back)))
        abort();
    buf_destroy(&b);
}

/* A parsed `tests` is well-formed and reads back from its journal form
 * as the same tests. */
static void check_tests(const testset *ts)
{
    if (ts->n < 1 || ts->n > REQUEST_TESTS_MAX || !ts->cases)
        abort();
    for (int i = 0; i < ts->n; i++) {
        const testset_case *c = &ts->cases[i];
        if ((c->args && c->args[c->argc]) || (c->expected && c->expected[c->expected_len]))
            abort();
    }
    buf b = BUF_INIT;
    testset *back = NULL;
    char err[REQUEST_ERR_MAX];
    if (testset_write_cases(&b, ts) == 0 &&
        request_tests_parse_text(b.data, b.len, &back, err, sizeof err) == -EINVAL)
        abort();
    if (back && (back->n != ts->n || back->stop_on_failure != ts->stop_on_failure))
        abort();
    testset_free(back);
    buf_destroy(&b);
}

/* One input, on the small-stack thread. */
static void fuzz_one(const uint8_t *data, size_t size)
{
    create_req r;
    char err[REQUEST_ERR_MAX];
    /* The default settings' caps (tests/unit/test_request.c uses the same). */
    const task_limits caps = {60, 30, 256 << 20, 64, 1 << 20, 64 << 20, 128 << 20};
    int rc = request_parse_create((const char *)data, size, &caps, &r, err, sizeof err);
    if (rc == 0) {
        if (!r.args || r.args[r.argc] != NULL)
            abort();
        for (int i = 0; i < r.argc; i++)
            if (!r.args[i])
                abort();
        if (r.type == TASK_BIN && r.file_len == 0)
            abort();
        const task_limits *l = &r.limits;
        if (l->timeout < 0 || l->timeout > caps.timeout || l->cpu < 0 || l->cpu > caps.cpu ||
            l->memory < 0 || l->memory > caps.memory || l->procs < 0 || l->procs > caps.procs ||
            l->output < 0 || l->output > caps.output || l->fsize < 0 || l->fsize > caps.fsize ||
            l->disk < 0 || l->disk > caps.disk)
            abort();
        if ((r.input_len && !r.input) || r.envc > REQUEST_MAX_ENV || (r.env && r.env[r.envc]))
            abort();
        for (int i = 0; i < r.envc; i++)
            if (!r.env[i] || !strchr(r.env[i], '=') || strncmp(r.env[i], "HOME=", 5) == 0 ||
                strncmp(r.env[i], "TMPDIR=", 7) == 0)
                abort();
        check_files(&r);
        check_limits(&r);
        if (r.tests)
            check_tests(r.tests);
        create_req_destroy(&r);
    } else if (rc == -EINVAL && (err[0] == '\0' || !memchr(err, '\0', sizeof err))) {
        abort();
    }
    char id[64];
    rc = request_parse_id((const char *)data, size, id, sizeof id, err, sizeof err);
    if (rc == 0 && !memchr(id, '\0', sizeof id))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_thread_run(fuzz_one, data, size);
    return 0;
}
