/* Unit tests for lang: the languages file, the version probes, the check
 * of a create_task type and the compile fields of a status document. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lang.h"

/* Writes text into a new temporary file; its path into path. */
static void write_file(char *path, size_t size, const char *text)
{
    snprintf(path, size, "/tmp/ts-test-lang-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Loads text as a languages file. Returns as lang_table_load. */
static int load(const char *text, lang_table *t, char *err, size_t errsz)
{
    char path[64];
    write_file(path, sizeof path, text);
    int rc = lang_table_load(t, path, err, errsz);
    unlink(path);
    return rc;
}

static void loads_lines_and_comments(void **state)
{
    (void)state;
    lang_table t;
    char err[512];
    assert_int_equal(load("# comment\n\n"
                          "c | main.c | gcc -o main 'main.c' | ./main | gcc --version\n"
                          "  sh2|main.sh||/bin/sh main.sh|/bin/sh -c 'echo v1'  \n",
                          &t, err, sizeof err),
                     0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.v[0].name, "c");
    assert_string_equal(t.v[0].source, "main.c");
    assert_non_null(t.v[0].compile);
    assert_string_equal(t.v[0].compile[3], "main.c");
    assert_null(t.v[0].compile[4]);
    assert_string_equal(t.v[0].run[0], "./main");
    assert_string_equal(t.v[1].name, "sh2");
    assert_null(t.v[1].compile);
    assert_string_equal(t.v[1].version_cmd[2], "echo v1");
    lang_table_destroy(&t);
}

static void bad_lines_are_named(void **state)
{
    (void)state;
    static const struct {
        const char *text, *word;
    } cases[] = {
        {"c | main.c | gcc | ./main\n", "expected"},
        {"c | main.c | gcc | ./main | v | x\n", "expected"},
        {"bin | p | | ./p | true\n", "name"},
        {"a/b | p | | ./p | true\n", "name"},
        {"c | dir/main.c | | ./p | true\n", "source"},
        {"c | .. | | ./p | true\n", "source"},
        {"c | main.c | | | true\n", "empty command"},
        {"c | main.c | 'gcc | ./main | true\n", "quote"},
        {"c | a | | ./a | true\nc | b | | ./b | true\n", "twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lang_table t;
        char err[512];
        assert_int_equal(load(cases[i].text, &t, err, sizeof err), -EINVAL);
        if (!strstr(err, cases[i].word) || !strstr(err, "line"))
            fail_msg("%s: error '%s' lacks '%s'", cases[i].text, err, cases[i].word);
        assert_null(t.v);
    }
    lang_table t;
    char err[512];
    assert_int_equal(lang_table_load(&t, "/nonexistent/languages.conf", err, sizeof err), -ENOENT);
}

/* Only the languages whose version command answers are kept, with the
 * first line it printed; the check of a type lists them. */
static void probes_keep_working_tools(void **state)
{
    (void)state;
    lang_table t;
    char err[512];
    assert_int_equal(load("ok | m | | /bin/sh m | /bin/sh -c 'printf \"v 1.0\\nmore\\n\"'\n"
                          "fails | m | | /bin/sh m | /bin/false\n"
                          "silent | m | | /bin/sh m | /bin/true\n"
                          "missing | m | | /bin/sh m | no-such-tool-here --version\n"
                          "cc | m.c | /bin/true | ./m | /bin/sh -c 'echo cc 2 >&2'\n",
                          &t, err, sizeof err),
                     0);
    assert_int_equal(lang_table_probe_start(&t, 5), 0);
    assert_non_null(lang_find(&t, "ok"));
    assert_string_equal(lang_find(&t, "ok")->version, "v 1.0");
    assert_null(lang_find(&t, "fails"));
    assert_null(lang_find(&t, "silent"));
    assert_null(lang_find(&t, "missing"));
    assert_string_equal(lang_find(&t, "cc")->version, "cc 2");
    assert_string_equal(
        t.json, "[{\"name\":\"ok\",\"version\":\"v 1.0\",\"compiled\":false,\"source\":\"m\"},"
                "{\"name\":\"cc\",\"version\":\"cc 2\",\"compiled\":true,\"source\":\"m.c\"}]\n");

    create_req r = {.type = TASK_LANG, .lang = strdup("cobol")};
    assert_int_equal(lang_check_create(&t, &r, err, sizeof err), -EINVAL);
    assert_string_equal(err, "unknown type \"cobol\"; known types: python, bin, ok, cc");
    assert_null(r.lang);
    r = (create_req){.type = TASK_LANG, .lang = strdup("cc")};
    assert_int_equal(lang_check_create(&t, &r, err, sizeof err), 0);
    create_req_destroy(&r);
    r = (create_req){.type = TASK_PYTHON};
    assert_int_equal(lang_check_create(NULL, &r, err, sizeof err), 0);
    lang_table_destroy(&t);
}

static void compile_fields_only_after_a_compile(void **state)
{
    (void)state;
    task t = {.compiled = 0};
    buf b = BUF_INIT;
    lang_result_json(&b, &t);
    assert_int_equal(b.len, 0);
    t.compiled = 1;
    t.compile_out = "a\"b\n";
    t.compile_out_len = 4;
    lang_result_json(&b, &t);
    buf_putc(&b, '\0');
    assert_string_equal(b.data, ",\"compile_output\":\"a\\\"b\\n\",\"compile_exit_code\":null");
    buf_reset(&b);
    t.compile_exited = 1;
    t.compile_exit_code = 1;
    lang_result_json(&b, &t);
    buf_putc(&b, '\0');
    assert_non_null(strstr(b.data, "\"compile_exit_code\":1"));
    buf_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loads_lines_and_comments),
        cmocka_unit_test(bad_lines_are_named),
        cmocka_unit_test(probes_keep_working_tools),
        cmocka_unit_test(compile_fields_only_after_a_compile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
