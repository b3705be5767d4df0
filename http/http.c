/* http: see http.h. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bodywatch.h"
#include "jsonw.h"
#include "log.h"
#include "timefmt.h"

/* Set once by http_set_body_limits before any connection thread runs. */
static double body_seconds = 10;
static size_t body_min_rate = 16384;

/* Largest growth of a body of unknown length: a 4 KiB start doubled
 * eleven times. */
#define HTTP_BODY_STEP (8u << 20)

const char *http_reason(int status)
{
    /* clang-format off */
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
    }
    /* clang-format on */
}

/* Sets body's reservation to `cost` bytes, less what is not counted.
 * Returns 0, -ENOBUFS or -E2BIG. */
static int body_hold(http_body *body, size_t cost)
{
    body->need = cost;
    size_t want = cost > HTTP_BODY_UNCOUNTED ? cost - HTTP_BODY_UNCOUNTED : 0;
    return membudget_adjust(body->budget, &body->held, want);
}

/* Three times n: the bytes, a copy in cJSON's tree, what a handler derives. */
static size_t body_cost(size_t n)
{
    return n > SIZE_MAX / 3 ? SIZE_MAX : 3 * n;
}

void http_set_body_limits(double seconds, size_t min_rate)
{
    body_seconds = seconds;
    body_min_rate = min_rate;
}

/* Answers 408 for a body still incomplete after `since` and returns
 * -ETIMEDOUT. */
static int body_late(struct mg_connection *c, int64_t since, size_t got, long long expected)
{
    char of[48] = "";
    if (expected >= 0)
        snprintf(of, sizeof of, " of %lld", expected);
    http_send_error(c, 408, "Connection: close\r\n", NULL,
                    "request body not received in time: %zu%s bytes in %.1f s", got, of,
                    (double)(time_mono_us() - since) / 1e6);
    return -ETIMEDOUT;
}

/* The body's deadline once `got` bytes have come. */
static int64_t body_deadline(int64_t start, size_t got)
{
    double s = body_seconds + (body_min_rate ? (double)(got / body_min_rate) : 0);
    return start + (int64_t)(s * 1e6);
}

/* Reads the body (of `length` bytes, or -1: chunked) into body->b under
 * the watch e, `limit` bytes reserved so far. Returns 0, -EFBIG, -ENOBUFS,
 * -E2BIG, -ENOMEM, -EIO, or -ETIMEDOUT (not answered yet). */
static int read_watched(struct mg_connection *c, long long length, size_t max, http_body *body,
                        size_t limit, int64_t start, bodywatch_entry *e)
{
    buf *b = &body->b;
    for (;;) {
        if (b->len >= limit) {
            if (length >= 0)
                return 0; /* civetweb reads no further than the declared length */
            size_t step = limit < HTTP_BODY_STEP ? limit : HTTP_BODY_STEP;
            /* One byte past max is room enough to see that it is too big. */
            limit = limit > max + 1 - step ? max + 1 : limit + step;
            int rc = body_hold(body, body_cost(limit));
            if (rc < 0)
                return rc;
        }
        int64_t deadline = body_deadline(start, b->len), left = deadline - time_mono_us();
        if (left <= 0 || bodywatch_extend(e, deadline) < 0)
            return -ETIMEDOUT;
        if (buf_reserve(b, limit - b->len) < 0)
            return -ENOMEM;
        /* civetweb's read ends when all that is asked for has come: ask for
         * no more than the minimum rate brings before the deadline, so that
         * a client keeping that rate is never cut off mid-read (the
         * deadline moves on with every read), while the watch ends a read
         * that stays short. */
        size_t want = limit - b->len;
        if (body_min_rate) {
            double by_rate = (double)body_min_rate * (double)left / 1e6;
            if (by_rate < (double)want)
                want = by_rate < 1 ? 1 : (size_t)by_rate;
        }
        int n = mg_read(c, b->data + b->len, want);
        if (n < 0)
            return bodywatch_extend(e, deadline) < 0 ? -ETIMEDOUT : -EIO;
        /* With a length, a read returns 0 before the end only when the
         * client sent nothing for request_timeout_ms, or when the watch
         * shut the socket: late either way, not complete. */
        if (n == 0 && length > 0 && b->len < (size_t)length)
            return -ETIMEDOUT;
        if (n == 0)
            return bodywatch_extend(e, deadline) < 0 ? -ETIMEDOUT : 0;
        b->len += (size_t)n;
        b->data[b->len] = '\0';
        if (b->len > max)
            return -EFBIG;
    }
}

int http_read_body(struct mg_connection *c, size_t max, http_body *body)
{
    buf *b = &body->b;
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (ri->content_length > 0 && (unsigned long long)ri->content_length > max)
        return -EFBIG;
    /* A declared length is reserved whole, before the client is told to
     * send it; otherwise room grows by doubling, then by HTTP_BODY_STEP so
     * that a reservation runs little ahead of the body, each step
     * reserved. */
    size_t declared = ri->content_length >= 0 ? (size_t)ri->content_length : 0;
    size_t limit = ri->content_length >= 0 ? declared : 4096;
    int rc = body_hold(body, body_cost(limit));
    if (rc < 0)
        return rc;
    const char *expect = mg_get_header(c, "Expect");
    if (expect && strcasecmp(expect, "100-continue") == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        mg_write(c, cont, sizeof cont - 1);
    }
    int64_t start = time_mono_us();
    bodywatch_entry e;
    bodywatch_enter(&e, ri, body_deadline(start, 0));
    rc = read_watched(c, ri->content_length, max, body, limit, start, &e);
    /* Fired just as the body completed: it is served all the same, and
     * civetweb closes the connection after, finding nothing more to read. */
    bodywatch_leave(&e);
    if (rc == -ETIMEDOUT)
        return body_late(c, start, b->len, ri->content_length);
    if (rc < 0)
        return rc;
    size_t parse = membudget_json_cost(b->data ? b->data : "", b->len);
    return body_hold(body, parse > SIZE_MAX - 2 * b->len ? SIZE_MAX : 2 * b->len + parse);
}

int http_read_body_or_answer(struct mg_connection *c, size_t max, int reject_status,
                             http_body *body)
{
    int rc = http_read_body(c, max, body);
    if (rc == 0)
        return 0;
    if (rc == -EFBIG)
        return http_send_error(c, 413, "Connection: close\r\n", NULL,
                               "request body is larger than the limit of %zu bytes", max);
    if (rc == -ENOBUFS || rc == -E2BIG) {
        log_info("request body refused: memory budget (--max-queue-bytes) exhausted");
        return http_send_over_budget(c, rc, reject_status, body->budget, body->need, 1);
    }
    if (rc == -ENOMEM)
        return http_send_error(c, 503, NULL, NULL, "out of memory reading the request body");
    return rc == -ETIMEDOUT ? 408 : 400; /* answered 408, or the client is gone */
}

/* One more than the highest descriptor the process may have open now: the
 * size of its descriptor table (FDSize in /proc/self/status), else the
 * open-file limit. */
static int fd_table_size(void)
{
    char text[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC), size = 0;
    if (fd >= 0) {
        ssize_t n = read(fd, text, sizeof text - 1);
        close(fd);
        text[n > 0 ? n : 0] = '\0';
        const char *p = strstr(text, "\nFDSize:");
        if (p)
            size = atoi(p + 8);
    }
    struct rlimit rl;
    if (size <= 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0)
        size = rl.rlim_cur > 65536 ? 65536 : (int)rl.rlim_cur;
    return size;
}

/* Whether fd is the TCP socket from peer_addr:port to local port lport. */
static int socket_is(int fd, uint32_t peer_addr, unsigned port, unsigned lport)
{
    struct sockaddr_in peer, self;
    socklen_t pl = sizeof peer, sl = sizeof self;
    return getpeername(fd, (struct sockaddr *)&peer, &pl) == 0 && peer.sin_family == AF_INET &&
           peer.sin_addr.s_addr == peer_addr && ntohs(peer.sin_port) == port &&
           getsockname(fd, (struct sockaddr *)&self, &sl) == 0 && ntohs(self.sin_port) == lport;
}

int http_socket_fd(const struct mg_request_info *ri)
{
    /* Where the last search ended. A new socket takes the lowest free
     * number, often one a connection just closed, so under a flood of
     * refused connections the next one is mostly found near there. */
    static _Atomic int hint = 3;
    struct in_addr peer_addr;
    if (inet_pton(AF_INET, ri->remote_addr, &peer_addr) != 1)
        return -1;
    unsigned port = (unsigned)ri->remote_port, lport = (unsigned)ri->server_port;
    /* Every descriptor number is tried rather than /proc/self/fd listed:
     * with ~1 100 open, 0.5 ms against 2.8 ms (measured), the listing's
     * directory entries costing more than the sockets' lookups. */
    int top = fd_table_size(), from = atomic_load(&hint);
    if (from < 3 || from >= top)
        from = 3;
    for (int i = 0; i < top - 3; i++) {
        int fd = from + i < top ? from + i : from + i - top + 3;
        if (socket_is(fd, peer_addr.s_addr, port, lport)) {
            atomic_store(&hint, fd);
            return fd;
        }
    }
    return -1;
}

void http_body_destroy(http_body *body)
{
    buf_destroy(&body->b);
    membudget_release(body->budget, body->held);
    body->held = 0;
}

int http_send_over_budget(struct mg_connection *c, int rc, int status, membudget *budget,
                          size_t need, int close)
{
    const char *bye = close ? "Connection: close\r\n" : "";
    char hdrs[64], why[200];
    if (rc == -E2BIG) {
        snprintf(hdrs, sizeof hdrs, "%s", bye);
        return http_send_error(c, 413, hdrs, NULL,
                               "request needs %zu bytes of memory, more than the %zu bytes of "
                               "--max-queue-bytes (a body takes three times its size while it "
                               "is read and parsed, more if it holds many small JSON values)",
                               need, membudget_max(budget));
    }
    snprintf(hdrs, sizeof hdrs, "%s%s", status == 429 ? "Retry-After: 1\r\n" : "", bye);
    return http_send_error(c, status, hdrs, NULL, "server is at capacity: %s; retry later",
                           membudget_describe(budget, why, sizeof why));
}

/* Answers up to this size are put together on the stack, larger ones on
 * the heap: civetweb's connection threads have 100 KiB stacks (Debian's
 * build), and most answers are a few hundred bytes. */
#define HTTP_STACK_REPLY 3072

int http_send_json(struct mg_connection *c, int status, const char *extra_headers, const char *body,
                   size_t len)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "%s\r\n",
                     status, http_reason(status), len, extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof head)
        n = 0;
    if ((size_t)n + len <= HTTP_STACK_REPLY) {
        char small[HTTP_STACK_REPLY];
        memcpy(small, head, (size_t)n);
        memcpy(small + n, body, len);
        mg_write(c, small, (size_t)n + len);
    } else {
        buf out = BUF_INIT;
        buf_append(&out, head, (size_t)n);
        buf_append(&out, body, len);
        if (!buf_failed(&out))
            mg_write(c, out.data, out.len);
        buf_destroy(&out);
    }
    return status;
}

int http_send_error(struct mg_connection *c, int status, const char *extra_headers,
                    const char *extra_json, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    buf b = BUF_INIT;
    buf_puts(&b, "{\"error\":");
    jsonw_cstr(&b, msg);
    if (extra_json) {
        buf_putc(&b, ',');
        buf_puts(&b, extra_json);
    }
    buf_puts(&b, "}\n");
    if (buf_failed(&b))
        http_send_json(c, 500, NULL, "{\"error\":\"out of memory\"}\n", 26);
    else
        http_send_json(c, status, extra_headers, b.data, b.len);
    buf_destroy(&b);
    return status;
}

int http_method_is(struct mg_connection *c, const char *want)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (strcmp(ri->request_method, want) == 0)
        return 1;
    char allow[64];
    snprintf(allow, sizeof allow, "Allow: %s\r\n", want);
    http_send_error(c, 405, allow, NULL, "method %s not allowed on %s; use %s", ri->request_method,
                    ri->local_uri, want);
    return 0;
}

/* Returns why the framing of the request is in doubt (a sentence, in why
 * when it quotes the request), or NULL if it is not. */
static const char *http_framing_problem(const struct mg_request_info *ri, char *why, size_t size)
{
    if (ri->num_headers >= MG_MAX_HEADERS) {
        snprintf(why, size, "too many header lines (at most %d)", MG_MAX_HEADERS - 1);
        return why;
    }
    const char *cl = NULL, *te = NULL;
    int ncl = 0, nte = 0;
    for (int i = 0; i < ri->num_headers; i++) {
        const char *name = ri->http_headers[i].name;
        if (strcasecmp(name, "Content-Length") == 0) {
            cl = ri->http_headers[i].value;
            ncl++;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            te = ri->http_headers[i].value;
            nte++;
        }
    }
    if (ncl > 1)
        return "conflicting request framing: more than one Content-Length header";
    if (nte > 1)
        return "conflicting request framing: more than one Transfer-Encoding header";
    if (cl && te)
        return "conflicting request framing: both Content-Length and Transfer-Encoding";
    if (te && strcasecmp(te, "chunked") != 0) {
        snprintf(why, size, "unsupported Transfer-Encoding '%.40s' (only chunked is accepted)", te);
        return why;
    }
    if (cl) {
        /* Digits then optional blanks (civetweb keeps trailing ones); 18
         * digits at most, so that no reader overflows. */
        size_t n = strspn(cl, "0123456789");
        if (n == 0 || n > 18 || cl[n + strspn(cl + n, " \t")] != '\0') {
            snprintf(why, size, "malformed Content-Length '%.40s'", cl);
            return why;
        }
    }
    return NULL;
}

/* Answers 400 with problem and makes civetweb close the connection. */
static int http_refuse_framing(struct mg_connection *c, const char *problem)
{
    /* civetweb 1.15 does not read the headers of an answer: without this
     * it would skip the body the way it reads it and answer what follows,
     * which is what a smuggled request counts on. */
    mg_disable_connection_keep_alive(c);
    return http_send_error(c, 400, "Connection: close\r\n", NULL, "%s", problem);
}

int http_check_framing(struct mg_connection *c)
{
    char why[128];
    const char *problem = http_framing_problem(mg_get_request_info(c), why, sizeof why);
    return problem ? http_refuse_framing(c, problem) : 0;
}

int http_error_json(struct mg_connection *c, int status, const char *msg)
{
    if (status < 400)
        return 1;
    char why[128];
    const char *problem = http_framing_problem(mg_get_request_info(c), why, sizeof why);
    if (problem) {
        http_refuse_framing(c, problem);
        return 0;
    }
    /* An error civetweb found itself leaves the request half understood:
     * close, as civetweb's own error page does. */
    mg_disable_connection_keep_alive(c);
    http_send_error(c, status, "Connection: close\r\n", NULL, "%s",
                    msg && *msg ? msg : http_reason(status));
    return 0;
}

int http_query(const struct mg_connection *c, const char *name, char *out, size_t size)
{
    const char *qs = mg_get_request_info(c)->query_string;
    if (!qs)
        return -ENOENT;
    int n = mg_get_var(qs, strlen(qs), name, out, size);
    if (n == -1)
        return -ENOENT;
    if (n < 0)
        return -ENAMETOOLONG;
    return n;
}
