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

/* Reads the whole request body into b (Content-Length, chunked or none),
 * answering "Expect: 100-continue" first. Returns 0, -EFBIG if the body is
 * larger than max (the rest is not read), or -EIO if the client went away. */
int http_read_body(struct mg_connection *c, size_t max, buf *b);

/* Sends a response with a JSON body. extra_headers is NULL or lines each
 * ending in "\r\n". Returns the status (civetweb's handler return value). */
int http_send_json(struct mg_connection *c, int status, const char *extra_headers, const char *body,
                   size_t len);

/* Sends {"error": MESSAGE} (plus the fields in extra_json, a string like
 * "\"status\":\"NOTEXIST\"" or NULL). Returns status. */
int http_send_error(struct mg_connection *c, int status, const char *extra_headers,
                    const char *extra_json, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Copies query parameter `name` (URL-decoded) into out. Returns its length,
 * -ENOENT if absent, or -ENAMETOOLONG if it does not fit. */
int http_query(const struct mg_connection *c, const char *name, char *out, size_t size);

/* Reason phrase for a status code. */
const char *http_reason(int status);

#endif
