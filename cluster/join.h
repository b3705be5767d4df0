/* join: makes this node a worker of a master by announcing it.
 *
 * A thread POSTs {"worker_name", "url" or "port", "slots"} to MASTER/worker
 * until the master answers (the master may start later: retries back off
 * from 0.25 s to 5 s), then again every `interval` seconds so that a
 * restarted master learns its workers again. */
#ifndef TS_JOIN_H
#define TS_JOIN_H

#include <pthread.h>
#include <stdatomic.h>

typedef struct join_config {
    const char *master; /* base URL, "http://HOST:PORT" */
    const char *name;
    const char *url; /* URL to be called back on, or NULL: the master uses
                        the source address of the announce and `port` */
    int port;
    int slots;
    double interval;   /* seconds between announces once accepted */
    const char *token; /* bearer token for the master, or NULL */
} join_config;

typedef struct join {
    char *announce_url; /* owned: MASTER/worker */
    char *body;         /* owned: the announce */
    char *token;        /* owned: bearer token, or NULL */
    double interval;
    pthread_t thread;
    pthread_mutex_t lock; /* protects stop; cond waits on it */
    pthread_cond_t cond;
    int stop;
    atomic_int cancel; /* aborts an announce in progress */
} join;

/* Starts announcing (strings of cfg are copied). curl_global_init must
 * have been called. Returns 0 or -errno (then nothing runs). */
int join_start(join *j, const join_config *cfg);

/* Stops the thread (an announce in progress is aborted) and frees j. */
void join_stop(join *j);

#endif
