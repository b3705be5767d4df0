/* num: the numbers of arithmetic jobs and the four operations on them.
 *
 * A num is an exact 64-bit integer or an IEEE double. Integer arithmetic
 * stays exact while it fits in 64 bits and falls back to double on
 * overflow; an operation with a double operand gives a double. Division
 * gives an integer only when it divides evenly (6/3 = 2, 7/2 = 3.5), and
 * the double quotient of two integers is the exact quotient correctly
 * rounded, not the quotient of two already-rounded doubles.
 *
 * Numbers are never NaN or infinite: a result that would be is an error.
 * Text conversions assume the "C" locale (the process never calls
 * setlocale), so the decimal point is '.'. No global state: every function
 * may be called from any thread. */
#ifndef TS_NUM_H
#define TS_NUM_H

#include <stddef.h>
#include <stdint.h>

typedef struct num {
    int is_int; /* non-zero: the value is i; zero: the value is d */
    int64_t i;
    double d;
} num;

enum num_op { NUM_SUM, NUM_SUB, NUM_MUL, NUM_DIV };

/* Room num_fmt needs for any finite num, NUL included. */
#define NUM_FMT_SIZE 32

/* Builds an integer / a double num. */
num num_int(int64_t v);
num num_dbl(double v);

/* Returns the value as a double (rounded for integers beyond 2^53). */
double num_to_double(num v);

/* Returns "sum", "sub", "mul" or "div"; NULL for a value outside the enum. */
const char *num_op_name(enum num_op op);

/* Returns '+', '-', '*' or '/'; '?' for a value outside the enum. */
char num_op_symbol(enum num_op op);

/* Parses an operation name ("sum", "sub", "mul", "div"; exact, lower case).
 * Returns 0 and sets *out, or -EINVAL (then *out is unchanged). */
int num_op_parse(const char *name, enum num_op *out);

/* Computes a OP b into *out.
 * Returns 0, -EDOM for a division by zero (integer or double zero, also
 * 0/0), -ERANGE when the result or an operand is not finite (1e308*10), or
 * -EINVAL for an op outside the enum. On error *out is unchanged. */
int num_apply(enum num_op op, num a, num b, num *out);

/* Writes v as JSON number text into out (size bytes, NUL-terminated):
 * integers as %lld; doubles in the shortest form that parses back to the
 * same double ("2.5", "0.30000000000000004", "1e+300"), without a fraction
 * when integral and below 2^53 in magnitude ("6"); -0.0 prints "0".
 * Returns the length written (without the NUL), -ENOSPC if size is too
 * small (NUM_FMT_SIZE always suffices), or -ERANGE for a non-finite double.
 * On error out holds "" if size > 0. */
int num_fmt(num v, char *out, size_t size);

/* Parses the len bytes at s, which must be exactly one number: an optional
 * '-', then digits with at most one '.' ("5", ".5", "5.", "1.5"; at least one
 * digit), then an optional exponent ("e", "E", optional sign, digits). This
 * covers every JSON number and every literal of an expression. No
 * whitespace, no '+' sign, no hex, no inf/nan.
 * Text without '.' and exponent that fits in int64 gives an exact integer
 * ("9007199254740993", "-9223372036854775808"); anything else gives the
 * nearest double (underflow rounds towards zero and is accepted).
 * Returns 0 and sets *out, -EINVAL for malformed text, -ERANGE for a value
 * beyond the double range ("1e999"), or -ENOMEM. On error *out is unchanged. */
int num_from_text(const char *s, size_t len, num *out);

/* Like num_from_text for text without a sign, negated when `negative` is
 * non-zero. The sign is applied before any rounding, so "9223372036854775808"
 * with negative set is the exact integer INT64_MIN. Same returns. */
int num_from_literal(const char *s, size_t len, int negative, num *out);

#endif
