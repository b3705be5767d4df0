/* Unit tests for batch_out: the output formats and the resume set. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "batch_out.h"

static void line_is(enum batch_format f, const char *result, const char *err, const char *want)
{
    buf b = BUF_INIT;
    if (err)
        batch_out_error(&b, f, "12", err);
    else
        batch_out_result(&b, f, "12", result, strlen(result));
    assert_string_equal(b.data, want);
    buf_destroy(&b);
}

static void formats(void **state)
{
    line_is(BATCH_FMT_SPACE, "24", NULL, "12 24\n");
    line_is(BATCH_FMT_TSV, "24", NULL, "12\t24\n");
    line_is(BATCH_FMT_CSV, "24", NULL, "12,24\n");
    line_is(BATCH_FMT_JSONL, "24", NULL, "{\"input\":12,\"result\":24}\n");
    line_is(BATCH_FMT_JSONL, "123456789012345678901234567890", NULL,
            "{\"input\":12,\"result\":123456789012345678901234567890}\n");
    /* Text results (a task's stdout) cannot break the line structure. */
    line_is(BATCH_FMT_SPACE, "a\nb\tc\\", NULL, "12 a\\nb\\tc\\\\\n");
    line_is(BATCH_FMT_CSV, "a,\"b\"", NULL, "12,\"a,\"\"b\"\"\"\n");
    line_is(BATCH_FMT_JSONL, "hi \"x\"", NULL, "{\"input\":12,\"result\":\"hi \\\"x\\\"\"}\n");
    line_is(BATCH_FMT_SPACE, NULL, "exited with code 3", "12 ERROR exited with code 3\n");
    line_is(BATCH_FMT_TSV, NULL, "boom", "12\tERROR\tboom\n");
    line_is(BATCH_FMT_CSV, NULL, "a, b", "12,ERROR,\"a, b\"\n");
    line_is(BATCH_FMT_JSONL, NULL, "boom", "{\"input\":12,\"error\":\"boom\"}\n");
    enum batch_format f;
    assert_int_equal(batch_format_parse("jsonl", &f), 0);
    assert_int_equal(f, BATCH_FMT_JSONL);
    assert_int_equal(batch_format_parse("json", &f), -EINVAL);
}

static void resume_set_counts_occurrences(void **state)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    fputs("1 2\n7 14\n7\t14\n{\"input\":-3,\"result\":-6}\n9,ERROR,\"x\"\n", f);
    fputs("10 2", f); /* cut short by a kill: not done */
    rewind(f);
    batch_done *d = NULL;
    long long keep = -1;
    long lines = -1;
    assert_int_equal(batch_done_load(f, &d, &keep, &lines), 0);
    assert_int_equal(lines, 5);
    assert_int_equal(keep, 4 + 5 + 5 + 25 + 12);
    assert_int_equal(batch_done_take(d, "7", 1), 1);
    assert_int_equal(batch_done_take(d, "7", 1), 1);
    assert_int_equal(batch_done_take(d, "7", 1), 0);
    assert_int_equal(batch_done_take(d, "-3", 2), 1);
    assert_int_equal(batch_done_take(d, "9", 1), 1);
    assert_int_equal(batch_done_take(d, "10", 2), 0);
    assert_int_equal(batch_done_take(d, "1", 1), 1);
    assert_int_equal(batch_done_take(d, "2", 1), 0);
    batch_done_free(d);
    fclose(f);
}

/* Enough distinct inputs to make the table grow several times. */
static void resume_set_grows(void **state)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    for (int i = 0; i < 20000; i++)
        fprintf(f, "%d %d\n", i, 2 * i);
    rewind(f);
    batch_done *d = NULL;
    long long keep;
    long lines;
    assert_int_equal(batch_done_load(f, &d, &keep, &lines), 0);
    assert_int_equal(lines, 20000);
    char s[16];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(s, sizeof s, "%d", i);
        assert_int_equal(batch_done_take(d, s, (size_t)n), 1);
    }
    assert_int_equal(batch_done_take(d, "20000", 5), 0);
    batch_done_free(d);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formats),
        cmocka_unit_test(resume_set_counts_occurrences),
        cmocka_unit_test(resume_set_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
