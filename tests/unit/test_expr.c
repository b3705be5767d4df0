/* Unit tests for expr: results of a table of expressions, error messages and
 * offsets for malformed ones, and the shape of the plan (independent
 * operations, depth, operand order). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "expr.h"

#define I(v) num_int(v)
#define D(v) num_dbl(v)

static int num_same(num a, num b)
{
    if (a.is_int != b.is_int)
        return 0;
    return a.is_int ? a.i == b.i : a.d == b.d;
}

/* Checks the invariants every plan must hold whatever the input: operands
 * come earlier, the root is last, every node but the root is used exactly
 * once (a tree), levels and the op count are consistent. */
static void check_plan_invariants(const expr_plan *plan, const char *what)
{
    size_t count = expr_plan_count(plan), ops = 0;
    if (count == 0 || expr_plan_root(plan) != count - 1)
        fail_msg("%s: %zu nodes, root %zu", what, count, expr_plan_root(plan));
    unsigned *uses = calloc(count, sizeof *uses);
    assert_non_null(uses);
    for (size_t i = 0; i < count; i++) {
        const expr_node *n = expr_plan_node(plan, i);
        assert_non_null(n);
        if (n->kind == EXPR_LIT) {
            if (n->level != 0)
                fail_msg("%s: literal %zu at level %u", what, i, n->level);
            continue;
        }
        ops++;
        if (n->lhs >= i || n->rhs >= i || n->lhs == n->rhs)
            fail_msg("%s: node %zu uses %u and %u", what, i, n->lhs, n->rhs);
        uses[n->lhs]++;
        uses[n->rhs]++;
        unsigned ll = expr_plan_node(plan, n->lhs)->level;
        unsigned rl = expr_plan_node(plan, n->rhs)->level;
        if (n->level != 1 + (ll > rl ? ll : rl))
            fail_msg("%s: node %zu level %u", what, i, n->level);
    }
    for (size_t i = 0; i + 1 < count; i++)
        if (uses[i] != 1)
            fail_msg("%s: node %zu used %u times", what, i, uses[i]);
    assert_int_equal(uses[count - 1], 0);
    free(uses);
    assert_int_equal(ops, expr_plan_ops(plan));
    assert_int_equal(expr_plan_depth(plan), expr_plan_node(plan, count - 1)->level);
    assert_null(expr_plan_node(plan, count));
}

static expr_plan *parse_ok(const char *text)
{
    expr_plan *plan = NULL;
    expr_error err = {0};
    int rc = expr_parse(text, strlen(text), &plan, &err);
    if (rc != 0)
        fail_msg("\"%s\": rc %d: %s", text, rc, err.msg);
    check_plan_invariants(plan, text);
    return plan;
}

struct eval_case {
    const char *text;
    int rc; /* of expr_eval_local */
    num want;
    int ops;   /* expected operations, -1: not checked */
    int depth; /* expected depth, -1: not checked */
};

static void test_eval_table(void **state)
{
    const struct eval_case cases[] = {
        /* precedence and associativity */
        {"1+2*3", 0, I(7), 2, 2},
        {"(1+2)*3", 0, I(9), 2, 2},
        {"1+(2*3)/4-5", 0, D(-2.5), 4, 4},
        {"8-3-2", 0, I(3), 2, 2},
        {"8/4/2", 0, I(1), 2, 2},
        {"2-3+4", 0, I(3), 2, 2},
        {"100/10*3", 0, I(30), 2, 2},
        {"2*3+4*5", 0, I(26), 3, 2},
        {"2+3*4-6/2", 0, I(11), 4, 3},
        {"((((((42))))))", 0, I(42), 0, 0},
        /* unary signs */
        {"-5", 0, I(-5), 0, 0},
        {"-(2+3)", 0, I(-5), 2, 2},
        {"3*-2", 0, I(-6), 1, 1},
        {"--1", 0, I(1), 0, 0},
        {"- -1", 0, I(1), 0, 0},
        {"-+-4", 0, I(4), 0, 0},
        {"+4", 0, I(4), 0, 0},
        {"+(4)", 0, I(4), 0, 0},
        {"-(-(1))", 0, I(1), 2, 2},
        {"2--3", 0, I(5), 1, 1},
        {"2+-3", 0, I(-1), 1, 1},
        {"2*+3", 0, I(6), 1, 1},
        {"-2*3", 0, I(-6), 1, 1},
        {"-(1)*2", 0, I(-2), 2, 2},
        {"-(1)-2", 0, I(-3), 2, 2},
        {"1-(-2)", 0, I(3), 1, 1},
        {"-0", 0, I(0), 0, 0},
        /* floats, exponents, division */
        {"0.1+0.2", 0, D(0.30000000000000004), 1, 1},
        {".5+5.", 0, D(5.5), 1, 1},
        {"1.5e2", 0, D(150.0), 0, 0},
        {"2E-3", 0, D(0.002), 0, 0},
        {"1e+3/1E3", 0, D(1.0), 1, 1},
        {"6/3", 0, I(2), 1, 1},
        {"7/2", 0, D(3.5), 1, 1},
        {"-7/2", 0, D(-3.5), 1, 1},
        {"1/3", 0, D(1.0 / 3.0), 1, 1},
        /* big integers */
        {"9223372036854775807+1", 0, D(9223372036854775808.0), 1, 1},
        {"9007199254740993*1", 0, I(9007199254740993), 1, 1},
        {"9007199254740993", 0, I(9007199254740993), 0, 0},
        {"-9223372036854775808", 0, I(INT64_MIN), 0, 0},
        {"-9223372036854775808/-1", 0, D(9223372036854775808.0), 1, 1},
        {"-(9223372036854775808)", 0, D(-9223372036854775808.0), 1, 1},
        {"9223372036854775808", 0, D(9223372036854775808.0), 0, 0},
        /* whitespace */
        {" \t1 +\n2 \r* 3\f\v", 0, I(7), 2, 2},
        {"( 1 + 2 ) * - 3", 0, I(-9), 2, 2},
        /* evaluation errors */
        {"1/0", -EDOM, I(0), 1, 1},
        {"1/(2-2)", -EDOM, I(0), 2, 2},
        {"0/0.0", -EDOM, I(0), 1, 1},
        {"1e308*10", -ERANGE, I(0), 1, 1},
        {"1e308+1e308-1e308", -ERANGE, I(0), 2, 2},
    };
    (void)state;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct eval_case *c = &cases[k];
        expr_plan *plan = parse_ok(c->text);
        num out = num_int(424242);
        int rc = expr_eval_local(plan, &out);
        if (rc != c->rc)
            fail_msg("\"%s\": eval rc %d, want %d", c->text, rc, c->rc);
        num want = rc == 0 ? c->want : num_int(424242);
        if (!num_same(out, want)) {
            char g[NUM_FMT_SIZE], w[NUM_FMT_SIZE];
            num_fmt(out, g, sizeof g);
            num_fmt(want, w, sizeof w);
            fail_msg("\"%s\": got %s %s, want %s %s", c->text, out.is_int ? "int" : "double", g,
                     want.is_int ? "int" : "double", w);
        }
        if (c->ops >= 0 && expr_plan_ops(plan) != (size_t)c->ops)
            fail_msg("\"%s\": %zu ops, want %d", c->text, expr_plan_ops(plan), c->ops);
        if (c->depth >= 0 && expr_plan_depth(plan) != (unsigned)c->depth)
            fail_msg("\"%s\": depth %u, want %d", c->text, expr_plan_depth(plan), c->depth);
        expr_plan_free(plan);
    }
}

struct error_case {
    const char *text;
    size_t len; /* 0: strlen(text) */
    int rc;
    size_t offset;
    const char *msg;
};

static void test_error_table(void **state)
{
    const struct error_case cases[] = {
        {"2+", 0, -EINVAL, 2, "unexpected end of expression after '+' at offset 2"},
        {"((1)", 0, -EINVAL, 0, "unmatched '(' opened at offset 0"},
        {"1 2", 0, -EINVAL, 2, "unexpected number at offset 2"},
        {"abc", 0, -EINVAL, 0, "unexpected character 'a' at offset 0"},
        {"", 0, -EINVAL, 0, "empty expression"},
        {" \t\n", 0, -EINVAL, 0, "empty expression"},
        {"()", 0, -EINVAL, 1, "unexpected ')' at offset 1"},
        {"1+*2", 0, -EINVAL, 2, "unexpected '*' at offset 2"},
        {"(1))", 0, -EINVAL, 3, "unmatched ')' at offset 3"},
        {"1+2)", 0, -EINVAL, 3, "unmatched ')' at offset 3"},
        {"(1+(2", 0, -EINVAL, 3, "unmatched '(' opened at offset 3"},
        {"((1)+(2)", 0, -EINVAL, 0, "unmatched '(' opened at offset 0"},
        {"(", 0, -EINVAL, 1, "unexpected end of expression after '(' at offset 1"},
        {"-", 0, -EINVAL, 1, "unexpected end of expression after '-' at offset 1"},
        {"2 * ", 0, -EINVAL, 4, "unexpected end of expression after '*' at offset 4"},
        {"*1", 0, -EINVAL, 0, "unexpected '*' at offset 0"},
        {"/1", 0, -EINVAL, 0, "unexpected '/' at offset 0"},
        {"2(3)", 0, -EINVAL, 1, "unexpected '(' at offset 1"},
        {"(1)(2)", 0, -EINVAL, 3, "unexpected '(' at offset 3"},
        {"(1)2", 0, -EINVAL, 3, "unexpected number at offset 3"},
        {"1 + x", 0, -EINVAL, 4, "unexpected character 'x' at offset 4"},
        {"2x", 0, -EINVAL, 1, "unexpected character 'x' at offset 1"},
        {"1^2", 0, -EINVAL, 1, "unexpected character '^' at offset 1"},
        {"1\0", 2, -EINVAL, 1, "unexpected byte 0x00 at offset 1"},
        {"1\xc3\x97"
         "2",
         0, -EINVAL, 1, "unexpected byte 0xc3 at offset 1"},
        {"1.2.3", 0, -EINVAL, 0, "malformed number at offset 0"},
        {"1+.", 0, -EINVAL, 2, "malformed number at offset 2"},
        {"1e", 0, -EINVAL, 0, "malformed number at offset 0"},
        {"2*1.5e+", 0, -EINVAL, 2, "malformed number at offset 2"},
        {"1e999", 0, -EINVAL, 0, "number out of range at offset 0"},
        {"2*-1e999", 0, -EINVAL, 3, "number out of range at offset 3"},
    };
    (void)state;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct error_case *c = &cases[k];
        size_t len = c->len ? c->len : strlen(c->text);
        expr_plan *plan = (expr_plan *)&plan; /* sentinel: must stay untouched */
        expr_error err = {.offset = 999};
        int rc = expr_parse(c->text, len, &plan, &err);
        if (rc != c->rc || err.offset != c->offset || strcmp(err.msg, c->msg) != 0)
            fail_msg("case %zu: rc %d offset %zu \"%s\", want rc %d offset %zu \"%s\"", k, rc,
                     err.offset, err.msg, c->rc, c->offset, c->msg);
        assert_ptr_equal(plan, (expr_plan *)&plan);
        /* the error report is optional */
        assert_int_equal(expr_parse(c->text, len, &plan, NULL), c->rc);
    }
}

/* "((1+2)*(3+4))": two additions a scheduler can run at once, then the
 * multiplication: depth 2 with three operations. */
static void test_plan_independent_ops(void **state)
{
    (void)state;
    expr_plan *plan = parse_ok("((1+2)*(3+4))");
    assert_int_equal(expr_plan_count(plan), 7);
    assert_int_equal(expr_plan_ops(plan), 3);
    assert_int_equal(expr_plan_depth(plan), 2);
    const expr_node *root = expr_plan_node(plan, expr_plan_root(plan));
    assert_int_equal(root->kind, EXPR_OP);
    assert_int_equal(root->op, NUM_MUL);
    assert_int_equal(root->offset, 6);
    const expr_node *l = expr_plan_node(plan, root->lhs), *r = expr_plan_node(plan, root->rhs);
    const expr_node *adds[2] = {l, r};
    const int64_t want[2][2] = {{1, 2}, {3, 4}};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(adds[k]->kind, EXPR_OP);
        assert_int_equal(adds[k]->op, NUM_SUM);
        assert_int_equal(adds[k]->level, 1);
        const expr_node *a = expr_plan_node(plan, adds[k]->lhs);
        const expr_node *b = expr_plan_node(plan, adds[k]->rhs);
        /* both operands are literals: nothing orders one addition after the other */
        assert_int_equal(a->kind, EXPR_LIT);
        assert_int_equal(b->kind, EXPR_LIT);
        assert_int_equal(a->value.i, want[k][0]);
        assert_int_equal(b->value.i, want[k][1]);
    }
    expr_plan_free(plan);

    plan = parse_ok("1+2+3+4");
    assert_int_equal(expr_plan_depth(plan), 3);
    expr_plan_free(plan);
    plan = parse_ok("(1+2)+(3+4)");
    assert_int_equal(expr_plan_depth(plan), 2);
    expr_plan_free(plan);
}

/* Operand order matters for sub and div; offsets point at the source. */
static void test_plan_shape(void **state)
{
    (void)state;
    expr_plan *plan = parse_ok("10 - 4 / 2");
    const expr_node *root = expr_plan_node(plan, expr_plan_root(plan));
    assert_int_equal(root->op, NUM_SUB);
    assert_int_equal(root->offset, 3);
    const expr_node *ten = expr_plan_node(plan, root->lhs);
    const expr_node *div = expr_plan_node(plan, root->rhs);
    assert_int_equal(ten->kind, EXPR_LIT);
    assert_int_equal(ten->value.i, 10);
    assert_int_equal(ten->offset, 0);
    assert_int_equal(div->op, NUM_DIV);
    assert_int_equal(div->offset, 7);
    assert_int_equal(expr_plan_node(plan, div->lhs)->value.i, 4);
    assert_int_equal(expr_plan_node(plan, div->rhs)->value.i, 2);
    assert_int_equal(expr_plan_node(plan, div->rhs)->offset, 9);
    expr_plan_free(plan);

    /* a unary minus on a group is 0 - x with a literal 0 of its own */
    plan = parse_ok("-(2+3)");
    assert_int_equal(expr_plan_count(plan), 5);
    root = expr_plan_node(plan, expr_plan_root(plan));
    assert_int_equal(root->op, NUM_SUB);
    assert_int_equal(root->offset, 0);
    const expr_node *zero = expr_plan_node(plan, root->lhs);
    assert_int_equal(zero->kind, EXPR_LIT);
    assert_true(zero->value.is_int && zero->value.i == 0);
    assert_int_equal(expr_plan_node(plan, root->rhs)->op, NUM_SUM);
    expr_plan_free(plan);

    /* a unary minus before a number folds into the literal */
    plan = parse_ok("3*-2");
    assert_int_equal(expr_plan_count(plan), 3);
    root = expr_plan_node(plan, expr_plan_root(plan));
    assert_int_equal(expr_plan_node(plan, root->rhs)->value.i, -2);
    expr_plan_free(plan);

    plan = parse_ok("-5");
    assert_int_equal(expr_plan_count(plan), 1);
    assert_int_equal(expr_plan_ops(plan), 0);
    assert_int_equal(expr_plan_node(plan, 0)->kind, EXPR_LIT);
    assert_int_equal(expr_plan_node(plan, 0)->value.i, -5);
    expr_plan_free(plan);
}

static void test_failed_node(void **state)
{
    (void)state;
    expr_plan *plan = parse_ok("2*3 + 1/(4-4)");
    num out = num_int(7);
    size_t failed = 999;
    assert_int_equal(expr_eval_local_node(plan, &out, &failed), -EDOM);
    assert_int_equal(out.i, 7);
    const expr_node *n = expr_plan_node(plan, failed);
    assert_int_equal(n->op, NUM_DIV);
    assert_int_equal(n->offset, 7);
    expr_plan_free(plan);
}

static void test_limits(void **state)
{
    (void)state;
    const size_t n = EXPR_MAX_LEN;
    char *text = malloc(n + 2);
    assert_non_null(text);
    expr_plan *plan = NULL;
    expr_error err;
    num out;

    /* the longest chain fits: 32768 ones, 32767 additions in a line */
    for (size_t i = 0; i < n; i++)
        text[i] = (i % 2) ? '+' : '1';
    assert_int_equal(expr_parse(text, n - 1, &plan, &err), 0);
    assert_int_equal(expr_plan_depth(plan), n / 2 - 1);
    assert_int_equal(expr_eval_local(plan, &out), 0);
    assert_true(out.is_int && out.i == (int64_t)(n / 2));
    expr_plan_free(plan);

    /* one byte too long */
    memset(text, ' ', n + 1);
    text[0] = '1';
    assert_int_equal(expr_parse(text, n + 1, &plan, &err), -E2BIG);
    assert_string_equal(err.msg, "expression longer than 65536 bytes");

    /* a long run of signs before a number folds, whatever its length */
    memset(text, '-', n - 1);
    text[n - 1] = '7';
    assert_int_equal(expr_parse(text, n, &plan, &err), 0);
    assert_int_equal(expr_plan_count(plan), 1);
    assert_int_equal(expr_plan_node(plan, 0)->value.i, -7);
    expr_plan_free(plan);

    /* nesting: 256 levels parse, 257 do not */
    for (size_t depth = EXPR_MAX_NESTING; depth <= EXPR_MAX_NESTING + 1; depth++) {
        memset(text, '(', depth);
        text[depth] = '1';
        memset(text + depth + 1, ')', depth);
        int rc = expr_parse(text, 2 * depth + 1, &plan, &err);
        if (depth == EXPR_MAX_NESTING) {
            assert_int_equal(rc, 0);
            assert_int_equal(expr_plan_count(plan), 1);
            expr_plan_free(plan);
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_int_equal(err.offset, EXPR_MAX_NESTING);
            assert_string_equal(err.msg, "nesting deeper than 256 at offset 256");
        }
    }
    /* parentheses closed in between do not add up */
    size_t len = 0;
    for (int k = 0; k < 1000; k++)
        len += (size_t)snprintf(text + len, n - len, "%s(1)", k ? "+" : "");
    assert_int_equal(expr_parse(text, len, &plan, &err), 0);
    expr_plan_free(plan);

    /* many unary minus operations on groups nest without recursion */
    len = 0;
    for (int k = 0; k < 20000; k++)
        text[len++] = '-';
    memcpy(text + len, "(1)", 3);
    len += 3;
    assert_int_equal(expr_parse(text, len, &plan, &err), 0);
    assert_int_equal(expr_plan_depth(plan), 20000);
    assert_int_equal(expr_eval_local(plan, &out), 0);
    assert_true(out.is_int && out.i == 1);
    expr_plan_free(plan);
    free(text);
}

/* Tiny reference evaluator over a random grammar walk: the value is
 * computed while the text is generated, following the grammar's own
 * structure, so precedence mistakes in the parser show as mismatches. */
struct gen {
    char *text;
    size_t len, cap;
    uint64_t rng;
    int overflow;
};

static unsigned gen_rand(struct gen *g, unsigned n)
{
    g->rng ^= g->rng << 13, g->rng ^= g->rng >> 7, g->rng ^= g->rng << 17;
    return (unsigned)(g->rng % n);
}

static void gen_put(struct gen *g, const char *s)
{
    size_t n = strlen(s);
    if (g->len + n < g->cap) {
        memcpy(g->text + g->len, s, n);
        g->len += n;
    }
}

static int64_t gen_expr(struct gen *g, int depth);

static int64_t gen_factor(struct gen *g, int depth)
{
    unsigned pick = depth > 0 ? gen_rand(g, 6) : 0;
    if (pick <= 2) {
        char digit[2] = {(char)('0' + gen_rand(g, 10)), 0};
        gen_put(g, digit);
        return digit[0] - '0';
    }
    if (pick <= 4) {
        gen_put(g, gen_rand(g, 2) ? "(" : " ( ");
        int64_t v = gen_expr(g, depth - 1);
        gen_put(g, ")");
        return v;
    }
    gen_put(g, "-");
    return -gen_factor(g, depth - 1);
}

static int64_t gen_term(struct gen *g, int depth)
{
    int64_t v = gen_factor(g, depth);
    for (unsigned k = gen_rand(g, 3); k > 0; k--) {
        gen_put(g, "*");
        if (__builtin_mul_overflow(v, gen_factor(g, depth), &v))
            g->overflow = 1;
    }
    return v;
}

static int64_t gen_expr(struct gen *g, int depth)
{
    int64_t v = gen_term(g, depth);
    for (unsigned k = gen_rand(g, 4); k > 0; k--) {
        int sub = gen_rand(g, 2);
        gen_put(g, sub ? "-" : "+");
        int64_t t = gen_term(g, depth);
        if (sub ? __builtin_sub_overflow(v, t, &v) : __builtin_add_overflow(v, t, &v))
            g->overflow = 1;
    }
    return v;
}

static void test_random_against_reference(void **state)
{
    char buf[4096];
    struct gen g = {.text = buf, .cap = sizeof buf, .rng = 0x2545F4914F6CDD1Dull};
    int checked = 0;
    (void)state;
    for (int k = 0; k < 3000; k++) {
        g.len = 0;
        g.overflow = 0;
        int64_t want = gen_expr(&g, 4);
        if (g.overflow || g.len >= g.cap - 1)
            continue;
        expr_plan *plan = NULL;
        expr_error err;
        int rc = expr_parse(g.text, g.len, &plan, &err);
        if (rc != 0)
            fail_msg("\"%.*s\": %s", (int)g.len, g.text, err.msg);
        check_plan_invariants(plan, "random");
        num out;
        assert_int_equal(expr_eval_local(plan, &out), 0);
        if (!out.is_int || out.i != want)
            fail_msg("\"%.*s\": got %lld, want %lld", (int)g.len, g.text, (long long)out.i,
                     (long long)want);
        expr_plan_free(plan);
        checked++;
    }
    assert_true(checked > 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_table),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_plan_independent_ops),
        cmocka_unit_test(test_plan_shape),
        cmocka_unit_test(test_failed_node),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
