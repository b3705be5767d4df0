/* request_tests: the `tests` of a POST /create_task body, and the same
 * JSON read back from the journal.
 *
 * Kept apart from request.c so that the create parser gains one call. */
#ifndef TS_REQUEST_TESTS_H
#define TS_REQUEST_TESTS_H

#include <stddef.h>

#include "testset.h"

struct cJSON;

/* Entries in `tests` no server takes, whatever its --max-tests: the
 * option's own maximum. */
#define REQUEST_TESTS_MAX 10000

/* Reads `tests` (a list of {"stdin": TEXT, "args": [..] | "...",
 * "expected_output": TEXT}, every key optional, no other key) and
 * `stop_on_failure` (a boolean) from the object root. Without `tests`
 * (or with null) *out is NULL and `stop_on_failure` must be absent too.
 * A test without `stdin` reads the task's; an empty one reads nothing.
 * Returns 0 and sets *out (owned
 * by the caller, testset_free), or -EINVAL with a message naming the
 * entry in err ("tests[3].args must be ..."), or -ENOMEM. */
int request_tests_parse(const struct cJSON *root, testset **out, char *err, size_t errsz);

/* Refuses a testset of more than max_tests entries (the server's
 * --max-tests): -E2BIG with the sentence in err, else 0. NULL is fine. */
int request_tests_check_cap(const testset *ts, int max_tests, char *err, size_t errsz);

/* Parses the text testset_write_cases wrote (len bytes) into *out, as
 * request_tests_parse. Returns 0, -EINVAL with err set, or -ENOMEM. */
int request_tests_parse_text(const char *text, size_t len, testset **out, char *err, size_t errsz);

#endif
