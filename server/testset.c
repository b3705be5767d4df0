/* testset: see testset.h. */
#include "testset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

/* What malloc adds to every block (as task.c counts it). */
#define TESTSET_MALLOC_OVERHEAD 16

testset *testset_new(int n)
{
    testset *ts = calloc(1, sizeof *ts);
    if (!ts)
        return NULL;
    ts->n = n;
    ts->cases = calloc(n > 0 ? (size_t)n : 1, sizeof *ts->cases);
    if (!ts->cases) {
        free(ts);
        return NULL;
    }
    return ts;
}

testset *testset_new_rendered(const char *json, size_t n)
{
    testset *ts = calloc(1, sizeof *ts);
    if (!ts)
        return NULL;
    if (buf_append(&ts->rendered, json, n) < 0) {
        free(ts);
        return NULL;
    }
    ts->ended = 1;
    return ts;
}

void testset_drop_cases(testset *ts)
{
    if (!ts || !ts->cases)
        return;
    for (int i = 0; i < ts->n; i++) {
        free(ts->cases[i].input);
        for (int j = 0; ts->cases[i].args && j < ts->cases[i].argc; j++)
            free(ts->cases[i].args[j]);
        free(ts->cases[i].args);
        free(ts->cases[i].expected);
    }
    free(ts->cases);
    ts->cases = NULL;
}

void testset_free(testset *ts)
{
    if (!ts)
        return;
    testset_drop_cases(ts);
    buf_destroy(&ts->rendered);
    free(ts);
}

size_t testset_bytes(const testset *ts)
{
    if (!ts)
        return 0;
    size_t n = sizeof *ts + TESTSET_MALLOC_OVERHEAD;
    if (!ts->cases)
        return n;
    n += (size_t)ts->n * sizeof *ts->cases + TESTSET_MALLOC_OVERHEAD;
    for (int i = 0; i < ts->n; i++) {
        const testset_case *c = &ts->cases[i];
        if (c->input)
            n += c->input_len + TESTSET_MALLOC_OVERHEAD;
        if (c->expected)
            n += c->expected_len + 1 + TESTSET_MALLOC_OVERHEAD;
        if (c->args) {
            n += ((size_t)c->argc + 1) * sizeof *c->args + TESTSET_MALLOC_OVERHEAD;
            for (int j = 0; j < c->argc; j++)
                n += strlen(c->args[j]) + 1 + TESTSET_MALLOC_OVERHEAD;
        }
    }
    return n;
}

static int is_trailing_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Length of s once trailing whitespace and newlines are gone: what is
 * left ends in the last visible character of the last non-empty line. */
static size_t trim_end(const char *s, size_t len)
{
    while (len && (is_trailing_space(s[len - 1]) || s[len - 1] == '\n'))
        len--;
    return len;
}

/* The next line of s[*pos, end), without its trailing whitespace, into
 * *line and *llen; *pos moves past its newline. */
static void next_line(const char *s, size_t end, size_t *pos, const char **line, size_t *llen)
{
    const char *p = s + *pos;
    const char *nl = memchr(p, '\n', end - *pos);
    size_t l = nl ? (size_t)(nl - p) : end - *pos;
    *pos += l + (nl ? 1 : 0);
    while (l && is_trailing_space(p[l - 1]))
        l--;
    *line = p;
    *llen = l;
}

int testset_output_matches(const char *expected, size_t elen, const char *out, size_t olen)
{
    size_t ee = trim_end(expected, elen), oe = trim_end(out, olen);
    size_t ep = 0, op = 0;
    while (ep < ee && op < oe) {
        const char *a, *b;
        size_t al, bl;
        next_line(expected, ee, &ep, &a, &al);
        next_line(out, oe, &op, &b, &bl);
        if (al != bl || memcmp(a, b, al) != 0)
            return 0;
    }
    return ep >= ee && op >= oe;
}

/* Opens test i's entry: the separator and "{". */
static void open_entry(testset *ts, int i)
{
    if (ts->rendered.len == 0)
        buf_puts(&ts->rendered, ",\"tests\":[");
    else
        buf_putc(&ts->rendered, ',');
    buf_printf(&ts->rendered, "{\"index\":%d", i);
}

int testset_add_result(testset *ts, int i, const testset_outcome *o)
{
    const testset_case *c = ts->cases ? &ts->cases[i] : NULL;
    /* -1: no expected output, no verdict on the output */
    int passed = -1;
    if (c && c->expected)
        passed = !o->out_truncated && testset_output_matches(c->expected, c->expected_len,
                                                             o->out ? o->out : "", o->out_len);
    int failed = passed == 0 || !o->exited || o->exit_code != 0;
    buf *b = &ts->rendered;
    open_entry(ts, i);
    buf_puts(b, ",\"stdout\":");
    jsonw_str(b, o->out ? o->out : "", o->out_len);
    buf_puts(b, ",\"stderr\":");
    jsonw_str(b, o->err ? o->err : "", o->err_len);
    buf_puts(b, ",\"exit_code\":");
    if (o->exited)
        jsonw_i64(b, o->exit_code);
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"signal\":");
    if (o->term_signal)
        jsonw_i64(b, o->term_signal);
    else
        buf_puts(b, "null");
    buf_printf(b, ",\"timed_out\":%s,\"limit\":", o->timed_out ? "true" : "false");
    if (o->limit)
        jsonw_cstr(b, o->limit);
    else
        buf_puts(b, "null");
    buf_printf(b, ",\"run_ms\":%.3f,\"cpu_ms\":%.3f,\"memory_peak_bytes\":", o->run_us / 1e3,
               o->cpu_us / 1e3);
    if (o->memory_peak >= 0)
        jsonw_i64(b, o->memory_peak);
    else
        buf_puts(b, "null");
    buf_printf(b,
               ",\"stdout_truncated\":%s,\"stderr_truncated\":%s,\"stdout_bytes\":%zu,"
               "\"stderr_bytes\":%zu,\"passed\":%s,\"skipped\":false}",
               o->out_truncated ? "true" : "false", o->err_truncated ? "true" : "false",
               o->out_total, o->err_total,
               passed < 0 ? "null"
               : passed   ? "true"
                          : "false");
    ts->ran++;
    if (failed)
        ts->failed++;
    else
        ts->passed++;
    return buf_failed(b) ? -ENOMEM : failed;
}

int testset_add_skipped(testset *ts, int i)
{
    open_entry(ts, i);
    buf_puts(&ts->rendered, ",\"passed\":null,\"skipped\":true}");
    return buf_failed(&ts->rendered) ? -ENOMEM : 0;
}

int testset_end(testset *ts)
{
    if (ts->rendered.len == 0)
        buf_puts(&ts->rendered, ",\"tests\":[");
    buf_printf(&ts->rendered, "],\"passed\":%d,\"failed\":%d", ts->passed, ts->failed);
    ts->ended = 1;
    return buf_failed(&ts->rendered) ? -ENOMEM : 0;
}

int testset_write_cases(buf *b, const testset *ts)
{
    buf_printf(b, "{\"stop_on_failure\":%s,\"tests\":[", ts->stop_on_failure ? "true" : "false");
    for (int i = 0; ts->cases && i < ts->n; i++) {
        const testset_case *c = &ts->cases[i];
        buf_puts(b, i ? ",{" : "{");
        const char *sep = "";
        if (c->input) {
            buf_puts(b, "\"stdin\":");
            jsonw_str(b, (const char *)c->input, c->input_len);
            sep = ",";
        }
        if (c->args) {
            buf_printf(b, "%s\"args\":[", sep);
            for (int j = 0; j < c->argc; j++) {
                if (j)
                    buf_putc(b, ',');
                jsonw_cstr(b, c->args[j]);
            }
            buf_putc(b, ']');
            sep = ",";
        }
        if (c->expected) {
            buf_printf(b, "%s\"expected_output\":", sep);
            jsonw_str(b, c->expected, c->expected_len);
        }
        buf_putc(b, '}');
    }
    buf_puts(b, "]}");
    return buf_failed(b) ? -ENOMEM : 0;
}
