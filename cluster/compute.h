/* compute: the POST /compute protocol between a master and its workers.
 *
 * Request  {"operation": "sum"|"sub"|"mul"|"div", "op1": X, "op2": Y}
 * Answer   {"operation": ..., "op1": X, "op2": Y, "result": Z}   (200)
 *          {"error": "division by zero", ...}                    (400)
 *
 * Numbers are read from the raw JSON text, never through a double, so
 * integers up to 64 bits stay exact ("op1": 9007199254740993). An operand
 * may also be a string holding a number ("op1": "12"), for clients whose
 * JSON library cannot write big integers. Both sides of the protocol live
 * here so that they cannot drift apart; the parsers read network input and
 * are fuzzed (fuzz/fuzz_compute.c). */
#ifndef TS_COMPUTE_H
#define TS_COMPUTE_H

#include <stddef.h>

#include "buf.h"
#include "num.h"

#define COMPUTE_ERR_MAX 256

typedef struct compute_req {
    enum num_op op;
    num a, b;
} compute_req;

/* Parses a request body. Returns 0 and fills *out, or -EINVAL with a
 * message naming the field in err (e.g. "field 'op2' must be a number"),
 * or -ENOMEM. On error *out is unchanged. */
int compute_parse_request(const char *body, size_t len, compute_req *out, char *err, size_t errsz);

/* Computes r. Returns 0 and sets *out, or -EDOM ("division by zero") /
 * -ERANGE ("result is not a finite number") with the message in err. */
int compute_run(const compute_req *r, num *out, char *err, size_t errsz);

/* Appends the request body for op(a, b) / the answer body of r to b.
 * Return 0 or -ENOMEM. */
int compute_request_json(buf *b, enum num_op op, num a, num b_);
int compute_answer_json(buf *b, const compute_req *r, num result);

/* Reads "result" from a 200 answer. Returns 0 and sets *out, or -EINVAL
 * with err set (not JSON, no result, not a number). */
int compute_parse_answer(const char *body, size_t len, num *out, char *err, size_t errsz);

/* Copies the "error" string of an error answer into msg (at most size
 * bytes, NUL-terminated); without one, a description of the body. */
void compute_parse_error(const char *body, size_t len, char *msg, size_t size);

#endif
