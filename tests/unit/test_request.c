/* Unit tests for request parsing and the get_status JSON document. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "request.h"
#include "request_limits.h"

/* The default settings' caps (fuzz/fuzz_request.c uses the same). */
static const task_limits caps = {60, 30, 256 << 20, 64, 1 << 20, 64 << 20, 128 << 20};

static int parse(const char *body, create_req *r, char *err)
{
    return request_parse_create(body, strlen(body), &caps, r, err, REQUEST_ERR_MAX);
}

static void create_bin_with_array_args(void **state)
{
    create_req r;
    char err[REQUEST_ERR_MAX];
    /* "echo hi" */
    assert_int_equal(
        parse("{\"type\":\"bin\",\"file\":\"ZWNobyBoaQ==\",\"args\":[\"a b\",\"\"]}", &r, err), 0);
    assert_int_equal(r.type, TASK_BIN);
    assert_int_equal(r.file_len, 7);
    assert_memory_equal(r.file, "echo hi", 7);
    assert_int_equal(r.argc, 2);
    assert_string_equal(r.args[0], "a b");
    assert_string_equal(r.args[1], "");
    assert_null(r.args[2]);
    create_req_destroy(&r);
}

static void create_string_args_are_split(void **state)
{
    create_req r;
    char err[REQUEST_ERR_MAX];
    assert_int_equal(
        parse("{\"type\":\"python\",\"file\":\"cHJpbnQoMSk=\",\"args\":\"x 'y z'\"}", &r, err), 0);
    assert_int_equal(r.argc, 2);
    assert_string_equal(r.args[1], "y z");
    assert_memory_equal(r.file, "print(1)", 8);
    create_req_destroy(&r);
}

static void create_missing_args_means_none(void **state)
{
    create_req r;
    char err[REQUEST_ERR_MAX];
    assert_int_equal(parse("{\"type\":\"python\",\"file\":\"print(2)\"}", &r, err), 0);
    assert_int_equal(r.argc, 0);
    assert_null(r.args[0]);
    assert_memory_equal(r.file, "print(2)", 8); /* plain text fallback */
    create_req_destroy(&r);
}

static void create_errors_name_the_field(void **state)
{
    static const struct {
        const char *body, *word;
    } cases[] = {
        {"", "empty"},
        {"{", "JSON"},
        {"{} x", "after"},
        {"\"str\"", "object"},
        {"{\"file\":\"YQ==\"}", "'type'"},
        {"{\"type\":\"e/xe\",\"file\":\"YQ==\"}", "e/xe"},
        {"{\"type\":\"\",\"file\":\"YQ==\"}", "'type'"},
        {"{\"type\":\"abcdefghijklmnopqrstuvwxyz0123456\",\"file\":\"YQ==\"}", "'type'"},
        {"{\"type\":\"bin\"}", "'file'"},
        {"{\"type\":\"bin\",\"file\":\"@@@\"}", "base64"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"args\":{}}", "'args'"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"args\":[null]}", "element 0"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"args\":\"a\\\\\"}", "'args'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        create_req r;
        char err[REQUEST_ERR_MAX];
        assert_int_equal(parse(cases[i].body, &r, err), -EINVAL);
        if (!strstr(err, cases[i].word))
            fail_msg("body %s: error '%s' lacks '%s'", cases[i].body, err, cases[i].word);
    }
}

/* Any other type that looks like a name is a language's, for the handler
 * to check; its source may be plain text or base64, as python's. */
static void create_language(void **state)
{
    (void)state;
    create_req r;
    char err[REQUEST_ERR_MAX];
    assert_int_equal(
        parse("{\"type\":\"c\",\"file\":\"aW50IG1haW4oKXt9\",\"args\":[\"x\"]}", &r, err), 0);
    assert_int_equal(r.type, TASK_LANG);
    assert_string_equal(r.lang, "c");
    assert_int_equal(r.file_len, 12);
    assert_memory_equal(r.file, "int main(){}", 12);
    assert_int_equal(r.argc, 1);
    create_req_destroy(&r);
    assert_null(r.lang);
    assert_int_equal(parse("{\"type\":\"c++_2.0-x\",\"file\":\"echo hi\"}", &r, err), 0);
    assert_string_equal(r.lang, "c++_2.0-x");
    assert_int_equal(r.file_len, 7);
    create_req_destroy(&r);
    /* python and bin keep their meaning. */
    assert_int_equal(parse("{\"type\":\"python\",\"file\":\"pass\"}", &r, err), 0);
    assert_int_equal(r.type, TASK_PYTHON);
    assert_null(r.lang);
    create_req_destroy(&r);
}

static void create_stdin_text_and_bytes(void **state)
{
    create_req r;
    char err[REQUEST_ERR_MAX];
    assert_int_equal(parse("{\"type\":\"python\",\"file\":\"pass\",\"stdin\":\"a\\nb\"}", &r, err),
                     0);
    assert_int_equal(r.input_len, 3);
    assert_memory_equal(r.input, "a\nb", 3);
    assert_null(r.env);
    create_req_destroy(&r);
    /* "AP8A": 0x00 0xff 0x00 */
    assert_int_equal(
        parse("{\"type\":\"python\",\"file\":\"pass\",\"stdin_base64\":\"AP8A\"}", &r, err), 0);
    assert_int_equal(r.input_len, 3);
    assert_memory_equal(r.input, "\0\xff\0", 3);
    create_req_destroy(&r);
    /* Empty or absent: none, as before. */
    assert_int_equal(parse("{\"type\":\"python\",\"file\":\"pass\",\"stdin\":\"\"}", &r, err), 0);
    assert_null(r.input);
    create_req_destroy(&r);
    assert_int_equal(parse("{\"type\":\"python\",\"file\":\"pass\"}", &r, err), 0);
    assert_null(r.input);
    assert_int_equal(r.input_len, 0);
    create_req_destroy(&r);
}

static void create_env_vector(void **state)
{
    create_req r;
    char err[REQUEST_ERR_MAX];
    assert_int_equal(parse("{\"type\":\"bin\",\"file\":\"YQ==\",\"env\":{\"_A1\":\"x=y\","
                           "\"PATH\":\"/bin\",\"E\":\"\"}}",
                           &r, err),
                     0);
    assert_int_equal(r.envc, 3);
    assert_string_equal(r.env[0], "_A1=x=y");
    assert_string_equal(r.env[1], "PATH=/bin");
    assert_string_equal(r.env[2], "E=");
    assert_null(r.env[3]);
    create_req_destroy(&r);
}

/* A body with an "env" of n variables NAME_i of value length vlen. */
static char *env_body(int n, size_t vlen)
{
    size_t cap = 64 + (size_t)n * (vlen + 32);
    char *s = malloc(cap), *p = s;
    assert_non_null(s);
    p += sprintf(p, "{\"type\":\"bin\",\"file\":\"YQ==\",\"env\":{");
    for (int i = 0; i < n; i++) {
        p += sprintf(p, "%s\"V%d\":\"", i ? "," : "", i);
        memset(p, 'v', vlen);
        p += vlen;
        *p++ = '"';
    }
    strcpy(p, "}}");
    return s;
}

static void create_env_bounds(void **state)
{
    create_req r;
    char err[REQUEST_ERR_MAX];
    char *b = env_body(REQUEST_MAX_ENV, 10);
    assert_int_equal(parse(b, &r, err), 0);
    assert_int_equal(r.envc, REQUEST_MAX_ENV);
    create_req_destroy(&r);
    free(b);
    b = env_body(REQUEST_MAX_ENV + 1, 10);
    assert_int_equal(parse(b, &r, err), -EINVAL);
    assert_non_null(strstr(err, "more than 64 variables"));
    free(b);
    b = env_body(2, REQUEST_MAX_ENV_BYTES / 2);
    assert_int_equal(parse(b, &r, err), -EINVAL);
    assert_non_null(strstr(err, "bytes"));
    free(b);
}

static void create_stdin_env_errors(void **state)
{
    static const struct {
        const char *body, *word;
    } cases[] = {
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"stdin\":\"a\",\"stdin_base64\":\"YQ==\"}",
         "exclude"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"stdin\":1}", "'stdin' must"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"stdin_base64\":[]}", "'stdin_base64' must"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"stdin_base64\":\"Y@==\"}", "offset 1"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"env\":[]}", "'env' must be an object"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"env\":{\"9A\":\"\"}}", "env.9A"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"env\":{\"A-B\":\"\"}}", "env.A-B"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"env\":{\"\":\"\"}}", "env.:"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"env\":{\"HOME\":\"/\"}}", "env.HOME"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"env\":{\"TMPDIR\":\"/\"}}", "env.TMPDIR"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"env\":{\"N\":1}}", "env.N must be a string"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"env\":{\"N\":{}}}", "env.N must be a string"},
        {"{\"type\":\"bin\",\"file\":\"YQ==\",\"env\":{\"N\":\"a\",\"N\":\"b\"}}", "twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        create_req r;
        char err[REQUEST_ERR_MAX];
        assert_int_equal(parse(cases[i].body, &r, err), -EINVAL);
        if (!strstr(err, cases[i].word))
            fail_msg("body %s: error '%s' lacks '%s'", cases[i].body, err, cases[i].word);
    }
}

/* The budget counts the stdin and the environment a task waits with. */
static void task_bytes_count_input(void **state)
{
    task *t = task_new(TASK_BIN, NULL, 0, calloc(1, sizeof(char *)), 0);
    assert_non_null(t);
    size_t bare = task_bytes(t);
    char **env = calloc(2, sizeof *env);
    assert_non_null(env);
    env[0] = strdup("A=1");
    task_set_input(t, calloc(1, 1000), 1000, env, 1);
    assert_true(task_bytes(t) >= bare + 1000 + 4 + 2 * sizeof(char *));
    task_unref(t);
}

static void id_from_body(void **state)
{
    char id[64], err[REQUEST_ERR_MAX];
    assert_int_equal(request_parse_id("  ", 2, id, sizeof id, err, sizeof err), -ENOENT);
    const char *b = "{\"id\":\"abc\"}";
    assert_int_equal(request_parse_id(b, strlen(b), id, sizeof id, err, sizeof err), 0);
    assert_string_equal(id, "abc");
    b = "{\"id\":1}";
    assert_int_equal(request_parse_id(b, strlen(b), id, sizeof id, err, sizeof err), -EINVAL);
}

/* The status document must be valid JSON whatever the task printed, and
 * carry the seed's fields only when they apply. */
/* A create_task body whose "x" member holds `levels` nested arrays. */
static char *nested_body(int levels)
{
    static const char head[] = "{\"type\":\"python\",\"file\":\"pass\",\"x\":";
    char *s = malloc(sizeof head + 2 * (size_t)levels + 2);
    assert_non_null(s);
    char *p = stpcpy(s, head);
    memset(p, '[', (size_t)levels);
    memset(p + levels, ']', (size_t)levels);
    strcpy(p + 2 * levels, "}");
    return s;
}

/* The object itself is the first level: 63 arrays inside it reach the
 * limit, one more is refused before cJSON recurses, whatever the route. */
static void bodies_nest_at_most_64_levels(void **state)
{
    create_req r;
    char err[REQUEST_ERR_MAX], id[64];
    char *ok = nested_body(JSONBODY_MAX_DEPTH - 1), *deep = nested_body(JSONBODY_MAX_DEPTH);
    assert_int_equal(parse(ok, &r, err), 0);
    create_req_destroy(&r);
    assert_int_equal(parse(deep, &r, err), -EINVAL);
    assert_string_equal(err, "request body nests deeper than 64 levels");
    assert_int_equal(request_parse_id(deep, strlen(deep), id, sizeof id, err, sizeof err), -EINVAL);
    assert_string_equal(err, "request body nests deeper than 64 levels");
    free(deep);
    free(ok);
}

static void status_json_shapes(void **state)
{
    task *t = task_new(TASK_PYTHON, NULL, 0, calloc(1, sizeof(char *)), 0);
    task_view v = {TASK_WAIT, 0, 0, 0};
    buf b = BUF_INIT;
    assert_int_equal(api_status_json(&b, t, &v), 0);
    cJSON *doc = cJSON_Parse(b.data);
    assert_non_null(doc);
    cJSON *meta = cJSON_GetObjectItem(doc, "meta");
    assert_non_null(cJSON_GetObjectItem(meta, "created_at"));
    assert_null(cJSON_GetObjectItem(meta, "started_at"));
    assert_null(cJSON_GetObjectItem(doc, "result"));
    assert_int_equal(cJSON_GetObjectItem(doc, "attempts")->valueint, 0);
    cJSON_Delete(doc);

    static const char raw[] = "ok\xff\x00\"\n";
    t->out = malloc(sizeof raw);
    memcpy(t->out, raw, sizeof raw);
    t->out_len = sizeof raw - 1;
    t->err = strdup("Traceback");
    t->err_len = 9;
    t->exited = 1;
    t->exit_code = 1;
    t->error = strdup("exited with code 1");
    v = (task_view){TASK_ERROR, t->created_us + 1000, t->created_us + 2000, 2};
    buf_reset(&b);
    assert_int_equal(api_status_json(&b, t, &v), 0);
    doc = cJSON_Parse(b.data);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "status")->valuestring, "ERROR");
    assert_int_equal(cJSON_GetObjectItem(doc, "attempts")->valueint, 2);
    meta = cJSON_GetObjectItem(doc, "meta");
    assert_non_null(cJSON_GetObjectItem(meta, "finished_at"));
    cJSON *res = cJSON_GetObjectItem(doc, "result");
    assert_string_equal(cJSON_GetObjectItem(res, "stderr")->valuestring, "Traceback");
    assert_int_equal(cJSON_GetObjectItem(res, "exit_code")->valueint, 1);
    /* cJSON stops at the escaped NUL; the bytes before it must be "ok" U+FFFD. */
    assert_string_equal(cJSON_GetObjectItem(res, "stdout")->valuestring, "ok\xef\xbf\xbd");
    assert_non_null(strstr(b.data, "\\u0000\\\"\\n"));
    cJSON_Delete(doc);
    buf_destroy(&b);
    task_unref(t);
}

static void create_limits_within_caps(void **state)
{
    create_req r;
    char err[REQUEST_ERR_MAX];
    assert_int_equal(parse("{\"type\":\"python\",\"file\":\"pass\",\"limits\":{\"timeout\":1.5,"
                           "\"cpu\":2,\"memory\":33554432,\"procs\":8,\"output\":100,"
                           "\"fsize\":4096,\"disk\":1048576}}",
                           &r, err),
                     0);
    assert_true(r.limits.timeout == 1.5);
    assert_int_equal(r.limits.cpu, 2);
    assert_int_equal(r.limits.memory, 33554432);
    assert_int_equal(r.limits.procs, 8);
    assert_int_equal(r.limits.output, 100);
    assert_int_equal(r.limits.fsize, 4096);
    assert_int_equal(r.limits.disk, 1048576);
    create_req_destroy(&r);
    /* Absent or null: nothing asked, the server's settings apply. */
    assert_int_equal(parse("{\"type\":\"python\",\"file\":\"pass\",\"limits\":null}", &r, err), 0);
    assert_int_equal(r.limits.memory, 0);
    assert_true(r.limits.timeout == 0);
    create_req_destroy(&r);
    /* At the cap exactly is allowed. */
    assert_int_equal(
        parse("{\"type\":\"python\",\"file\":\"pass\",\"limits\":{\"memory\":268435456}}", &r, err),
        0);
    create_req_destroy(&r);
}

static void limits_error(const char *limits, const char *want)
{
    char body[512], err[REQUEST_ERR_MAX];
    create_req r;
    snprintf(body, sizeof body,
             "{\"type\":\"python\",\"file\":\"pass\",\"env\":{\"A\":\"b\"},\"limits\":%s}", limits);
    assert_int_equal(parse(body, &r, err), -EINVAL);
    assert_string_equal(err, want);
    /* Nothing is left allocated (the env was parsed before). */
    assert_null(r.file);
    assert_null(r.env);
}

static void create_limits_errors(void **state)
{
    limits_error("{\"memory\":1073741824}", "limits.memory 1073741824 is above this server's cap "
                                            "of 268435456 bytes (--task-memory)");
    limits_error("{\"timeout\":60.5}",
                 "limits.timeout 60.5 is above this server's cap of 60 seconds (--task-timeout)");
    limits_error(
        "{\"output\":2000000}",
        "limits.output 2000000 is above this server's cap of 1048576 bytes (--max-output)");
    limits_error("{\"procs\":65}",
                 "limits.procs 65 is above this server's cap of 64 processes (--task-procs)");
    limits_error("{\"cpu\":-1}", "limits.cpu must be a positive number of seconds, not -1");
    limits_error("{\"disk\":0}", "limits.disk must be a positive number of bytes, not 0");
    limits_error("{\"fsize\":\"1M\"}", "limits.fsize must be a number of bytes");
    limits_error("{\"memory\":1.5}", "limits.memory must be a whole number of bytes, not 1.5");
    limits_error("{\"cpu\":1,\"cpu\":2}", "limits.cpu is given twice");
    limits_error("{\"ram\":1}", "limits.ram is not a limit: use timeout, cpu, memory, procs, "
                                "output, fsize or disk");
    limits_error("[1]", "field 'limits' must be an object such as {\"timeout\": 5, \"memory\": "
                        "67108864}");
}

static void create_limits_without_caps(void **state)
{
    create_req r;
    char err[REQUEST_ERR_MAX];
    /* A server setting of 0 is no cap: any positive value goes. */
    const task_limits none = {0};
    const char *body = "{\"type\":\"python\",\"file\":\"pass\",\"limits\":{\"memory\":1e15}}";
    assert_int_equal(request_parse_create(body, strlen(body), &none, &r, err, sizeof err), 0);
    assert_int_equal(r.limits.memory, 1000000000000000LL);
    create_req_destroy(&r);
    body = "{\"type\":\"python\",\"file\":\"pass\",\"limits\":{\"memory\":1e300}}";
    assert_int_equal(request_parse_create(body, strlen(body), NULL, &r, err, sizeof err), -EINVAL);
    assert_string_equal(err, "limits.memory 1e+300 is too large");
}

static void caps_json_has_null_for_none(void **state)
{
    buf b = BUF_INIT;
    task_limits c = caps;
    c.disk = 0;
    c.timeout = 2.5;
    assert_int_equal(request_limits_caps_json(&b, &c), 0);
    assert_string_equal(b.data, "{\"timeout\":2.5,\"cpu\":30,\"memory\":268435456,\"procs\":64,"
                                "\"output\":1048576,\"fsize\":67108864,\"disk\":null}");
    buf_destroy(&b);
}

static void sandbox_off_offers_timeout_and_output(void **state)
{
    config cfg = {.task_timeout = 5, .max_output = 100, .task_memory = 1 << 20, .sandbox = 0};
    task_limits c;
    request_limits_caps(&cfg, &c);
    buf b = BUF_INIT;
    assert_int_equal(request_limits_caps_json(&b, &c), 0);
    assert_string_equal(b.data, "{\"timeout\":5,\"output\":100}");
    buf_destroy(&b);
    create_req r;
    char err[REQUEST_ERR_MAX];
    const char *body = "{\"type\":\"python\",\"file\":\"pass\",\"limits\":{\"memory\":1}}";
    assert_int_equal(request_parse_create(body, strlen(body), &c, &r, err, sizeof err), -EINVAL);
    assert_string_equal(err, "limits.memory cannot be applied: this server runs tasks with "
                             "--sandbox off, where only timeout and output apply");
    body = "{\"type\":\"python\",\"file\":\"pass\",\"limits\":{\"timeout\":1,\"output\":9}}";
    assert_int_equal(request_parse_create(body, strlen(body), &c, &r, err, sizeof err), 0);
    assert_int_equal(r.limits.output, 9);
    create_req_destroy(&r);
}

static void limits_journal_text_round_trip(void **state)
{
    buf b = BUF_INIT;
    task_limits l = {.timeout = 2.5, .memory = 1 << 20}, back;
    char err[REQUEST_ERR_MAX];
    assert_true(task_limits_asked(&l));
    assert_int_equal(request_limits_json(&b, &l), 0);
    assert_string_equal(b.data, "{\"timeout\":2.5,\"memory\":1048576}");
    assert_int_equal(request_limits_parse_text(b.data, b.len, &back, err, sizeof err), 0);
    assert_memory_equal(&back, &l, sizeof l);
    /* No caps: what the server that admitted it allowed stays. */
    const char *big = "{\"disk\":1000000000000000}";
    assert_int_equal(request_limits_parse_text(big, strlen(big), &back, err, sizeof err), 0);
    assert_int_equal(back.disk, 1000000000000000LL);
    assert_int_equal(request_limits_parse_text("{\"disk\":0}", 10, &back, err, sizeof err),
                     -EINVAL);
    assert_int_equal(request_limits_parse_text("[", 1, &back, err, sizeof err), -EINVAL);
    buf_destroy(&b);
    memset(&l, 0, sizeof l);
    assert_false(task_limits_asked(&l));
    assert_int_equal(request_limits_json(&b, &l), 0);
    assert_string_equal(b.data, "{}");
    buf_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_bin_with_array_args),
        cmocka_unit_test(create_string_args_are_split),
        cmocka_unit_test(create_missing_args_means_none),
        cmocka_unit_test(create_errors_name_the_field),
        cmocka_unit_test(create_language),
        cmocka_unit_test(create_stdin_text_and_bytes),
        cmocka_unit_test(create_env_vector),
        cmocka_unit_test(create_env_bounds),
        cmocka_unit_test(create_stdin_env_errors),
        cmocka_unit_test(task_bytes_count_input),
        cmocka_unit_test(id_from_body),
        cmocka_unit_test(bodies_nest_at_most_64_levels),
        cmocka_unit_test(status_json_shapes),
        cmocka_unit_test(create_limits_within_caps),
        cmocka_unit_test(create_limits_errors),
        cmocka_unit_test(create_limits_without_caps),
        cmocka_unit_test(caps_json_has_null_for_none),
        cmocka_unit_test(sandbox_off_offers_timeout_and_output),
        cmocka_unit_test(limits_journal_text_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
