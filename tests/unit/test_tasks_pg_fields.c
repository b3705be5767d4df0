/* Unit tests for the store's schema-2 and schema-3 fields
 * (tasks_pg_fields): the limits column's text both ways, the limit names
 * read back, the copy of a finished task's fields, and the files column
 * read back from a result made in memory; no database needed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "request_files.h"
#include "tasks_pg_int.h"
#include "testset.h"

static void limits_round_trip(void **state)
{
    (void)state;
    char text[PG_LIMITS_LEN];
    task_limits none = {0}, back;
    assert_null(pg_limits_param(&none, text, sizeof text));
    /* The largest value request_limits.c takes, and a fractional timeout. */
    task_limits l = {.timeout = 0.25, .memory = 9007199254740992LL, .procs = 3, .disk = 1};
    assert_string_equal(pg_limits_param(&l, text, sizeof text),
                        "{0.25,0,9007199254740992,3,0,0,1}");
    assert_int_equal(pg_limits_parse(text, &back), 0);
    assert_memory_equal(&back, &l, sizeof l);
    /* PostgreSQL's own float8 output of the same array. */
    assert_int_equal(pg_limits_parse("{0.25,0,9.007199254740992e+15,3,0,0,1}", &back), 0);
    assert_memory_equal(&back, &l, sizeof l);
    assert_int_equal(pg_limits_parse("{1,2,3}", &back), -EINVAL);
    assert_int_equal(pg_limits_parse("1,2,3,4,5,6,7", &back), -EINVAL);
    assert_int_equal(pg_limits_parse("{1,2,3,4,5,6,x}", &back), -EINVAL);
}

static void limit_names(void **state)
{
    (void)state;
    const char *names[] = {"timeout", "memory", "cpu", "procs", "fsize", "disk"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        assert_string_equal(task_limit_named(names[i]), names[i]);
    assert_null(task_limit_named("none"));
    assert_null(task_limit_named("gpu"));
}

static void copy_of_a_finished_task(void **state)
{
    (void)state;
    task *src = task_new(TASK_LANG, NULL, 0, NULL, 0), *dst = task_new(TASK_LANG, NULL, 0, NULL, 0);
    assert_non_null(src);
    assert_non_null(dst);
    const char rendered[] = ",\"tests\":[],\"passed\":0,\"failed\":0";
    task_set_tests(src, testset_new_rendered(rendered, strlen(rendered)));
    src->mem_peak = 4096;
    src->limit = "memory";
    src->compiled = src->compile_exited = 1;
    src->compile_exit_code = 1;
    src->compile_out = strdup("main.c:1: error");
    src->compile_out_len = strlen(src->compile_out);
    assert_int_equal(pg_fields_copy(dst, src), 0);
    assert_int_equal(dst->mem_peak, 4096);
    assert_ptr_equal(dst->limit, src->limit);
    assert_true(dst->compiled && dst->compile_exited);
    assert_int_equal(dst->compile_exit_code, 1);
    assert_string_equal(dst->compile_out, "main.c:1: error");
    assert_non_null(dst->tests);
    assert_true(dst->tests->ended);
    assert_int_equal(dst->tests->rendered.len, strlen(rendered));
    assert_memory_equal(dst->tests->rendered.data, rendered, strlen(rendered));
    task_unref(src);
    task_unref(dst);
}

/* A one-column result holding text (NULL: SQL NULL), as libpq would hand
 * a bytea column over in text form. */
static PGresult *one_value(const char *text)
{
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc col = {.name = "files", .format = 0, .typlen = -1, .atttypmod = -1};
    assert_non_null(r);
    assert_true(PQsetResultAttrs(r, 1, &col));
    assert_true(PQsetvalue(r, 0, 0, (char *)text, text ? (int)strlen(text) : -1));
    return r;
}

/* PostgreSQL's hex text of n bytes ("\x" and two digits a byte). */
static char *hex_text(const unsigned char *b, size_t n)
{
    char *s = malloc(2 * n + 3);
    assert_non_null(s);
    strcpy(s, "\\x");
    for (size_t i = 0; i < n; i++)
        snprintf(s + 2 + 2 * i, 3, "%02x", b[i]);
    return s;
}

static void files_read_back(void **state)
{
    (void)state;
    /* Binary content with NULs, and a nested name. */
    static const unsigned char bin[] = {0, 1, 2, 0xff, 0, '\n', 0x80};
    task_file in[2] = {{.name = "notes.txt", .data = (unsigned char *)"hi\n", .len = 3},
                       {.name = "sub/dir/x.bin", .data = (unsigned char *)bin, .len = sizeof bin}};
    unsigned char *blob;
    size_t len;
    assert_int_equal(request_files_pack(in, 2, &blob, &len), 0);
    char *text = hex_text(blob, len);
    PGresult *r = one_value(text);
    task *t = task_new(TASK_BIN, NULL, 0, NULL, 0);
    assert_non_null(t);
    assert_int_equal(pg_files_read(t, r, 0, 0), 0);
    assert_int_equal(t->nfiles, 2);
    assert_string_equal(t->files[0].name, "notes.txt");
    assert_int_equal(t->files[0].len, 3);
    assert_memory_equal(t->files[0].data, "hi\n", 3);
    assert_string_equal(t->files[1].name, "sub/dir/x.bin");
    assert_int_equal(t->files[1].len, sizeof bin);
    assert_memory_equal(t->files[1].data, bin, sizeof bin);
    task_unref(t);
    PQclear(r);
    free(text);
    free(blob);

    /* SQL NULL: no files. */
    r = one_value(NULL);
    t = task_new(TASK_BIN, NULL, 0, NULL, 0);
    assert_int_equal(pg_files_read(t, r, 0, 0), 0);
    assert_null(t->files);
    assert_int_equal(t->nfiles, 0);
    task_unref(t);
    PQclear(r);

    /* A name no request could have had, and bytes that are no blob. */
    task_file bad = {.name = "../escape", .data = (unsigned char *)"x", .len = 1};
    assert_int_equal(request_files_pack(&bad, 1, &blob, &len), 0);
    text = hex_text(blob, len);
    static const char *const refused[] = {NULL, "\\x0102", "not hex"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        r = one_value(refused[i] ? refused[i] : text);
        t = task_new(TASK_BIN, NULL, 0, NULL, 0);
        assert_int_equal(pg_files_read(t, r, 0, 0), -EINVAL);
        assert_null(t->files);
        task_unref(t);
        PQclear(r);
    }
    free(text);
    free(blob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limits_round_trip),
        cmocka_unit_test(limit_names),
        cmocka_unit_test(copy_of_a_finished_task),
        cmocka_unit_test(files_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
