/* bodywatch: ends request body reads whose time is up.
 *
 * civetweb 1.15's mg_read returns only once every byte asked for has
 * come, or once the client has sent nothing at all for request_timeout_ms:
 * a client that sends a byte every few seconds keeps one read, and the
 * connection's thread, for as long as it likes, whatever the caller checks
 * between reads (measured: a 40-byte body trickled a byte per 0.5 s held
 * its thread 20 s with a 1 s limit). One thread watches the reads in
 * progress and shuts the receiving side of the socket of each one whose
 * deadline has passed; the read then ends at once and its caller answers
 * 408 on the socket, which can still send.
 *
 * One watch per process: the body reader runs in civetweb's handlers,
 * which get no object of the server's to find it in. */
#ifndef TS_BODYWATCH_H
#define TS_BODYWATCH_H

#include <civetweb.h>
#include <stdint.h>

/* One read in progress. Filled by bodywatch_enter; lives on the reader's
 * stack until bodywatch_leave. */
typedef struct bodywatch_entry {
    const struct mg_request_info *ri; /* its connection's, to find the socket */
    int64_t deadline_us;              /* monotonic; protected by the watch's lock */
    int state;                        /* protected by the watch's lock */
    struct bodywatch_entry *prev, *next;
} bodywatch_entry;

/* Starts the watching thread. Returns 0 or -errno. Without it entries are
 * kept but never fired. */
int bodywatch_start(void);

/* Stops and joins the thread. Call once no read is in progress (after the
 * HTTP server has stopped). */
void bodywatch_stop(void);

/* Puts e on watch for the connection of ri until deadline_us. */
void bodywatch_enter(bodywatch_entry *e, const struct mg_request_info *ri, int64_t deadline_us);

/* Moves e's deadline. Returns 0, or -ETIMEDOUT if e was fired already
 * (its socket no longer receives). */
int bodywatch_extend(bodywatch_entry *e, int64_t deadline_us);

/* Takes e off watch, waiting for a firing in progress to end. Returns 0,
 * or -ETIMEDOUT if e was fired. */
int bodywatch_leave(bodywatch_entry *e);

#endif
