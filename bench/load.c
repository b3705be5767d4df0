/* bench_load: the load driver for the task throughput and memory
 * benchmarks. C keep-alive connections each loop over
 *   POST /create_task (a bin task: FILE, base64; -t python: a python one)
 *   -> GET /get_status?id=&wait=
 * until the task is SUCCESS, then start the next one; with -1, one exchange
 * a task, POST /create_task?wait= (which answers the status once the task
 * has ended), polling only if the wait ran out. One thread, epoll and
 * hand-written HTTP/1.1, so that the driver costs little CPU next to the
 * server on the same machine.
 *
 *   bench_load [-1] [-c CONNS] [-d SECONDS | -n TASKS] [-w WAIT] [-t TYPE] HOST PORT FILE
 *
 * With -d, counts the tasks seen SUCCESS within SECONDS (tasks still in
 * flight at the end are waited for, not counted). With -n, runs exactly
 * TASKS tasks. Prints one line:
 *   "load tasks=N seconds=S per_s=R errors=E p50_ms=A p99_ms=B done=D self_us=U"
 * where D counts also the tasks waited for after SECONDS and U is this
 * process's CPU time (user + system) per done task.
 * and exits 1 if any request failed or any task did not succeed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RBUF 65536

enum phase { CREATING, POLLING };

typedef struct conn {
    int fd;
    enum phase phase;
    double t_start; /* when the current task's create was sent */
    char id[64];
    char rbuf[RBUF];
    size_t rlen;
} conn;

static char *create_req;
static size_t create_len;
static const char *host;
static const char *task_type = "bin";
static int wait_s = 30;
static int one_exchange;
static int errors;
static double *lat;
static long nlat, caplat;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *b64(const unsigned char *in, size_t n, size_t *out_len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        *o++ = tab[(v >> 18) & 63];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    *out_len = (size_t)(o - out);
    return out;
}

static int build_create(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    static unsigned char data[1 << 20];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    size_t elen;
    char *enc = b64(data, n, &elen);
    if (!enc)
        return -1;
    char *body;
    int blen = asprintf(&body, "{\"type\":\"%s\",\"file\":\"%s\"}", task_type, enc);
    free(enc);
    if (blen < 0)
        return -1;
    char wait_q[32];
    snprintf(wait_q, sizeof wait_q, "?wait=%d", wait_s);
    int len = asprintf(&create_req,
                       "POST /create_task%s HTTP/1.1\r\nHost: %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                       one_exchange ? wait_q : "", host, blen, body);
    free(body);
    if (len < 0)
        return -1;
    create_len = (size_t)len;
    return 0;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {fd, POLLOUT, 0};
            poll(&pf, 1, 1000);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_create(conn *c)
{
    c->phase = CREATING;
    c->t_start = now_s();
    return send_all(c->fd, create_req, create_len);
}

static int send_status(conn *c)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET /get_status?id=%s&wait=%d HTTP/1.1\r\nHost: %s\r\n\r\n",
                     c->id, wait_s, host);
    c->phase = POLLING;
    return send_all(c->fd, req, (size_t)n);
}

/* Finds a complete response in c->rbuf. Returns its total length and sets
 * *status and *body, 0 if incomplete, -1 if malformed. */
static long parse_response(conn *c, int *status, const char **body, size_t *blen)
{
    c->rbuf[c->rlen] = '\0';
    char *end = strstr(c->rbuf, "\r\n\r\n");
    if (!end)
        return 0;
    if (sscanf(c->rbuf, "HTTP/1.%*d %d", status) != 1)
        return -1;
    long clen = -1;
    for (char *h = strstr(c->rbuf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n")) {
        if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
            clen = strtol(h + 17, NULL, 10);
    }
    if (clen < 0)
        return -1;
    size_t hlen = (size_t)(end + 4 - c->rbuf);
    if (c->rlen < hlen + (size_t)clen)
        return 0;
    *body = end + 4;
    *blen = (size_t)clen;
    return (long)(hlen + (size_t)clen);
}

static int open_conn(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int nconn = 8;
    double seconds = 0;
    long ntasks = 0;
    int opt;
    while ((opt = getopt(argc, argv, "1c:d:n:w:t:")) != -1) {
        switch (opt) {
        case '1':
            one_exchange = 1;
            break;
        case 'c':
            nconn = atoi(optarg);
            break;
        case 'd':
            seconds = atof(optarg);
            break;
        case 'n':
            ntasks = atol(optarg);
            break;
        case 'w':
            wait_s = atoi(optarg);
            break;
        case 't':
            task_type = optarg;
            break;
        default:
            goto usage;
        }
    }
    if (optind != argc - 3 || nconn < 1 || (seconds > 0) == (ntasks > 0))
        goto usage;
    host = argv[optind];
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(argv[optind + 1]))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bench_load: %s is not an IPv4 address\n", host);
        return 2;
    }
    if (build_create(argv[optind + 2]) < 0)
        return 1;

    int ep = epoll_create1(EPOLL_CLOEXEC);
    conn *conns = calloc((size_t)nconn, sizeof *conns);
    caplat = 1 << 16;
    lat = malloc((size_t)caplat * sizeof *lat);
    if (ep < 0 || !conns || !lat)
        return 1;
    long started = 0, done = 0, counted = 0;
    double t0 = now_s(), stop = seconds > 0 ? t0 + seconds : 0, t_last = t0;
    int active = 0;
    for (int i = 0; i < nconn; i++) {
        if (ntasks && started >= ntasks)
            break;
        conn *c = &conns[i];
        c->fd = open_conn(&sa);
        if (c->fd < 0) {
            perror("bench_load: connect");
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        if (send_create(c) < 0)
            return 1;
        started++;
        active++;
    }

    struct epoll_event evs[256];
    while (active > 0) {
        int n = epoll_wait(ep, evs, 256, 60000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "bench_load: no response for 60 s\n");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            ssize_t r = recv(c->fd, c->rbuf + c->rlen, RBUF - 1 - c->rlen, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0) {
                fprintf(stderr, "bench_load: connection closed by the server\n");
                return 1;
            }
            c->rlen += (size_t)r;
            int status;
            const char *body;
            size_t blen;
            long used = parse_response(c, &status, &body, &blen);
            if (used == 0)
                continue;
            if (used < 0 || status != 200) {
                fprintf(stderr, "bench_load: HTTP %d: %.*s\n", used < 0 ? -1 : status,
                        (int)(used < 0 ? 200 : blen), used < 0 ? c->rbuf : body);
                return 1;
            }
            int next_create = 0;
            if (c->phase == CREATING) {
                const char *p = strstr(body, "\"id\":\"");
                if (!p || sscanf(p + 6, "%63[^\"]", c->id) != 1) {
                    fprintf(stderr, "bench_load: no id in %.*s\n", (int)blen, body);
                    return 1;
                }
            }
            /* With -1 the create's answer may already be the final status. */
            if (memmem(body, blen, "\"status\":\"SUCCESS\"", 18)) {
                double t = now_s();
                done++;
                if (!stop || t <= stop) {
                    counted++;
                    t_last = t;
                    if (nlat == caplat) {
                        caplat *= 2;
                        lat = realloc(lat, (size_t)caplat * sizeof *lat);
                        if (!lat)
                            return 1;
                    }
                    lat[nlat++] = t - c->t_start;
                }
                next_create = 1;
            } else if (memmem(body, blen, "\"status\":\"ERROR\"", 16)) {
                if (errors++ < 3)
                    fprintf(stderr, "bench_load: task failed: %.*s\n", (int)blen, body);
                next_create = 1;
            }
            /* Nothing is pipelined, so a response is all there is. */
            c->rlen = 0;
            int more = next_create && (ntasks ? started < ntasks : now_s() < stop);
            int rc = 0;
            if (!next_create)
                rc = send_status(c); /* created, or still running after the wait */
            else if (more) {
                rc = send_create(c);
                started++;
            } else {
                close(c->fd);
                active--;
            }
            if (rc < 0) {
                perror("bench_load: send");
                return 1;
            }
        }
    }
    double el = (stop ? stop : t_last) - t0;
    qsort(lat, (size_t)nlat, sizeof *lat, cmp_double);
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[nlat * 99 / 100] : 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("load tasks=%ld seconds=%.3f per_s=%.1f errors=%d p50_ms=%.2f p99_ms=%.2f done=%ld "
           "self_us=%.1f\n",
           counted, el, counted / el, errors, p50 * 1e3, p99 * 1e3, done,
           cpu * 1e6 / (double)(done ? done : 1));
    return errors ? 1 : 0;

usage:
    fprintf(
        stderr,
        "usage: bench_load [-1] [-c CONNS] [-d SECONDS | -n TASKS] [-w WAIT] [-t TYPE] HOST PORT "
        "FILE\n");
    return 2;
}
