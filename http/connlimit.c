/* connlimit: see connlimit.h. */
#include "connlimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "timefmt.h"

/* One refusal report per interval at most: a flood of refused connections
 * must not become a flood of log lines. */
#define CONNLIMIT_REPORT_US (10 * 1000 * 1000)

int connlimit_init(connlimit *cl, int limit, int max_conns)
{
    memset(cl, 0, sizeof *cl);
    cl->limit = limit;
    if (limit <= 0)
        return 0;
    /* At most one entry per counted connection; a plain array searched
     * linearly: a few thousand comparisons per connection cost about a
     * microsecond, nothing next to the connection's system calls. */
    cl->cap = max_conns > 0 ? max_conns : 1;
    cl->entries = calloc((size_t)cl->cap, sizeof *cl->entries);
    if (!cl->entries)
        return -ENOMEM;
    pthread_mutex_init(&cl->lock, NULL);
    return 0;
}

void connlimit_destroy(connlimit *cl)
{
    if (cl->entries) {
        pthread_mutex_destroy(&cl->lock);
        free(cl->entries);
    }
    cl->entries = NULL;
}

/* Index of addr in cl->entries, or -1. Called with cl->lock held. */
static int entry_find(const connlimit *cl, uint32_t addr)
{
    for (int i = 0; i < cl->used; i++)
        if (cl->entries[i].addr == addr)
            return i;
    return -1;
}

int connlimit_enter(connlimit *cl, uint32_t addr)
{
    if (!cl->entries)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&cl->lock);
    int i = entry_find(cl, addr);
    if (i < 0 && cl->used < cl->cap) {
        i = cl->used++;
        cl->entries[i] = (connlimit_entry){.addr = addr, .n = 0};
    }
    /* A full table cannot happen (one entry per counted connection at
     * most); if it did, the connection would go uncounted and its leave
     * find nothing, which errs on the side of letting clients in. */
    if (i >= 0 && ++cl->entries[i].n > cl->limit) {
        rc = -EBUSY;
        cl->refused++;
    }
    pthread_mutex_unlock(&cl->lock);
    return rc;
}

void connlimit_leave(connlimit *cl, uint32_t addr)
{
    if (!cl->entries)
        return;
    pthread_mutex_lock(&cl->lock);
    int i = entry_find(cl, addr);
    if (i >= 0 && --cl->entries[i].n <= 0)
        cl->entries[i] = cl->entries[--cl->used];
    pthread_mutex_unlock(&cl->lock);
}

int connlimit_count(connlimit *cl, uint32_t addr)
{
    if (!cl->entries)
        return 0;
    pthread_mutex_lock(&cl->lock);
    int i = entry_find(cl, addr);
    int n = i >= 0 ? cl->entries[i].n : 0;
    pthread_mutex_unlock(&cl->lock);
    return n;
}

/* The table whose callbacks are installed (see connlimit_install). */
static connlimit *installed;

/* Where a connection's request info lies within it, learned from the
 * first connection that closes; -1 until then, -2 if it ever differed.
 *
 * civetweb 1.15 calls init_connection before it marks the connection as a
 * request, so mg_get_request_info returns NULL there, although the
 * client's address is already filled in. The request info is a member of
 * the connection (mg_get_request_info returns its address), so its offset
 * is the same for every connection: learnt once where the function
 * answers, and checked again at every close, it gives the address in
 * init_connection too. Until the first connection has closed, nothing is
 * counted. */
static _Atomic ptrdiff_t ri_offset = -1;

/* Marks a counted connection in its user data, so that only those are
 * counted out at close. */
static char counted_mark;

static const struct mg_request_info *early_request_info(const struct mg_connection *conn)
{
    ptrdiff_t off = atomic_load(&ri_offset);
    return off < 0 ? NULL : (const struct mg_request_info *)((const char *)conn + off);
}

/* The client's IPv4 address, network order. Returns 0 or -EINVAL (civetweb
 * is built without IPv6 in Debian, so that is not expected). */
static int remote_addr(const struct mg_request_info *ri, uint32_t *addr)
{
    struct in_addr a;
    if (inet_pton(AF_INET, ri->remote_addr, &a) != 1)
        return -EINVAL;
    *addr = a.s_addr;
    return 0;
}

/* Answers 429 on the connection's socket and shuts it down; civetweb then
 * reads end-of-file at once and closes the connection. */
static void refuse(const struct mg_request_info *ri)
{
    static const char body[] = "{\"error\":\"too many connections from this address; "
                               "close some or retry later\"}\n";
    char resp[512];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 429 Too Many Requests\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n"
                     "Retry-After: 1\r\n\r\n%s",
                     sizeof body - 1, body);
    int fd = http_socket_fd(ri);
    if (fd < 0)
        return; /* not found: the connection is served like any other */
    /* Best effort: the client may not read it before the reset. */
    (void)!send(fd, resp, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_RDWR);
}

/* Whether a refusal report is due; if so, returns how many connections
 * were refused since the last one and starts a new interval. */
static long report_due(connlimit *cl)
{
    int64_t now = time_mono_us();
    long n = 0;
    pthread_mutex_lock(&cl->lock);
    if (cl->refused && (cl->reported_us == 0 || now - cl->reported_us >= CONNLIMIT_REPORT_US)) {
        n = cl->refused;
        cl->refused = 0;
        cl->reported_us = now;
    }
    pthread_mutex_unlock(&cl->lock);
    return n;
}

static int on_init_connection(const struct mg_connection *conn, void **conn_data)
{
    const struct mg_request_info *ri = early_request_info(conn);
    uint32_t addr;
    if (!ri || remote_addr(ri, &addr) < 0)
        return 0;
    *conn_data = &counted_mark;
    if (connlimit_enter(installed, addr) == 0)
        return 0;
    refuse(ri);
    long n = report_due(installed);
    if (n)
        log_warn("refused %ld connections over --max-conns-per-address %d (the latest from %s)", n,
                 installed->limit, ri->remote_addr);
    return 0;
}

static void on_connection_close(const struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (!ri)
        return;
    ptrdiff_t off = (const char *)ri - (const char *)conn, want = -1;
    if (!atomic_compare_exchange_strong(&ri_offset, &want, off) && want != off && want != -2) {
        atomic_store(&ri_offset, -2);
        log_warn("this civetweb keeps request info apart from connections: "
                 "--max-conns-per-address is not enforced");
    }
    uint32_t addr;
    if (mg_get_user_connection_data(conn) == &counted_mark && remote_addr(ri, &addr) == 0)
        connlimit_leave(installed, addr);
}

void connlimit_install(connlimit *cl, struct mg_callbacks *cb)
{
    if (cl->limit <= 0)
        return;
    installed = cl;
    cb->init_connection = on_init_connection;
    cb->connection_close = on_connection_close;
}
