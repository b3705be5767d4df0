/* request_tests: see request_tests.h. */
#include "request_tests.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonbody.h"
#include "request.h"

/* Copies the string member `key` of entry i, NUL-ended (absent or null:
 * *out stays NULL). */
static int copy_text(const cJSON *v, int i, const char *key, char **out, size_t *len, char *err,
                     size_t errsz)
{
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v)) {
        snprintf(err, errsz, "tests[%d].%s must be a string", i, key);
        return -EINVAL;
    }
    size_t n = strlen(v->valuestring);
    if (!(*out = malloc(n + 1)))
        return -ENOMEM;
    memcpy(*out, v->valuestring, n + 1);
    *len = n;
    return 0;
}

/* Fills c from entry i of `tests`. On error c keeps what it took, for
 * testset_free. */
static int parse_case(const cJSON *e, int i, testset_case *c, char *err, size_t errsz)
{
    if (!cJSON_IsObject(e)) {
        snprintf(err, errsz,
                 "tests[%d] must be an object {\"stdin\", \"args\", \"expected_output\"}", i);
        return -EINVAL;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, e)
    {
        if (strcmp(m->string, "stdin") != 0 && strcmp(m->string, "args") != 0 &&
            strcmp(m->string, "expected_output") != 0) {
            snprintf(err, errsz,
                     "tests[%d] has an unknown key '%.40s' (stdin, args, expected_output)", i,
                     m->string);
            return -EINVAL;
        }
        /* cJSON keeps duplicate keys: refuse rather than pick one. */
        if (cJSON_GetObjectItemCaseSensitive(e, m->string) != m) {
            snprintf(err, errsz, "tests[%d].%s is given twice", i, m->string);
            return -EINVAL;
        }
    }
    int rc = copy_text(cJSON_GetObjectItemCaseSensitive(e, "stdin"), i, "stdin", (char **)&c->input,
                       &c->input_len, err, errsz);
    if (rc == 0)
        rc = copy_text(cJSON_GetObjectItemCaseSensitive(e, "expected_output"), i, "expected_output",
                       &c->expected, &c->expected_len, err, errsz);
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(e, "args");
    if (rc == 0 && args && !cJSON_IsNull(args)) {
        char name[32];
        snprintf(name, sizeof name, "tests[%d].args", i);
        rc = request_parse_args(args, name, &c->args, &c->argc, err, errsz);
    }
    return rc;
}

int request_tests_parse(const cJSON *root, testset **out, char *err, size_t errsz)
{
    *out = NULL;
    const cJSON *tests = cJSON_GetObjectItemCaseSensitive(root, "tests");
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(root, "stop_on_failure");
    if (stop && !cJSON_IsBool(stop)) {
        snprintf(err, errsz, "field 'stop_on_failure' must be true or false");
        return -EINVAL;
    }
    if (!tests || cJSON_IsNull(tests)) {
        if (stop) {
            snprintf(err, errsz, "field 'stop_on_failure' needs a 'tests' list");
            return -EINVAL;
        }
        return 0;
    }
    if (!cJSON_IsArray(tests)) {
        snprintf(err, errsz, "field 'tests' must be a list of objects");
        return -EINVAL;
    }
    int n = cJSON_GetArraySize(tests);
    if (n == 0) {
        snprintf(err, errsz, "field 'tests' is empty: give at least one test, or leave it out");
        return -EINVAL;
    }
    if (n > REQUEST_TESTS_MAX) {
        snprintf(err, errsz, "tests has %d entries; no server takes more than %d", n,
                 REQUEST_TESTS_MAX);
        return -EINVAL;
    }
    testset *ts = testset_new(n);
    if (!ts)
        return -ENOMEM;
    ts->stop_on_failure = cJSON_IsTrue(stop);
    int i = 0, rc = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, tests)
    {
        rc = parse_case(e, i, &ts->cases[i], err, errsz);
        if (rc < 0) {
            testset_free(ts);
            return rc;
        }
        i++;
    }
    *out = ts;
    return 0;
}

int request_tests_check_cap(const testset *ts, int max_tests, char *err, size_t errsz)
{
    if (!ts || ts->n <= max_tests)
        return 0;
    snprintf(err, errsz, "tests has %d entries; this server's cap is %d (--max-tests)", ts->n,
             max_tests);
    return -E2BIG;
}

int request_tests_parse_text(const char *text, size_t len, testset **out, char *err, size_t errsz)
{
    *out = NULL;
    cJSON *root = jsonbody_parse_object(text, len, err, errsz);
    if (!root)
        return -EINVAL;
    int rc = request_tests_parse(root, out, err, errsz);
    cJSON_Delete(root);
    return rc;
}
