/* fuzz_expr: arbitrary bytes as an arithmetic expression (the "task" of a
 * job comes from the network). Parsing and evaluation must never crash or
 * hang, errors must be well-formed, every plan must hold the invariants a
 * scheduler relies on, and every number must print and read back to the
 * same value. The same bytes also go through num_from_text, the parser of
 * op1/op2 on the worker side. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "fuzz_thread.h"
#include "num.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Printing v and reading the text back gives the same value. */
static void check_round_trip(num v)
{
    char text[NUM_FMT_SIZE];
    int n = num_fmt(v, text, sizeof text);
    CHECK(n > 0 && (size_t)n < sizeof text && strlen(text) == (size_t)n);
    num back;
    CHECK(num_from_text(text, (size_t)n, &back) == 0);
    if (v.is_int)
        CHECK(back.is_int && back.i == v.i);
    else
        CHECK(num_to_double(back) == v.d);
}

static void check_plan(const expr_plan *plan)
{
    size_t count = expr_plan_count(plan), ops = 0;
    CHECK(count > 0 && expr_plan_root(plan) == count - 1);
    CHECK(expr_plan_node(plan, count) == NULL);
    for (size_t i = 0; i < count; i++) {
        const expr_node *n = expr_plan_node(plan, i);
        CHECK(n != NULL);
        if (n->kind == EXPR_LIT) {
            CHECK(n->level == 0);
            check_round_trip(n->value);
            continue;
        }
        CHECK(n->kind == EXPR_OP && (unsigned)n->op <= NUM_DIV);
        CHECK(n->lhs < i && n->rhs < i && n->lhs != n->rhs);
        unsigned ll = expr_plan_node(plan, n->lhs)->level;
        unsigned rl = expr_plan_node(plan, n->rhs)->level;
        CHECK(n->level == 1 + (ll > rl ? ll : rl));
        ops++;
    }
    CHECK(ops == expr_plan_ops(plan));
    CHECK(expr_plan_depth(plan) == expr_plan_node(plan, count - 1)->level);
}

/* One input, on the small-stack thread. */
static void fuzz_one(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    expr_plan *plan = NULL;
    expr_error err;
    memset(&err, 0xA5, sizeof err); /* the message must be written in full */
    int rc = expr_parse(s, size, &plan, &err);
    if (rc != 0) {
        CHECK(rc == -EINVAL || rc == -E2BIG || rc == -ENOMEM);
        CHECK(plan == NULL);
        CHECK(memchr(err.msg, '\0', sizeof err.msg) != NULL && err.msg[0] != '\0');
        CHECK(err.offset <= size);
    } else {
        check_plan(plan);
        num out;
        size_t failed = SIZE_MAX;
        rc = expr_eval_local_node(plan, &out, &failed);
        CHECK(rc == 0 || rc == -EDOM || rc == -ERANGE);
        if (rc == 0)
            check_round_trip(out);
        else
            CHECK(failed < expr_plan_count(plan) && expr_plan_node(plan, failed)->kind == EXPR_OP &&
                  expr_plan_node(plan, failed)->offset < size);
        expr_plan_free(plan);
    }

    num v;
    rc = num_from_text(s, size, &v);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
    if (rc == 0)
        check_round_trip(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_thread_run(fuzz_one, data, size);
    return 0;
}
