/* registry: see registry.h. */
#include "registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timefmt.h"

#define REGISTRY_PROBE_MIN_US (1000 * 1000)
#define REGISTRY_PROBE_MAX_US (30 * 1000 * 1000)

struct registry_node {
    registry_node_info info;
    uint64_t last_ticket; /* ticket of its latest lease; lower = longer idle */
    int probing;          /* a probe is in flight */
    int64_t probe_at_us;  /* monotonic time of the next probe while unhealthy */
    int64_t probe_gap_us; /* current probe interval */
};

/* A health change, logged after the lock is released. */
struct registry_event {
    int kind; /* 0: none, 1: unhealthy, 2: back */
    char name[REGISTRY_NAME_MAX];
    char error[REGISTRY_ERR_MAX];
};

static void registry_log(const struct registry_event *ev)
{
    if (ev->kind == 1)
        log_warn("node %s is unhealthy: %s", ev->name, ev->error);
    else if (ev->kind == 2)
        log_info("node %s is healthy again", ev->name);
}

int registry_init(registry *r)
{
    memset(r, 0, sizeof *r);
    int rc = pthread_mutex_init(&r->lock, NULL);
    if (rc)
        return -rc;
    r->next_id = 1;
    return 0;
}

void registry_destroy(registry *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->nodes[i]);
    free(r->nodes);
    pthread_mutex_destroy(&r->lock);
    memset(r, 0, sizeof *r);
}

static struct registry_node *registry_find_name(registry *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->nodes[i]->info.name, name) == 0)
            return r->nodes[i];
    return NULL;
}

static struct registry_node *registry_find_id(registry *r, uint64_t id)
{
    for (size_t i = 0; i < r->count; i++)
        if (r->nodes[i]->info.id == id)
            return r->nodes[i];
    return NULL;
}

/* Marks n healthy and seen; fills ev if that is a change. */
static void registry_mark_alive(struct registry_node *n, struct registry_event *ev)
{
    if (!n->info.healthy) {
        ev->kind = 2;
        memcpy(ev->name, n->info.name, sizeof ev->name);
    }
    n->info.healthy = 1;
    n->info.seen_us = time_now_us();
    n->probe_gap_us = 0;
}

int registry_announce(registry *r, const char *name, const char *url, int slots)
{
    size_t nlen = strlen(name), ulen = strlen(url);
    if (nlen == 0 || nlen >= REGISTRY_NAME_MAX || ulen == 0 || ulen >= REGISTRY_URL_MAX ||
        slots < 1 || slots > REGISTRY_MAX_SLOTS)
        return -EINVAL;
    struct registry_event ev = {0};
    int rc;
    pthread_mutex_lock(&r->lock);
    struct registry_node *n = registry_find_name(r, name);
    if (n) {
        memcpy(n->info.url, url, ulen + 1);
        n->info.slots = slots;
        registry_mark_alive(n, &ev);
        rc = 0;
        goto out;
    }
    if (r->count >= REGISTRY_MAX_NODES) {
        rc = -ENOSPC;
        goto out;
    }
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        struct registry_node **nodes = reallocarray(r->nodes, cap, sizeof *nodes);
        if (!nodes) {
            rc = -ENOMEM;
            goto out;
        }
        r->nodes = nodes;
        r->cap = cap;
    }
    n = calloc(1, sizeof *n);
    if (!n) {
        rc = -ENOMEM;
        goto out;
    }
    n->info.id = r->next_id++;
    memcpy(n->info.name, name, nlen + 1);
    memcpy(n->info.url, url, ulen + 1);
    n->info.slots = slots;
    n->info.healthy = 1;
    n->info.registered_us = n->info.seen_us = time_now_us();
    r->nodes[r->count++] = n;
    rc = 1;
out:
    pthread_mutex_unlock(&r->lock);
    registry_log(&ev);
    return rc;
}

static void registry_fill_lease(registry *r, struct registry_node *n, registry_lease *out,
                                int probe)
{
    n->info.in_flight++;
    n->last_ticket = ++r->ticket;
    out->node_id = n->info.id;
    out->probe = probe;
    memcpy(out->name, n->info.name, sizeof out->name);
    memcpy(out->url, n->info.url, sizeof out->url);
}

int registry_acquire(registry *r, registry_lease *out)
{
    pthread_mutex_lock(&r->lock);
    struct registry_node *best = NULL;
    for (size_t i = 0; i < r->count; i++) {
        struct registry_node *n = r->nodes[i];
        if (!n->info.healthy || n->info.in_flight >= n->info.slots)
            continue;
        if (!best || n->info.in_flight < best->info.in_flight ||
            (n->info.in_flight == best->info.in_flight && n->last_ticket < best->last_ticket))
            best = n;
    }
    if (best)
        registry_fill_lease(r, best, out, 0);
    pthread_mutex_unlock(&r->lock);
    return best ? 0 : -EAGAIN;
}

int registry_probe_due(registry *r, int64_t now_mono_us, registry_lease *out)
{
    int rc = -EAGAIN;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->count; i++) {
        struct registry_node *n = r->nodes[i];
        if (n->info.healthy || n->probing || now_mono_us < n->probe_at_us)
            continue;
        n->probing = 1;
        registry_fill_lease(r, n, out, 1);
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void registry_release(registry *r, const registry_lease *l, enum registry_outcome o,
                      const char *error)
{
    struct registry_event ev = {0};
    pthread_mutex_lock(&r->lock);
    struct registry_node *n = registry_find_id(r, l->node_id);
    if (!n)
        goto out;
    n->info.in_flight--;
    if (l->probe)
        n->probing = 0;
    if (o == REGISTRY_ANSWERED) {
        if (!l->probe)
            n->info.done++;
        registry_mark_alive(n, &ev);
    } else if (o == REGISTRY_FAILED) {
        if (!l->probe)
            n->info.failures++;
        snprintf(n->info.last_error, sizeof n->info.last_error, "%s", error ? error : "failed");
        if (n->info.healthy) {
            ev.kind = 1;
            memcpy(ev.name, n->info.name, sizeof ev.name);
            memcpy(ev.error, n->info.last_error, sizeof ev.error);
        }
        n->info.healthy = 0;
        /* Only a failed probe lengthens the interval: the failures of
         * requests that were in flight together are one event. */
        if (l->probe || n->probe_gap_us == 0) {
            int64_t gap = n->probe_gap_us ? n->probe_gap_us * 2 : REGISTRY_PROBE_MIN_US;
            n->probe_gap_us = gap > REGISTRY_PROBE_MAX_US ? REGISTRY_PROBE_MAX_US : gap;
            n->probe_at_us = time_mono_us() + n->probe_gap_us;
        }
    }
out:
    pthread_mutex_unlock(&r->lock);
    registry_log(&ev);
}

size_t registry_forget_silent(registry *r, int64_t now_us, int64_t max_silence_us)
{
    char gone[REGISTRY_FORGET_BATCH][REGISTRY_NAME_MAX];
    size_t n = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->count && n < REGISTRY_FORGET_BATCH;) {
        struct registry_node *node = r->nodes[i];
        if (node->info.healthy || node->info.in_flight > 0 ||
            now_us - node->info.seen_us <= max_silence_us) {
            i++;
            continue;
        }
        memcpy(gone[n++], node->info.name, REGISTRY_NAME_MAX);
        free(node);
        /* Keep announce order for the listing. */
        memmove(&r->nodes[i], &r->nodes[i + 1], (r->count - i - 1) * sizeof *r->nodes);
        r->count--;
    }
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < n; i++)
        log_info("node %s forgotten: unhealthy and silent for over %.0f s", gone[i],
                 (double)max_silence_us / 1e6);
    return n;
}

size_t registry_count(registry *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->count;
    pthread_mutex_unlock(&r->lock);
    return n;
}

size_t registry_healthy(registry *r)
{
    size_t h = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->count; i++)
        h += r->nodes[i]->info.healthy ? 1 : 0;
    pthread_mutex_unlock(&r->lock);
    return h;
}

int registry_snapshot(registry *r, registry_node_info **out, size_t *n)
{
    pthread_mutex_lock(&r->lock);
    size_t count = r->count;
    registry_node_info *copy = NULL;
    if (count) {
        copy = calloc(count, sizeof *copy);
        if (!copy) {
            pthread_mutex_unlock(&r->lock);
            return -ENOMEM;
        }
        for (size_t i = 0; i < count; i++)
            copy[i] = r->nodes[i]->info;
    }
    pthread_mutex_unlock(&r->lock);
    *out = copy;
    *n = count;
    return 0;
}
