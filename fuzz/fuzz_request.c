/* Fuzzes the parsers of POST /create_task and GET /get_status bodies:
 * any bytes must give either a well-formed request or an error message,
 * never a crash, a leak or an unterminated argument vector. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_thread.h"
#include "request.h"
#include "request_tests.h"
#include "testset.h"

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
