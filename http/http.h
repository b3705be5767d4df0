/* http: the small layer between civetweb and the API handlers.
 *
 * Every response is written with one mg_write (status line, headers and
 * body together): civetweb with separate writes stalls keep-alive clients
 * on Nagle's algorithm. Every error is a JSON object with an "error". */
#ifndef TS_HTTP_H
#define TS_HTTP_H

#include <civetweb.h>
#include <stddef.h>

#include "buf.h"
#include "membudget.h"

/* Reservations of up to this many bytes are not counted, so that the
 * small bodies of status queries, calculations and cluster requests are
 * never refused while big programs fill the budget. Each HTTP thread
 * reads one body at a time: the threads bound what this lets through. */
#define HTTP_BODY_UNCOUNTED 16384

/* A request body and its share of a memory budget. */
typedef struct http_body {
    buf b;
    membudget *budget; /* NULL: not counted */
    size_t held;       /* bytes reserved in budget for b and its parsing */
    size_t need;       /* what they cost, counted or not (for messages) */
} http_body;

#define HTTP_BODY_INIT(budget)                                                                     \
    {                                                                                              \
        BUF_INIT, (budget), 0, 0                                                                   \
    }

/* Sets how long http_read_body waits for a body: `seconds`, plus one
 * second for every `min_rate` bytes received (0: no extension), so that a
 * client trickling a body cannot hold a connection thread for long while a
 * big upload at a modest rate still gets through. Call once, before the
 * HTTP server starts (the values are read without a lock). The limit is
 * enforced within a read only while bodywatch runs (bodywatch_start). */
void http_set_body_limits(double seconds, size_t min_rate);

/* Reads the whole request body into body->b (Content-Length, chunked or
 * none), answering "Expect: 100-continue" first. Every body is JSON that
 * a handler parses and may decode, so it holds three times its size in
 * body->budget: reserved before the first byte is read (for a chunked
 * body, as it grows), then set to twice its size (the body; what a
 * handler derives, such as a decoded program) plus membudget_json_cost
 * (cJSON's tree) once it is in. Returns 0; -EFBIG if the body is larger
 * than max, -ENOBUFS if the budget cannot hold it now, -E2BIG if it never
 * can (for these three the rest is not read); -ENOMEM; -EIO if the client
 * went away; or -ETIMEDOUT when the body did not arrive in the time
 * http_set_body_limits allows: then the answer (408, connection closed)
 * has been sent already and the caller sends nothing more. In every case
 * body holds what it reserved until http_body_destroy. */
int http_read_body(struct mg_connection *c, size_t max, http_body *body);

/* http_read_body, answering its failures itself: 413 for a body over max
 * (connection closed, the rest unread), http_send_over_budget with
 * reject_status (429 or 403) when body->budget refuses it now, 413 when it
 * never can, 503 when out of memory; nothing more for a client gone or a
 * body late (408 sent already). Returns 0 with the body in body->b, or
 * the status answered (> 0, civetweb's handler return value): the caller
 * returns it after http_body_destroy. */
int http_read_body_or_answer(struct mg_connection *c, size_t max, int reject_status,
                             http_body *body);

/* Frees the bytes of body and releases its reservation. */
void http_body_destroy(http_body *body);

/* Answers a request that budget refused with rc: -ENOBUFS with `status`
 * (429, which adds Retry-After: 1, or 403) and a sentence saying how full
 * budget is; -E2BIG with 413, saying that its `need` bytes would never
 * fit. `close` asks the client to close the connection, for a body left
 * unread. Returns the status sent. */
int http_send_over_budget(struct mg_connection *c, int rc, int status, membudget *budget,
                          size_t need, int close);

/* The descriptor of the connection's socket, or -1 if not found. civetweb
 * 1.15 has no accessor for it, so it is found by its two endpoints (which
 * name a TCP connection uniquely) among the process's descriptors: about
 * half a millisecond with a thousand of them open, for the rare cases
 * that must act on the socket itself. The caller must be the connection's
 * thread, or keep it from closing the connection meanwhile. */
int http_socket_fd(const struct mg_request_info *ri);

/* Sends a response with a JSON body. extra_headers is NULL or lines each
 * ending in "\r\n". Returns the status (civetweb's handler return value). */
int http_send_json(struct mg_connection *c, int status, const char *extra_headers, const char *body,
                   size_t len);

/* Sends {"error": MESSAGE} (plus the fields in extra_json, a string like
 * "\"status\":\"NOTEXIST\"" or NULL). Returns status. */
int http_send_error(struct mg_connection *c, int status, const char *extra_headers,
                    const char *extra_json, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Whether the request's method is `want`; if not, answers 405 with an
 * Allow header naming it. Returns 1 (go on) or 0 (answered: the handler
 * returns 405). */
int http_method_is(struct mg_connection *c, const char *want);

/* Refuses a request whose length is in doubt, before anything reads its
 * body: more than one Content-Length, one that is not a plain decimal
 * number, a Transfer-Encoding other than a single "chunked", both headers
 * together, or MG_MAX_HEADERS header lines (civetweb ignores the lines past
 * that many, where a proxy in front still sees them). A proxy that reads
 * such a request another way than civetweb would hand the rest of the body
 * to us as a request of its own. Answers 400 with a JSON error and closes
 * the connection; returns 400, or 0 if the request may go on. Meant for
 * civetweb's begin_request hook, which every request passes. */
int http_check_framing(struct mg_connection *c);

/* civetweb's http_error callback: answers the errors civetweb finds itself
 * (a malformed request line, a Transfer-Encoding it does not know, ...)
 * with a JSON error, the framing sentence of http_check_framing where that
 * applies, and closes the connection. Returns 0 (answered), or 1 to leave
 * a status below 400 to civetweb. */
int http_error_json(struct mg_connection *c, int status, const char *msg);

/* Copies query parameter `name` (URL-decoded) into out. Returns its length,
 * -ENOENT if absent, or -ENAMETOOLONG if it does not fit. */
int http_query(const struct mg_connection *c, const char *name, char *out, size_t size);

/* Reason phrase for a status code. */
const char *http_reason(int status);

#endif
