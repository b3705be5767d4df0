/* fake_worker: a stand-in for the third-party streaming worker, for tests.
 *
 * Behaves as the real worker is known to behave: started as
 * `fake_worker -workerId N -port P`, it writes a line containing "started"
 * to stderr once it listens, serves GET /rnd?n=K as a chunked stream of
 * lines "rnd=NN" (values 0-99, Content-Type application/text, an
 * X-Worker-Id header) and answers 429 to a /rnd request while another one
 * is being streamed. If the port is taken it exits with status 1 and a
 * message. SIGTERM ends it at once (default disposition).
 *
 * Knobs to make it misbehave the ways the real one may:
 *   -interval MS       time between numbers (1000)
 *   -first-delay MS    time before the first number of a response (0)
 *   -crash-prob P      probability, before each number, that the process
 *                      dies (sometimes after half a line, sometimes by
 *                      SIGKILL, sometimes by exit(3))
 *   -startup-delay MS  wait before listening
 *   -stall-after N     after N numbers (process lifetime) go silent but
 *                      keep the connection open
 *   -split             send each line as two chunks
 *   -flaky             crash-prob 0.1 unless given, every 7th line
 *                      malformed, lines split across chunks
 *   -busy-first N      answer the first N /rnd requests 429, as if an
 *                      earlier connection were still being served
 *   -claim-id N        send X-Worker-Id N instead of its own id
 *   -log FILE          append "workerId pid value" for every value about
 *                      to be sent, so tests can check a client's samples
 *                      are real
 *   -seed S            random seed (default: from time and pid)
 *
 * civetweb serves the HTTP side (one thread per connection, which makes
 * the "second connection gets 429" rule a simple atomic flag). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>

struct fw_config {
    int id;
    int port;
    long interval_ms;
    long first_delay_ms;
    double crash_prob;
    long startup_delay_ms;
    long stall_after; /* 0: never */
    int split;
    int malformed_every; /* 0: never */
    long busy_first;
    int claim_id;
    const char *log_path;
    unsigned seed;
};

static struct fw_config fw_cfg = {.interval_ms = 1000, .crash_prob = -1};
static atomic_long fw_requests;     /* /rnd requests seen */
static atomic_int fw_busy;          /* a /rnd response is being streamed */
static atomic_long fw_sent;         /* numbers sent since start */
static atomic_uint fw_seed_counter; /* distinct rand_r seed per request */
static int fw_log_fd = -1;

static void fw_sleep_until(const struct timespec *t)
{
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) == EINTR)
        ;
}

static void fw_add_ms(struct timespec *t, long ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static void fw_log_value(int value)
{
    if (fw_log_fd < 0)
        return;
    char line[64];
    int n = snprintf(line, sizeof line, "%d %ld %d\n", fw_cfg.id, (long)getpid(), value);
    /* One write per line on an O_APPEND fd: lines from concurrent workers
     * sharing the file do not interleave. */
    if (write(fw_log_fd, line, (size_t)n) != n)
        fprintf(stderr, "fake_worker %d: log write failed\n", fw_cfg.id);
}

static void fw_crash(struct mg_connection *conn, unsigned *rs)
{
    int how = (int)(rand_r(rs) % 3);
    fprintf(stderr, "fake_worker %d: crashing (mode %d)\n", fw_cfg.id, how);
    if (how == 0) {
        /* An unfinished line, as when a crash cuts "rnd=42" after "rnd=4".
         * Its value is outside 0-99 so that a client which counts cut
         * lines is caught by a test. */
        mg_send_chunk(conn, "rnd=100", 7);
        _exit(3);
    }
    if (how == 1)
        raise(SIGKILL);
    _exit(3);
}

static int fw_send_line(struct mg_connection *conn, const char *line, int len)
{
    if (fw_cfg.split && len > 1) {
        int half = len / 2;
        if (mg_send_chunk(conn, line, (unsigned)half) <= 0)
            return -1;
        usleep(2000);
        return mg_send_chunk(conn, line + half, (unsigned)(len - half)) <= 0 ? -1 : 0;
    }
    return mg_send_chunk(conn, line, (unsigned)len) <= 0 ? -1 : 0;
}

static void fw_stall_forever(void)
{
    fprintf(stderr, "fake_worker %d: stalling\n", fw_cfg.id);
    for (;;)
        pause();
}

static int fw_reply_simple(struct mg_connection *conn, int status, const char *reason,
                           const char *body)
{
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nX-Worker-Id: %d\r\n"
              "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
              status, reason, fw_cfg.claim_id, strlen(body), body);
    return status;
}

static int fw_rnd_handler(struct mg_connection *conn, void *cbdata)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (strcmp(ri->request_method, "GET") != 0)
        return fw_reply_simple(conn, 405, "Method Not Allowed", "GET only\n");
    char nbuf[32];
    const char *qs = ri->query_string ? ri->query_string : "";
    if (mg_get_var(qs, strlen(qs), "n", nbuf, sizeof nbuf) <= 0)
        return fw_reply_simple(conn, 400, "Bad Request", "need n\n");
    char *end;
    long n = strtol(nbuf, &end, 10);
    if (*end != '\0' || n < 1 || n > 1000000)
        return fw_reply_simple(conn, 400, "Bad Request", "bad n\n");
    if (atomic_fetch_add(&fw_requests, 1) < fw_cfg.busy_first || atomic_exchange(&fw_busy, 1))
        return fw_reply_simple(conn, 429, "Too Many Requests", "one connection at a time\n");

    unsigned rs = fw_cfg.seed ^ (atomic_fetch_add(&fw_seed_counter, 1) * 2654435761u);
    /* Status line and headers in one write (see platform facts on Nagle). */
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\n"
              "Content-Type: application/text\r\nX-Worker-Id: %d\r\n"
              "Transfer-Encoding: chunked\r\n\r\n",
              fw_cfg.claim_id);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    fw_add_ms(&next, fw_cfg.first_delay_ms);
    int ok = 1;
    for (long i = 0; i < n && ok; i++) {
        if (i > 0)
            fw_add_ms(&next, fw_cfg.interval_ms);
        fw_sleep_until(&next);
        if (fw_cfg.stall_after > 0 && atomic_load(&fw_sent) >= fw_cfg.stall_after)
            fw_stall_forever();
        if (fw_cfg.crash_prob > 0 && (double)rand_r(&rs) / RAND_MAX < fw_cfg.crash_prob)
            fw_crash(conn, &rs);
        char line[32];
        long k = atomic_fetch_add(&fw_sent, 1) + 1;
        if (fw_cfg.malformed_every > 0 && k % fw_cfg.malformed_every == 0) {
            ok = fw_send_line(conn, "rnd=x?\n", 7) == 0;
            continue;
        }
        int value = (int)(rand_r(&rs) % 100);
        int len = snprintf(line, sizeof line, "rnd=%d\n", value);
        /* Logged before sending: a client may kill us right after it reads
         * the line, and the log must hold every value a client can see. */
        fw_log_value(value);
        ok = fw_send_line(conn, line, len) == 0;
    }
    if (ok)
        mg_send_chunk(conn, "", 0);
    atomic_store(&fw_busy, 0);
    return 200;
}

static void fw_usage(void)
{
    fprintf(stderr, "usage: fake_worker -workerId N -port P [-interval MS] [-first-delay MS]\n"
                    "       [-crash-prob P] [-startup-delay MS] [-stall-after N] [-split]\n"
                    "       [-flaky] [-busy-first N] [-claim-id N] [-log FILE] [-seed S]\n");
    exit(2);
}

static long fw_num(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        fw_usage();
    return v;
}

static void fw_parse(int argc, char **argv)
{
    int flaky = 0;
    fw_cfg.id = -1;
    fw_cfg.claim_id = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* Go's flag package accepts -flag and --flag; so does this. */
        if (a[0] == '-' && a[1] == '-')
            a++;
        if (strcmp(a, "-split") == 0) {
            fw_cfg.split = 1;
            continue;
        }
        if (strcmp(a, "-flaky") == 0) {
            flaky = 1;
            continue;
        }
        if (i + 1 >= argc)
            fw_usage();
        const char *v = argv[++i];
        if (strcmp(a, "-workerId") == 0)
            fw_cfg.id = (int)fw_num(v, 0, 1000000);
        else if (strcmp(a, "-port") == 0)
            fw_cfg.port = (int)fw_num(v, 1, 65535);
        else if (strcmp(a, "-interval") == 0)
            fw_cfg.interval_ms = fw_num(v, 0, 3600000);
        else if (strcmp(a, "-first-delay") == 0)
            fw_cfg.first_delay_ms = fw_num(v, 0, 3600000);
        else if (strcmp(a, "-startup-delay") == 0)
            fw_cfg.startup_delay_ms = fw_num(v, 0, 3600000);
        else if (strcmp(a, "-stall-after") == 0)
            fw_cfg.stall_after = fw_num(v, 0, 1000000000);
        else if (strcmp(a, "-seed") == 0)
            fw_cfg.seed = (unsigned)fw_num(v, 0, 4294967295L);
        else if (strcmp(a, "-busy-first") == 0)
            fw_cfg.busy_first = fw_num(v, 0, 1000000);
        else if (strcmp(a, "-claim-id") == 0)
            fw_cfg.claim_id = (int)fw_num(v, 0, 1000000);
        else if (strcmp(a, "-log") == 0)
            fw_cfg.log_path = v;
        else if (strcmp(a, "-crash-prob") == 0) {
            char *end;
            fw_cfg.crash_prob = strtod(v, &end);
            if (*end || end == v || !(fw_cfg.crash_prob >= 0 && fw_cfg.crash_prob <= 1))
                fw_usage();
        } else
            fw_usage();
    }
    if (fw_cfg.id < 0 || fw_cfg.port == 0)
        fw_usage();
    if (fw_cfg.claim_id < 0)
        fw_cfg.claim_id = fw_cfg.id;
    if (flaky) {
        if (fw_cfg.crash_prob < 0)
            fw_cfg.crash_prob = 0.1;
        fw_cfg.malformed_every = 7;
        fw_cfg.split = 1;
    }
    if (fw_cfg.crash_prob < 0)
        fw_cfg.crash_prob = 0;
    if (fw_cfg.seed == 0)
        fw_cfg.seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16) ^ (unsigned)fw_cfg.id;
}

int main(int argc, char **argv)
{
    fw_parse(argc, argv);
    if (fw_cfg.log_path) {
        fw_log_fd = open(fw_cfg.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fw_log_fd < 0) {
            fprintf(stderr, "fake_worker %d: %s: %s\n", fw_cfg.id, fw_cfg.log_path,
                    strerror(errno));
            return 1;
        }
    }
    if (fw_cfg.startup_delay_ms > 0)
        usleep((useconds_t)fw_cfg.startup_delay_ms * 1000);
    /* Returns the set of optional features it initialised: none asked. */
    (void)mg_init_library(0);
    char ports[32];
    snprintf(ports, sizeof ports, "127.0.0.1:%d", fw_cfg.port);
    const char *opts[] = {
        "listening_ports",   ports, "num_threads",           "8",    "tcp_nodelay", "1",
        "enable_keep_alive", "yes", "keep_alive_timeout_ms", "5000", NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    struct mg_init_data init = {.callbacks = &cb, .configuration_options = opts};
    char err[256] = "";
    struct mg_error_data ed = {.text = err, .text_buffer_size = sizeof err};
    struct mg_context *ctx = mg_start2(&init, &ed);
    if (!ctx) {
        fprintf(stderr, "fake_worker %d: cannot listen on port %d: %s\n", fw_cfg.id, fw_cfg.port,
                err);
        return 1;
    }
    mg_set_request_handler(ctx, "/rnd$", fw_rnd_handler, NULL);
    fprintf(stderr, "fake_worker %d: started on port %d\n", fw_cfg.id, fw_cfg.port);
    for (;;)
        pause();
}
