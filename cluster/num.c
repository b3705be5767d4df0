/* num: see num.h. */
#include "num.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Doubles below this magnitude hold every integer exactly. */
#define NUM_EXACT_LIMIT 9007199254740992.0 /* 2^53 */

num num_int(int64_t v)
{
    return (num){.is_int = 1, .i = v, .d = 0.0};
}

num num_dbl(double v)
{
    return (num){.is_int = 0, .i = 0, .d = v};
}

double num_to_double(num v)
{
    return v.is_int ? (double)v.i : v.d;
}

static const char *const num_op_names[] = {"sum", "sub", "mul", "div"};
static const char num_op_symbols[] = {'+', '-', '*', '/'};

const char *num_op_name(enum num_op op)
{
    if ((unsigned)op > NUM_DIV)
        return NULL;
    return num_op_names[op];
}

char num_op_symbol(enum num_op op)
{
    if ((unsigned)op > NUM_DIV)
        return '?';
    return num_op_symbols[op];
}

int num_op_parse(const char *name, enum num_op *out)
{
    for (unsigned i = 0; i <= NUM_DIV; i++) {
        if (strcmp(name, num_op_names[i]) == 0) {
            *out = (enum num_op)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* a / b for integers that do not divide evenly (so |b| >= 2), correctly
 * rounded. Converting both to double first would round twice: beyond 2^53
 * (double)a is not a, and 9007199254740993/7 would come out one ulp off.
 * The quotient is computed with 62-63 significant bits, the remainder folded
 * into the lowest bit as a sticky bit, and the single conversion to double
 * then rounds exactly as the infinitely precise quotient would. */
static double num_div_inexact(int64_t a, int64_t b)
{
#ifdef __SIZEOF_INT128__
    int negative = (a < 0) != (b < 0);
    uint64_t ua = a < 0 ? 0 - (uint64_t)a : (uint64_t)a;
    uint64_t ub = b < 0 ? 0 - (uint64_t)b : (uint64_t)b;
    int la = 64 - __builtin_clzll(ua);
    int lb = 64 - __builtin_clzll(ub);
    int shift = 62 - la + lb; /* >= 0 because lb >= 2 */
    unsigned __int128 n = (unsigned __int128)ua << shift;
    uint64_t q = (uint64_t)(n / ub); /* in [2^61, 2^63) */
    q |= (n % ub) != 0;
    double d = ldexp((double)q, -shift);
    return negative ? -d : d;
#else
    return (double)((long double)a / (long double)b);
#endif
}

static int num_apply_int(enum num_op op, int64_t a, int64_t b, num *out)
{
    int64_t r;
    switch (op) {
    case NUM_SUM:
        *out = __builtin_add_overflow(a, b, &r) ? num_dbl((double)a + (double)b) : num_int(r);
        return 0;
    case NUM_SUB:
        *out = __builtin_sub_overflow(a, b, &r) ? num_dbl((double)a - (double)b) : num_int(r);
        return 0;
    case NUM_MUL:
        *out = __builtin_mul_overflow(a, b, &r) ? num_dbl((double)a * (double)b) : num_int(r);
        return 0;
    case NUM_DIV:
        if (b == 0)
            return -EDOM;
        if (a == INT64_MIN && b == -1) /* the one quotient beyond int64 */
            *out = num_dbl(9223372036854775808.0);
        else if (a % b == 0)
            *out = num_int(a / b);
        else
            *out = num_dbl(num_div_inexact(a, b));
        return 0;
    }
    return -EINVAL;
}

int num_apply(enum num_op op, num a, num b, num *out)
{
    if ((unsigned)op > NUM_DIV)
        return -EINVAL;
    if ((!a.is_int && !isfinite(a.d)) || (!b.is_int && !isfinite(b.d)))
        return -ERANGE;
    if (a.is_int && b.is_int)
        return num_apply_int(op, a.i, b.i, out);

    double x = num_to_double(a), y = num_to_double(b), r = 0.0;
    switch (op) {
    case NUM_SUM:
        r = x + y;
        break;
    case NUM_SUB:
        r = x - y;
        break;
    case NUM_MUL:
        r = x * y;
        break;
    case NUM_DIV:
        if (y == 0.0)
            return -EDOM;
        r = x / y;
        break;
    }
    if (!isfinite(r))
        return -ERANGE;
    *out = num_dbl(r);
    return 0;
}

/* Shortest %.Ng that reads back as v; %.17g always does. Every decimal of
 * at most 15 significant digits survives a trip through a normal double, so
 * %.15g already finds those and the search starts there; subnormals have
 * fewer significant bits and may need fewer digits (5e-324). */
static int num_fmt_double(double v, char *tmp, size_t size)
{
    int n = 0;
    if (v == 0.0)
        return snprintf(tmp, size, "0"); /* also -0.0: JSON readers differ on "-0" */
    if (v == trunc(v) && fabs(v) < NUM_EXACT_LIMIT)
        return snprintf(tmp, size, "%.0f", v);
    for (int prec = fabs(v) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        n = snprintf(tmp, size, "%.*g", prec, v);
        if (n < 0 || (size_t)n >= size || strtod(tmp, NULL) == v)
            break;
    }
    return n;
}

int num_fmt(num v, char *out, size_t size)
{
    char tmp[48];
    int n;
    if (size > 0)
        out[0] = '\0';
    if (v.is_int)
        n = snprintf(tmp, sizeof tmp, "%lld", (long long)v.i);
    else if (!isfinite(v.d))
        return -ERANGE;
    else
        n = num_fmt_double(v.d, tmp, sizeof tmp);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -ERANGE; /* cannot happen for finite values */
    if ((size_t)n >= size)
        return -ENOSPC;
    memcpy(out, tmp, (size_t)n + 1);
    return n;
}

static int num_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Checks the unsigned literal syntax of num_from_text. Returns 1 if the
 * text is an integer (no '.', no exponent), 0 for other valid text, or
 * -EINVAL. */
static int num_check_syntax(const char *s, size_t len)
{
    size_t i = 0, digits = 0;
    int integral = 1;
    while (i < len && num_is_digit(s[i]))
        i++, digits++;
    if (i < len && s[i] == '.') {
        integral = 0;
        i++;
        while (i < len && num_is_digit(s[i]))
            i++, digits++;
    }
    if (digits == 0)
        return -EINVAL;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        integral = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t exp_start = i;
        while (i < len && num_is_digit(s[i]))
            i++;
        if (i == exp_start)
            return -EINVAL;
    }
    return i == len ? integral : -EINVAL;
}

/* Integer digits to int64; returns 0, or -ERANGE if beyond int64. */
static int num_parse_int(const char *s, size_t len, int negative, int64_t *out)
{
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (v > (limit - digit) / 10)
            return -ERANGE;
        v = v * 10 + digit;
    }
    *out = negative ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int num_from_literal(const char *s, size_t len, int negative, num *out)
{
    int kind = num_check_syntax(s, len);
    if (kind < 0)
        return kind;
    int64_t iv;
    if (kind == 1 && num_parse_int(s, len, negative, &iv) == 0) {
        *out = num_int(iv);
        return 0;
    }

    /* strtod wants a NUL-terminated copy; the syntax is already checked,
     * so strtod's extras (hex, inf, nan, spaces) cannot slip through. */
    char small[128];
    char *copy = small;
    if (len + 2 > sizeof small) {
        copy = malloc(len + 2);
        if (!copy)
            return -ENOMEM;
    }
    copy[0] = '-';
    memcpy(copy + 1, s, len);
    copy[len + 1] = '\0';
    double d = strtod(negative ? copy : copy + 1, NULL);
    if (copy != small)
        free(copy);
    if (isinf(d))
        return -ERANGE;
    *out = num_dbl(d);
    return 0;
}

int num_from_text(const char *s, size_t len, num *out)
{
    if (len > 0 && s[0] == '-')
        return num_from_literal(s + 1, len - 1, 1, out);
    return num_from_literal(s, len, 0, out);
}
