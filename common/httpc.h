/* httpc: one blocking HTTP request with libcurl, for the client and for
 * the few server threads that may wait on the network (announcing to a
 * master). Request and response bodies are JSON text.
 *
 * curl_global_init must have run before the first call (the callers' main
 * or start-up code does it). Any thread may call httpc_request; each call
 * uses its own curl handle. */
#ifndef TS_HTTPC_H
#define TS_HTTPC_H

#include <stdatomic.h>
#include <stddef.h>

#include "buf.h"

/* Largest response body kept; a longer one fails the request. */
#define HTTPC_MAX_RESPONSE (16 * 1024 * 1024)

/* Where a response body goes as it arrives: appended to b, which may hold
 * at most max bytes in all. */
typedef struct httpc_sink {
    buf *b;
    size_t max;
} httpc_sink;

/* libcurl write callback (CURLOPT_WRITEFUNCTION) for an httpc_sink given
 * as CURLOPT_WRITEDATA; any thread, one transfer per sink. Returns the
 * bytes taken, or 0 when they would take the body past sink->max or
 * memory runs out, which makes curl fail the transfer with
 * CURLE_WRITE_ERROR (what b holds then is a cut body). */
size_t httpc_sink_write(char *data, size_t size, size_t n, void *sink);

/* Sends METHOD url with `body` (NULL: none; otherwise sent as
 * application/json) and appends the response body to resp. token: NULL,
 * or sent as "Authorization: Bearer TOKEN".
 * timeout: whole request, seconds (> 0). cancel: NULL, or a flag checked
 * during the transfer; once non-zero the request stops early.
 * Returns the HTTP status (>= 100), or -1 when no response was received
 * (refused, timed out, cancelled, bad URL, ...), with the reason in err. */
int httpc_request(const char *method, const char *url, const char *body, const char *token,
                  double timeout, const atomic_int *cancel, buf *resp, char *err, size_t errsz);

#endif
