/* testset: the `tests` of a task, one program run once per test, and the
 * verdicts of those runs.
 *
 * A task with tests holds one testset. Before the run it holds the cases
 * (stdin, arguments and expected output of each test), which belong to
 * the worker once the task is popped, like the task's own arguments.
 * After the run it holds the rendered results instead: the worker builds
 * them test after test (testset_add_result) and closes them
 * (testset_end) before the task's final status is published, after which
 * they never change, so readers read them unlocked as the other result
 * fields of a task. */
#ifndef TS_TESTSET_H
#define TS_TESTSET_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* One test as the client gave it; every part optional. */
typedef struct testset_case {
    unsigned char *input; /* stdin (input_len 0: empty), or NULL: the task's; owned */
    size_t input_len;
    char **args; /* NULL-terminated, without argv[0]; NULL: the task's; owned */
    int argc;
    char *expected; /* expected stdout, NUL-ended, or NULL: no verdict; owned */
    size_t expected_len;
} testset_case;

/* How one test run went, as the worker fills it in. Buffers borrowed. */
typedef struct testset_outcome {
    const char *out, *err;
    size_t out_len, err_len;
    size_t out_total, err_total;
    int out_truncated, err_truncated;
    int exited; /* exit_code valid */
    int exit_code;
    int term_signal; /* 0: none */
    int timed_out;
    const char *limit; /* the limit it hit, or NULL */
    int64_t run_us, cpu_us;
    int64_t memory_peak; /* bytes, or -1: not known */
} testset_outcome;

typedef struct testset {
    int n; /* cases given */
    int stop_on_failure;
    testset_case *cases; /* n of them until testset_drop_cases; owned */
    /* results, written by the worker alone */
    buf rendered; /* ",\"tests\":[...],\"passed\":P,\"failed\":F" once ended */
    int ran, passed, failed;
    int ended; /* rendered is complete */
} testset;

/* Allocates a testset of n zeroed cases. Returns NULL on allocation
 * failure. */
testset *testset_new(int n);

/* A testset already ended with the rendered results `json` (n bytes,
 * copied): a finished task read back from the journal. NULL on
 * allocation failure. */
testset *testset_new_rendered(const char *json, size_t n);

/* Frees ts and everything it owns. NULL is fine. */
void testset_free(testset *ts);

/* Bytes the cases hold (for the memory budget, as a task's stdin). */
size_t testset_bytes(const testset *ts);

/* Frees the cases (the worker, once the runs are over). */
void testset_drop_cases(testset *ts);

/* Non-zero when out equals expected once trailing whitespace is dropped
 * from every line and trailing empty lines are dropped: what most judges
 * accept, so a missing or extra final newline never fails a test. */
int testset_output_matches(const char *expected, size_t elen, const char *out, size_t olen);

/* Records test i's outcome o: its verdict (against its expected output,
 * if any; an output that was cut is never equal) and its entry in the
 * rendered results. A failed run (exit not 0) counts as failed even
 * without an expected output. Returns 1 if the test failed, 0 if not, or
 * -ENOMEM. */
int testset_add_result(testset *ts, int i, const testset_outcome *o);

/* Records test i as skipped (after a failure, with stop_on_failure).
 * Returns 0 or -ENOMEM. */
int testset_add_skipped(testset *ts, int i);

/* Closes the rendered results. Returns 0 or -ENOMEM. */
int testset_end(testset *ts);

/* Appends the cases of ts as the JSON object request_tests_parse_text
 * reads back ({"stop_on_failure": B, "tests": [...]}): how the journal
 * keeps a waiting task's tests. Returns 0 or -ENOMEM. */
int testset_write_cases(buf *b, const testset *ts);

#endif
