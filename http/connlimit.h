/* connlimit: caps the connections one client address holds at once.
 *
 * civetweb 1.15 serves each connection on one of its threads from accept
 * to close, and has no limit per address: one address that opens as many
 * connections as there are threads and sends nothing (or a byte a second)
 * holds them all until each one's header timeout, and everyone else waits.
 * The table counts connections per IPv4 address from civetweb's
 * init_connection callback (run on the thread that took the connection,
 * before anything is read) to its connection_close callback; a connection
 * beyond the limit is answered 429 and shut down at once, so its thread is
 * free again within a millisecond instead of after the header timeout.
 *
 * Behind a reverse proxy every client has the proxy's address: raise the
 * limit to --http-threads there, or turn it off, and let the proxy limit. */
#ifndef TS_CONNLIMIT_H
#define TS_CONNLIMIT_H

#include <civetweb.h>
#include <pthread.h>
#include <stdint.h>

typedef struct connlimit_entry {
    uint32_t addr; /* IPv4, network order */
    int n;         /* connections counted for it, >= 1 */
} connlimit_entry;

typedef struct connlimit {
    int limit;            /* per address; 0: none */
    pthread_mutex_t lock; /* protects entries, used, refused, reported_us */
    connlimit_entry *entries;
    int cap, used;
    long refused;        /* connections refused since the last log line */
    int64_t reported_us; /* monotonic time of that line */
} connlimit;

/* Prepares an empty table for `limit` connections per address (0: no
 * limit; nothing is counted) and at most max_conns counted at once (civetweb's
 * thread count: a counted connection holds a thread). Returns 0 or -ENOMEM. */
int connlimit_init(connlimit *cl, int limit, int max_conns);

/* Frees cl. Call after the HTTP server has stopped. */
void connlimit_destroy(connlimit *cl);

/* Counts one more connection from addr (network order). Returns 0, or
 * -EBUSY when that makes more than the limit: the connection is counted
 * all the same, and connlimit_leave must be called for it like for any
 * other. Takes cl->lock. */
int connlimit_enter(connlimit *cl, uint32_t addr);

/* Counts a connection from addr as closed. Takes cl->lock. */
void connlimit_leave(connlimit *cl, uint32_t addr);

/* Connections counted for addr now. Takes cl->lock. */
int connlimit_count(connlimit *cl, uint32_t addr);

/* Sets cb's init_connection and connection_close callbacks to count
 * connections in cl and refuse those over its limit. Does nothing when
 * the limit is 0. One table per process: civetweb passes these callbacks
 * no pointer of their own (the context's user data is the auth's), so cl
 * is remembered here; it must outlive the HTTP server. */
void connlimit_install(connlimit *cl, struct mg_callbacks *cb);

#endif
