/* gather_sup: supervise a set of streaming worker processes and collect
 * the numbers they send until a target count is reached.
 *
 * Each worker slot i (1..workers) runs `PATH -workerId i -port P [extra]`
 * through the runner library (own session and process group, tracked by a
 * pidfd) and has exactly one HTTP stream open to it at a time. A slot whose
 * process crashes, exits, stalls, never becomes ready or keeps failing is
 * killed and started again with the same id on a fresh port; a stream that
 * simply ends is requested again. Everything runs in one thread around
 * curl_multi_poll, which also watches the pidfds, the workers' output pipes
 * and an optional cancel fd, so an event is handled the moment it occurs.
 *
 * Not thread-safe: one gsup_run at a time per process (it relies on
 * curl_global_init having been called by the caller). */
#ifndef TS_GATHER_SUP_H
#define TS_GATHER_SUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct gsup_config {
    const char *worker_path; /* program to start */
    char *const *extra_args; /* appended after -workerId/-port; may be NULL */
    size_t n_extra_args;
    int workers;        /* parallel worker slots, >= 1 */
    size_t samples;     /* target number of samples, >= 1 */
    int base_port;      /* first port tried */
    int per_request;    /* n of each GET /rnd?n= */
    int64_t stall_us;   /* no byte for this long on a stream: replace */
    int64_t ready_us;   /* no successful response this long after spawn: replace */
    int64_t timeout_us; /* give up after this long; 0: never */
    int cancel_fd;      /* -1, or an fd that becomes readable to stop */
} gsup_config;

typedef struct gsup_worker_stats {
    int id;
    int port;           /* port of the last process started for this id */
    uint64_t numbers;   /* values received from this id, all processes */
    uint64_t malformed; /* malformed lines received */
    unsigned restarts;  /* processes started after the first one */
    unsigned requests;  /* GET /rnd requests sent */
    int gave_up;        /* the slot was abandoned after repeated start failures */
} gsup_worker_stats;

typedef struct gsup_result {
    int64_t *samples; /* owned: the first n_samples values, in arrival order */
    size_t n_samples;
    uint64_t numbers;           /* all values received, also those after the target */
    uint64_t malformed;         /* malformed lines, all workers */
    uint64_t dropped;           /* unfinished lines lost to cut streams */
    unsigned restarts;          /* sum over workers */
    int64_t elapsed_us;         /* start to target reached (or to the stop) */
    int64_t first_sample_us;    /* start to first value; -1 if none */
    int reached;                /* n_samples == target */
    int cancelled;              /* stopped because cancel_fd became readable */
    int timed_out;              /* stopped by timeout_us */
    char error[256];            /* why it failed, when !reached && !cancelled */
    gsup_worker_stats *workers; /* owned, one per slot */
    size_t n_workers;
} gsup_result;

/* Runs the collection to its end and stops every process it started before
 * returning (SIGTERM to each process group, SIGKILL after a short grace,
 * all reaped). Returns 0 when the run took place (see r->reached,
 * r->cancelled, r->timed_out, r->error), or -errno when it could not start
 * at all (EINVAL config, ENOMEM, or the worker program cannot be executed:
 * then r->error says why). r must be released with gsup_result_destroy in
 * every case. */
int gsup_run(const gsup_config *c, gsup_result *r);

/* Frees what r owns and zeroes it. */
void gsup_result_destroy(gsup_result *r);

#endif
