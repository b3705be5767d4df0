/* registry: the nodes a master can send work to.
 *
 * A node is a name, the base URL the master calls it on, its health and
 * how many requests it takes at once (slots). The registry knows nothing of
 * what the work is: the dispatcher leases a free slot of a healthy node,
 * does one request without holding any lock, and returns the lease with
 * the outcome. One that stops answering is marked unhealthy, gets no work,
 * and is probed with growing intervals (1 s doubling to 30 s) until it
 * answers or announces itself again; one that stays silent long enough
 * (a worker scaled away) is forgotten (registry_forget_silent).
 *
 * Locking: `lock` protects every field of the registry and of its nodes.
 * It is a leaf lock: nothing else is locked while it is held, and no I/O
 * happens under it. */
#ifndef TS_REGISTRY_H
#define TS_REGISTRY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define REGISTRY_NAME_MAX 128 /* bytes of a name, NUL included */
#define REGISTRY_URL_MAX 512  /* bytes of a URL, NUL included */
#define REGISTRY_ERR_MAX 160
#define REGISTRY_MAX_NODES 4096
#define REGISTRY_MAX_SLOTS 1024

/* A copy of one node's state, for listings. */
typedef struct registry_node_info {
    uint64_t id; /* stable for the life of the registry */
    char name[REGISTRY_NAME_MAX];
    char url[REGISTRY_URL_MAX];
    int healthy;
    int slots;
    int in_flight;
    long done;                         /* requests it answered (probes excluded) */
    long failures;                     /* requests that failed on it */
    int64_t registered_us;             /* wall clock of the first announce */
    int64_t seen_us;                   /* wall clock of its last announce or answer; 0: never */
    char last_error[REGISTRY_ERR_MAX]; /* why it was last marked unhealthy; "" */
} registry_node_info;

struct registry_node;

typedef struct registry {
    pthread_mutex_t lock;         /* protects everything below */
    struct registry_node **nodes; /* owned, in announce order */
    size_t count;
    size_t cap;
    uint64_t next_id;
    uint64_t ticket; /* increases with every lease; spreads work round robin */
} registry;

/* A slot of a node, held by one request. The URL is a copy, usable without
 * the lock. */
typedef struct registry_lease {
    uint64_t node_id;
    int probe; /* non-zero: a health probe, not counted as work */
    char name[REGISTRY_NAME_MAX];
    char url[REGISTRY_URL_MAX];
} registry_lease;

enum registry_outcome {
    REGISTRY_ANSWERED, /* the node answered the request (counts as done) */
    REGISTRY_FAILED,   /* refused, timed out, 5xx, garbage: marks it unhealthy */
    REGISTRY_UNUSED,   /* the lease was not used */
};

/* Returns 0 or -errno (then nothing needs destroying). */
int registry_init(registry *r);

/* Frees every node. No lease may be outstanding. */
void registry_destroy(registry *r);

/* Adds the node `name` or, if known, updates its URL and slots. Either way
 * it becomes healthy and seen now. name is 1..REGISTRY_NAME_MAX-1 bytes,
 * url shorter than REGISTRY_URL_MAX, 1 <= slots <= REGISTRY_MAX_SLOTS
 * (checked by the caller: -EINVAL otherwise). Returns 1 for a new node,
 * 0 for a known one, -EINVAL, -ENOSPC beyond REGISTRY_MAX_NODES nodes or
 * -ENOMEM; on error nothing is changed. */
int registry_announce(registry *r, const char *name, const char *url, int slots);

/* Leases a free slot of a healthy node: the one with the fewest requests
 * in flight, the least recently leased on ties. Returns 0 and fills *out,
 * or -EAGAIN when no healthy node has a free slot. */
int registry_acquire(registry *r, registry_lease *out);

/* Leases an unhealthy node whose next probe is due at now_mono_us (at most
 * one probe per node at a time). Returns 0 and fills *out (out->probe is
 * set) or -EAGAIN. */
int registry_probe_due(registry *r, int64_t now_mono_us, registry_lease *out);

/* Returns a lease. REGISTRY_ANSWERED makes the node healthy and seen (and
 * counts one done request unless it was a probe); REGISTRY_FAILED counts a
 * failure, marks it unhealthy with `error` (may be NULL) and schedules its
 * next probe. A lease of a node that no longer exists is ignored. */
void registry_release(registry *r, const registry_lease *l, enum registry_outcome o,
                      const char *error);

/* Removes nodes that are unhealthy, have nothing in flight and were last
 * seen (announce or answer) more than max_silence_us before now_us (wall
 * clock). At most REGISTRY_FORGET_BATCH per call, each logged. Returns how
 * many were removed. */
#define REGISTRY_FORGET_BATCH 16
size_t registry_forget_silent(registry *r, int64_t now_us, int64_t max_silence_us);

/* Number of nodes known / currently healthy. */
size_t registry_count(registry *r);
size_t registry_healthy(registry *r);

/* Copies the state of every node, in announce order, into a new array
 * (caller frees it with free()). Returns 0 (with *out NULL when *n is 0)
 * or -ENOMEM (then *out and *n are unchanged). */
int registry_snapshot(registry *r, registry_node_info **out, size_t *n);

#endif
