/* expr: parses an arithmetic expression into a plan of single operations.
 *
 * Grammar: numbers (integers, decimals ".5" "5." "1.5", exponents "1.5e2"
 * "2E-3"), binary + - * / with the usual precedence and left associativity
 * (8-3-2 = 3, 8/4/2 = 1), parentheses, unary minus and plus binding tighter
 * than * and / ("3*-2", "--1", "-(2+3)", "+4"), any whitespace between
 * tokens (space, tab, CR, LF, VT, FF).
 *
 * The plan is a tree of nodes stored in an array in evaluation order: each
 * node is a literal or an operation whose two operands are nodes with
 * smaller indices, and every node but the root is the operand of exactly
 * one operation. A scheduler may run every operation whose operands are
 * known at the same time; the plan's depth (longest chain of operations)
 * bounds the wall time of a job.
 *
 * Unary signs: a run of signs directly before a number folds into the
 * literal ("-5", "3*-2", "--1" and "- -1" are literals; "-9223372036854775808"
 * is the exact integer). Any other unary minus becomes the operation 0 - x
 * ("-(2+3)" is sub(0, sum(2, 3))), with its own literal 0. Unary plus
 * produces nothing.
 *
 * A plan does not change after expr_parse: any number of threads may read
 * it at once; the parser itself keeps no global state. */
#ifndef TS_EXPR_H
#define TS_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "num.h"

/* Longest expression accepted, in bytes. */
#define EXPR_MAX_LEN 65536
/* Deepest nesting of parentheses accepted. */
#define EXPR_MAX_NESTING 256

enum expr_kind { EXPR_LIT, EXPR_OP };

typedef struct expr_node {
    enum expr_kind kind;
    enum num_op op;  /* EXPR_OP: the operation */
    uint32_t lhs;    /* EXPR_OP: index of the left operand (< own index) */
    uint32_t rhs;    /* EXPR_OP: index of the right operand (< own index) */
    uint32_t level;  /* 0 for literals, 1 + the larger operand level for ops */
    uint32_t offset; /* byte offset in the expression of the number or operator */
    num value;       /* EXPR_LIT: the number */
} expr_node;

typedef struct expr_plan expr_plan;

typedef struct expr_error {
    size_t offset; /* byte offset where the problem was found */
    char msg[160]; /* e.g. "unexpected number at offset 2"; ends with the offset */
} expr_error;

/* Parses the len bytes at s (no NUL needed; a NUL byte is an error).
 * Returns 0 and sets *out to a new plan that the caller frees with
 * expr_plan_free. On failure *out is unchanged and, if err is not NULL,
 * err describes the problem; returns:
 *   -EINVAL  malformed text: "empty expression", "unexpected end of
 *            expression after '+' at offset 2", "unmatched '(' opened at
 *            offset 0", "unmatched ')' at offset 3", "unexpected number at
 *            offset 2", "unexpected '*' at offset 2", "unexpected character
 *            'a' at offset 0", "malformed number at offset N", "number out
 *            of range at offset N", "nesting deeper than 256 at offset N";
 *   -E2BIG   len > EXPR_MAX_LEN;
 *   -ENOMEM  out of memory. */
int expr_parse(const char *s, size_t len, expr_plan **out, expr_error *err);

/* Frees a plan from expr_parse; NULL is allowed. */
void expr_plan_free(expr_plan *plan);

/* Number of nodes (>= 1). */
size_t expr_plan_count(const expr_plan *plan);

/* Number of EXPR_OP nodes: the operations a job sends to workers. */
size_t expr_plan_ops(const expr_plan *plan);

/* Index of the node whose value is the value of the expression (always the
 * last node). */
size_t expr_plan_root(const expr_plan *plan);

/* Longest chain of operations: the root's level; 0 for a lone literal. */
unsigned expr_plan_depth(const expr_plan *plan);

/* Node i (i < expr_plan_count), valid until the plan is freed; NULL if i is
 * out of range. */
const expr_node *expr_plan_node(const expr_plan *plan, size_t i);

/* Evaluates the plan in this process with num_apply, in node order.
 * Returns 0 and sets *out, or the first error of num_apply in node order
 * (-EDOM division by zero, -ERANGE non-finite result) or -ENOMEM; *out is
 * unchanged on error. */
int expr_eval_local(const expr_plan *plan, num *out);

/* Same, and on -EDOM/-ERANGE stores the index of the failing node in
 * *failed_node (if not NULL): its offset says which operator failed. */
int expr_eval_local_node(const expr_plan *plan, num *out, size_t *failed_node);

#endif
