/* expr: see expr.h.
 *
 * A shunting-yard parser with explicit operator and operand stacks, so no
 * input can exhaust the C stack whatever its nesting; the nesting limit is
 * policy, not a safety net. Nodes are appended as operators are reduced,
 * which yields them in evaluation order. */
#include "expr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct expr_plan {
    expr_node *nodes; /* owned */
    size_t count;
    size_t cap;
    size_t ops;
};

/* Operator stack entry: '(' , 'n' (unary minus) or a binary + - * /. */
struct expr_pending {
    char sym;
    uint32_t offset;
};

struct expr_parser {
    const char *s;
    size_t len;
    expr_plan *plan;
    struct expr_pending *ops; /* owned; room for len entries */
    size_t nops;
    uint32_t *vals; /* owned; node indices of finished operands; room for len */
    size_t nvals;
    expr_error *err;
};

static int expr_fail(struct expr_parser *p, int rc, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int expr_fail(struct expr_parser *p, int rc, size_t offset, const char *fmt, ...)
{
    if (p->err) {
        va_list ap;
        va_start(ap, fmt);
        p->err->offset = offset;
        vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int expr_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int expr_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int expr_unexpected(struct expr_parser *p, size_t at)
{
    unsigned char c = (unsigned char)p->s[at];
    if (c > 0x20 && c < 0x7f)
        return expr_fail(p, -EINVAL, at, "unexpected character '%c' at offset %zu", c, at);
    return expr_fail(p, -EINVAL, at, "unexpected byte 0x%02x at offset %zu", c, at);
}

static int expr_prec(char sym)
{
    switch (sym) {
    case '+':
    case '-':
        return 1;
    case '*':
    case '/':
        return 2;
    case 'n':
        return 3;
    default:
        return 0; /* '(' is never reduced by an operator */
    }
}

/* Appends a node; returns its index or -ENOMEM. */
static int64_t expr_add(struct expr_parser *p, const expr_node *node)
{
    expr_plan *plan = p->plan;
    if (plan->count == plan->cap) {
        size_t cap = plan->cap ? plan->cap * 2 : 16;
        expr_node *n = reallocarray(plan->nodes, cap, sizeof *n);
        if (!n)
            return expr_fail(p, -ENOMEM, 0, "out of memory");
        plan->nodes = n;
        plan->cap = cap;
    }
    plan->nodes[plan->count] = *node;
    if (node->kind == EXPR_OP)
        plan->ops++;
    return (int64_t)plan->count++;
}

static int64_t expr_add_lit(struct expr_parser *p, num value, uint32_t offset)
{
    expr_node n = {.kind = EXPR_LIT, .offset = offset, .value = value};
    return expr_add(p, &n);
}

static int64_t expr_add_op(struct expr_parser *p, enum num_op op, uint32_t lhs, uint32_t rhs,
                           uint32_t offset)
{
    uint32_t ll = p->plan->nodes[lhs].level, rl = p->plan->nodes[rhs].level;
    expr_node n = {.kind = EXPR_OP,
                   .op = op,
                   .lhs = lhs,
                   .rhs = rhs,
                   .level = 1 + (ll > rl ? ll : rl),
                   .offset = offset};
    return expr_add(p, &n);
}

/* Pops the top operator and its operands, pushes the resulting node. The
 * grammar guarantees the operands are there when an operator is reduced. */
static int expr_reduce(struct expr_parser *p)
{
    struct expr_pending top = p->ops[--p->nops];
    int64_t idx;
    if (top.sym == 'n') {
        uint32_t x = p->vals[--p->nvals];
        int64_t zero = expr_add_lit(p, num_int(0), top.offset);
        if (zero < 0)
            return (int)zero;
        idx = expr_add_op(p, NUM_SUB, (uint32_t)zero, x, top.offset);
    } else {
        static const char syms[] = "+-*/";
        enum num_op op = (enum num_op)(strchr(syms, top.sym) - syms);
        uint32_t rhs = p->vals[--p->nvals];
        uint32_t lhs = p->vals[--p->nvals];
        idx = expr_add_op(p, op, lhs, rhs, top.offset);
    }
    if (idx < 0)
        return (int)idx;
    p->vals[p->nvals++] = (uint32_t)idx;
    return 0;
}

/* Reads the number at offset `at`, folding the run of unary minus signs on
 * top of the operator stack into it. Returns its length or -errno. */
static int expr_number(struct expr_parser *p, size_t at)
{
    const char *s = p->s;
    size_t i = at;
    while (i < p->len && (expr_is_digit(s[i]) || s[i] == '.'))
        i++;
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i == p->len || !expr_is_digit(s[i]))
            return expr_fail(p, -EINVAL, at, "malformed number at offset %zu", at);
        while (i < p->len && expr_is_digit(s[i]))
            i++;
    }
    int negative = 0;
    while (p->nops > 0 && p->ops[p->nops - 1].sym == 'n') {
        negative = !negative;
        p->nops--;
    }
    num v;
    int rc = num_from_literal(s + at, i - at, negative, &v);
    if (rc == -EINVAL)
        return expr_fail(p, rc, at, "malformed number at offset %zu", at);
    if (rc == -ERANGE)
        return expr_fail(p, -EINVAL, at, "number out of range at offset %zu", at);
    if (rc < 0)
        return expr_fail(p, rc, at, "out of memory");
    int64_t idx = expr_add_lit(p, v, (uint32_t)at);
    if (idx < 0)
        return (int)idx;
    p->vals[p->nvals++] = (uint32_t)idx;
    return (int)(i - at);
}

/* Handles one token where an operand must start. Returns the token length
 * or -errno; clears *want_operand once the operand is complete. */
static int expr_operand_token(struct expr_parser *p, size_t at, unsigned *nesting,
                              int *want_operand)
{
    char c = p->s[at];
    if (expr_is_digit(c) || c == '.') {
        *want_operand = 0;
        return expr_number(p, at);
    }
    switch (c) {
    case '+':
        return 1; /* unary plus is the identity */
    case '-':
        p->ops[p->nops++] = (struct expr_pending){'n', (uint32_t)at};
        return 1;
    case '(':
        if (++*nesting > EXPR_MAX_NESTING)
            return expr_fail(p, -EINVAL, at, "nesting deeper than %d at offset %zu",
                             EXPR_MAX_NESTING, at);
        p->ops[p->nops++] = (struct expr_pending){'(', (uint32_t)at};
        return 1;
    case ')':
    case '*':
    case '/':
        return expr_fail(p, -EINVAL, at, "unexpected '%c' at offset %zu", c, at);
    default:
        return expr_unexpected(p, at);
    }
}

/* Handles one token after a complete operand. Returns the token length or
 * -errno; sets *want_operand when an operand must follow. */
static int expr_operator_token(struct expr_parser *p, size_t at, unsigned *nesting,
                               int *want_operand)
{
    char c = p->s[at];
    int rc;
    if (c == '+' || c == '-' || c == '*' || c == '/') {
        /* >= : left associativity, 8-3-2 is (8-3)-2 */
        while (p->nops > 0 && expr_prec(p->ops[p->nops - 1].sym) >= expr_prec(c))
            if ((rc = expr_reduce(p)) < 0)
                return rc;
        p->ops[p->nops++] = (struct expr_pending){c, (uint32_t)at};
        *want_operand = 1;
        return 1;
    }
    if (c == ')') {
        while (p->nops > 0 && p->ops[p->nops - 1].sym != '(')
            if ((rc = expr_reduce(p)) < 0)
                return rc;
        if (p->nops == 0)
            return expr_fail(p, -EINVAL, at, "unmatched ')' at offset %zu", at);
        p->nops--;
        --*nesting;
        return 1;
    }
    if (expr_is_digit(c) || c == '.')
        return expr_fail(p, -EINVAL, at, "unexpected number at offset %zu", at);
    if (c == '(')
        return expr_fail(p, -EINVAL, at, "unexpected '(' at offset %zu", at);
    return expr_unexpected(p, at);
}

/* Runs the parser over the whole text; on success the plan is complete. */
static int expr_run(struct expr_parser *p)
{
    size_t i = 0, prev_at = 0;
    int want_operand = 1, seen = 0, rc;
    unsigned nesting = 0;
    for (;;) {
        while (i < p->len && expr_is_space(p->s[i]))
            i++;
        if (i == p->len)
            break;
        if (want_operand) {
            rc = expr_operand_token(p, i, &nesting, &want_operand);
        } else {
            rc = expr_operator_token(p, i, &nesting, &want_operand);
        }
        if (rc < 0)
            return rc;
        prev_at = i;
        seen = 1;
        i += (size_t)rc;
    }
    if (!seen)
        return expr_fail(p, -EINVAL, 0, "empty expression");
    if (want_operand)
        return expr_fail(p, -EINVAL, p->len,
                         "unexpected end of expression after '%c' at offset %zu", p->s[prev_at],
                         p->len);
    while (p->nops > 0) {
        if (p->ops[p->nops - 1].sym == '(') {
            size_t at = p->ops[p->nops - 1].offset;
            return expr_fail(p, -EINVAL, at, "unmatched '(' opened at offset %zu", at);
        }
        if ((rc = expr_reduce(p)) < 0)
            return rc;
    }
    return 0;
}

int expr_parse(const char *s, size_t len, expr_plan **out, expr_error *err)
{
    struct expr_parser p = {.s = s, .len = len, .err = err};
    int rc = -ENOMEM;
    if (len > EXPR_MAX_LEN)
        return expr_fail(&p, -E2BIG, EXPR_MAX_LEN, "expression longer than %d bytes", EXPR_MAX_LEN);
    p.plan = calloc(1, sizeof *p.plan);
    if (!p.plan)
        goto fail_plan;
    /* Every token pushes at most one entry on either stack. */
    p.ops = calloc(len + 1, sizeof *p.ops);
    p.vals = calloc(len + 1, sizeof *p.vals);
    if (!p.ops || !p.vals)
        goto fail_stacks;
    rc = expr_run(&p);
    if (rc < 0)
        goto fail_parse;
    free(p.ops);
    free(p.vals);
    *out = p.plan;
    return 0;

fail_parse:
fail_stacks:
    free(p.ops);
    free(p.vals);
    expr_plan_free(p.plan);
fail_plan:
    if (rc == -ENOMEM)
        expr_fail(&p, rc, 0, "out of memory");
    return rc;
}

void expr_plan_free(expr_plan *plan)
{
    if (!plan)
        return;
    free(plan->nodes);
    free(plan);
}

size_t expr_plan_count(const expr_plan *plan)
{
    return plan->count;
}

size_t expr_plan_ops(const expr_plan *plan)
{
    return plan->ops;
}

size_t expr_plan_root(const expr_plan *plan)
{
    return plan->count - 1;
}

unsigned expr_plan_depth(const expr_plan *plan)
{
    return plan->nodes[plan->count - 1].level;
}

const expr_node *expr_plan_node(const expr_plan *plan, size_t i)
{
    return i < plan->count ? &plan->nodes[i] : NULL;
}

int expr_eval_local_node(const expr_plan *plan, num *out, size_t *failed_node)
{
    num *vals = calloc(plan->count, sizeof *vals);
    if (!vals)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < plan->count; i++) {
        const expr_node *n = &plan->nodes[i];
        if (n->kind == EXPR_LIT) {
            vals[i] = n->value;
            continue;
        }
        rc = num_apply(n->op, vals[n->lhs], vals[n->rhs], &vals[i]);
        if (rc < 0) {
            if (failed_node)
                *failed_node = i;
            goto fail_apply;
        }
    }
    *out = vals[plan->count - 1];
fail_apply:
    free(vals);
    return rc;
}

int expr_eval_local(const expr_plan *plan, num *out)
{
    return expr_eval_local_node(plan, out, NULL);
}
