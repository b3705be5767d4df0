/* dispatch: sends ready operations to free nodes and collects the results.
 *
 * One thread drives every request at once with curl's multi interface:
 * while an operation is ready (jobs.h) and a healthy node has a free slot
 * (registry.h), it POSTs the operation to NODE_URL/compute; answers feed
 * the results back into the jobs, which makes the next operations ready.
 * Independent operations therefore run at the same time on different
 * nodes, and a job takes as long as its deepest chain of operations.
 *
 * Failures: a node that refuses, times out, answers 5xx or answers
 * something that is not a result is marked unhealthy and the operation goes
 * back to the head of the queue for another node; after max_attempts such
 * failures the job fails. A 400 answer with an "error" (division by zero)
 * is the job's error: the node did its work. Unhealthy nodes are probed
 * with a 0 + 0 until they answer. With no healthy node, operations wait.
 *
 * HTTP handlers never wait on this thread: they add work to the jobs or
 * the registry and call dispatch_wake. */
#ifndef TS_DISPATCH_H
#define TS_DISPATCH_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "jobs.h"
#include "registry.h"

typedef struct dispatch_config {
    double op_timeout;   /* seconds per request, > 0 */
    int max_attempts;    /* node failures an operation survives, >= 1 */
    int compute_local;   /* compute in this process while no node is registered */
    double forget_after; /* seconds an unhealthy node may stay silent; 0: forever */
    const char *token;   /* bearer token sent to nodes, or NULL */
} dispatch_config;

struct dispatch_xfer;

typedef struct dispatch {
    dispatch_config cfg;
    jobs *jobs;    /* borrowed */
    registry *reg; /* borrowed */
    CURLM *multi;  /* the thread's; any thread may call curl_multi_wakeup */
    struct curl_slist *headers;
    struct dispatch_xfer *xfers; /* requests in flight; dispatcher thread only */
    int64_t forget_check_us;     /* next look for silent nodes; dispatcher thread only */
    pthread_t thread;
    atomic_int stop;
} dispatch;

/* Starts the dispatcher thread. curl_global_init must have been called.
 * Returns 0 or -errno (then nothing runs and nothing needs stopping). */
int dispatch_start(dispatch *d, const dispatch_config *cfg, jobs *j, registry *r);

/* Tells the dispatcher that work or nodes may have appeared. Never blocks;
 * callable from any thread until dispatch_stop. */
void dispatch_wake(dispatch *d);

/* Stops the thread, abandons the requests in flight (their leases are
 * returned unused) and frees d. Nobody may call dispatch_wake any more. */
void dispatch_stop(dispatch *d);

#endif
