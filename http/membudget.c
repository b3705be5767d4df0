/* membudget: see membudget.h. */
#include "membudget.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MEMBUDGET_GIB ((size_t)1 << 30)

void membudget_init(membudget *m, size_t max)
{
    atomic_init(&m->used, 0);
    m->max = max;
}

size_t membudget_default_max(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return MEMBUDGET_GIB;
    size_t quarter = (size_t)pages / 4 * (size_t)page;
    return quarter < MEMBUDGET_GIB ? quarter : MEMBUDGET_GIB;
}

int membudget_reserve(membudget *m, size_t n)
{
    if (!m || n == 0)
        return 0;
    if (m->max == 0) {
        atomic_fetch_add(&m->used, n);
        return 0;
    }
    if (n > m->max)
        return -E2BIG;
    size_t cur = atomic_load(&m->used);
    do {
        /* cur may be over max after a charge: nothing fits then. */
        if (cur > m->max || n > m->max - cur)
            return -ENOBUFS;
    } while (!atomic_compare_exchange_weak(&m->used, &cur, cur + n));
    return 0;
}

void membudget_charge(membudget *m, size_t n)
{
    if (m)
        atomic_fetch_add(&m->used, n);
}

void membudget_release(membudget *m, size_t n)
{
    if (m)
        atomic_fetch_sub(&m->used, n);
}

int membudget_adjust(membudget *m, size_t *held, size_t want)
{
    if (m && m->max && want > m->max)
        return -E2BIG; /* however little of it is new */
    if (want > *held) {
        int rc = membudget_reserve(m, want - *held);
        if (rc < 0)
            return rc;
    } else {
        membudget_release(m, *held - want);
    }
    *held = want;
    return 0;
}

size_t membudget_used(membudget *m)
{
    return m ? atomic_load(&m->used) : 0;
}

size_t membudget_max(const membudget *m)
{
    return m ? m->max : 0;
}

const char *membudget_describe(membudget *m, char *out, size_t size)
{
    if (membudget_max(m))
        snprintf(out, size,
                 "waiting tasks and request bodies hold %zu of the %zu bytes allowed by "
                 "--max-queue-bytes",
                 membudget_used(m), membudget_max(m));
    else
        snprintf(out, size, "waiting tasks and request bodies hold %zu bytes", membudget_used(m));
    return out;
}

size_t membudget_json_cost(const char *json, size_t len)
{
    const char *p = json, *end = json + len;
    size_t items = 1;
    while (p < end) {
        char ch = *p++;
        if (ch == ',' || ch == '[' || ch == '{') {
            items++;
        } else if (ch == '"') {
            /* Skip the string: its commas make no items. memchr keeps a
             * base64 program, almost all of a big body, one fast scan. */
            const char *start = p;
            for (;;) {
                const char *q = memchr(p, '"', (size_t)(end - p));
                if (!q) {
                    p = end;
                    break;
                }
                size_t slashes = 0;
                while (q - slashes > start && q[-1 - (ptrdiff_t)slashes] == '\\')
                    slashes++;
                p = q + 1;
                if (slashes % 2 == 0)
                    break;
            }
        }
    }
    if (items > (SIZE_MAX - len) / MEMBUDGET_JSON_ITEM)
        return SIZE_MAX;
    return len + items * MEMBUDGET_JSON_ITEM;
}
