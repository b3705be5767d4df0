/* gather_sup: see gather_sup.h.
 *
 * HTTP is done with libcurl's multi interface: one easy handle per worker
 * slot, so "one connection per worker" holds by construction (a slot never
 * has two transfers), curl decodes the chunked encoding and keeps the
 * connection alive between requests, and curl_multi_poll accepts extra fds,
 * which lets the pidfds and output pipes of the workers wake the same loop
 * as the sockets. Raw sockets would need our own HTTP/1.1 and chunked
 * decoder for no gain.
 *
 * A slot is in one of four states:
 *   DOWN    no process; a new one is spawned at due_us
 *   WAIT    process running, no transfer; a request starts at due_us
 *           (at once when "started" was seen, else after a short delay,
 *           then with a growing backoff while connections are refused)
 *   STREAM  a transfer is running; stalls are checked against last_us
 *   GONE    given up after repeated start failures
 * Process exits are seen through the pidfd; everything that ends a process
 * (crash, stall, foreign answer, shutdown) goes through gsup_retire. */
#include "gather_sup.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "gather_wproc.h"
#include "log.h"
#include "rndlines.h"
#include "timefmt.h"

#define GSUP_FIRST_TRY_US 250000  /* connect without "started" after this */
#define GSUP_MAX_START_FAILS 5    /* consecutive deaths before ready: give up the slot */
#define GSUP_MAX_REQ_FAILS 3      /* consecutive failed requests: replace the process */
#define GSUP_BUSY_RETRY_US 100000 /* after a 429 */
#define GSUP_SHUTDOWN_GRACE_MS 1000

enum gsup_state { GS_DOWN, GS_WAIT, GS_STREAM, GS_GONE };

struct gsup;

struct gsup_slot {
    struct gsup *s;
    enum gsup_state st;
    gwproc proc;      /* the worker process and its output scanners */
    int64_t due_us;   /* DOWN: respawn time; WAIT: next request time */
    int64_t last_us;  /* STREAM: last byte received (or request start) */
    int64_t retry_us; /* WAIT: connect backoff step */
    int start_fails;  /* consecutive processes that died before answering */
    int req_fails;    /* consecutive failed requests to this process */
    int answered;     /* this process sent the head of a good /rnd response */
    CURL *easy;       /* owned; in s->multi only in STREAM */
    int status;       /* HTTP status of the current response, 0 until known */
    int foreign;      /* the response claimed another X-Worker-Id */
    rndlines lines;   /* parser state; counters span all processes */
    gsup_worker_stats *stats;
};

struct gsup {
    const gsup_config *c;
    gsup_result *r;
    CURLM *multi;
    struct gsup_slot *slots;
    int next_port; /* port cursor for new processes */
    int64_t start_us;
    int64_t reached_us;
};

static int64_t gsup_now(void)
{
    return time_mono_us();
}

/* Sets the run's error text (truncated to fit). */
__attribute__((format(printf, 2, 3))) static void gsup_error(struct gsup *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->r->error, sizeof s->r->error, fmt, ap);
    va_end(ap);
}

/* ---- values ---------------------------------------------------------- */

static int gsup_on_value(void *arg, int64_t v)
{
    struct gsup_slot *w = arg;
    struct gsup *s = w->s;
    gsup_result *r = s->r;
    w->stats->numbers++;
    r->numbers++;
    if (r->first_sample_us < 0)
        r->first_sample_us = gsup_now() - s->start_us;
    if (r->n_samples < s->c->samples) {
        r->samples[r->n_samples++] = v;
        if (r->n_samples == s->c->samples)
            s->reached_us = gsup_now();
    }
    return 0;
}

/* ---- curl callbacks -------------------------------------------------- */

static size_t gsup_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct gsup_slot *w = arg;
    size_t len = size * nmemb;
    w->last_us = gsup_now();
    char line[128];
    size_t n = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, data, n);
    line[n] = '\0';
    int status;
    if (strncmp(line, "HTTP/", 5) == 0 && sscanf(line, "HTTP/%*s %d", &status) == 1) {
        /* A new status line starts a new response: forget the last one. */
        w->status = status;
        w->foreign = 0;
        w->stats->requests++;
    } else if (strncasecmp(line, "X-Worker-Id:", 12) == 0) {
        char *end;
        long id = strtol(line + 12, &end, 10);
        if (end != line + 12 && id != w->stats->id) {
            log_warn("worker %d: port %d answers as worker %ld", w->stats->id, w->proc.port, id);
            w->foreign = 1;
        }
    } else if ((line[0] == '\r' || line[0] == '\n') && w->status == 200 && !w->foreign) {
        /* The end of a good response head: this process works. A crash
         * from here on is a crash, not a failed start. */
        w->answered = 1;
    }
    return len;
}

static size_t gsup_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct gsup_slot *w = arg;
    size_t len = size * nmemb;
    w->last_us = gsup_now();
    if (w->foreign)
        return 0; /* abort: these numbers are not from our worker */
    if (w->status != 200)
        return len; /* an error text, not numbers */
    rndlines_feed(&w->lines, data, len, gsup_on_value, w);
    return len;
}

static int gsup_easy_setup(struct gsup_slot *w)
{
    w->easy = curl_easy_init();
    if (!w->easy)
        return -ENOMEM;
    CURL *e = w->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, w);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, gsup_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, gsup_header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, w);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* the workers are local: ignore *_proxy */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    return 0;
}

/* ---- process life ---------------------------------------------------- */

static void gsup_stop_transfer(struct gsup_slot *w)
{
    if (w->st == GS_STREAM)
        curl_multi_remove_handle(w->s->multi, w->easy);
    rndlines_discard(&w->lines);
}

/* Ends the slot's process (kill the group, reap) and schedules a new one.
 * why is NULL when the process ended by itself. */
static void gsup_retire(struct gsup_slot *w, const char *why)
{
    struct gsup *s = w->s;
    char how[128];
    gsup_stop_transfer(w);
    gwproc_end(&w->proc, why != NULL, how, sizeof how);
    const char *sep = w->proc.last_line[0] && !why ? ": " : "";
    const char *last = why ? "" : w->proc.last_line;
    if (w->answered) {
        w->start_fails = 0;
    } else if (++w->start_fails >= GSUP_MAX_START_FAILS) {
        gsup_error(s, "worker %d failed %d times before answering a request (last: %s%s%s)",
                   w->stats->id, w->start_fails, why ? why : how, sep, last);
        log_error("%s; giving up on it", s->r->error);
        w->stats->gave_up = 1;
        w->st = GS_GONE;
        return;
    }
    log_warn("worker %d (port %d) %s%s%s; replacing it", w->stats->id, w->proc.port,
             why ? why : how, sep, last);
    /* A crash after a good start is replaced at once to keep the
     * parallelism; repeated start failures back off. */
    int64_t delay = w->start_fails ? (int64_t)25000 << (w->start_fails - 1) : 0;
    w->st = GS_DOWN;
    w->due_us = gsup_now() + delay;
}

/* 1 if a live process of ours was given port: it may not listen yet. */
static int gsup_port_used(void *arg, int port)
{
    struct gsup *s = arg;
    for (int i = 0; i < s->c->workers; i++)
        if (s->slots[i].proc.running && s->slots[i].proc.port == port)
            return 1;
    return 0;
}

/* Returns 0, or -errno when the program cannot be executed at all. */
static int gsup_spawn(struct gsup_slot *w)
{
    struct gsup *s = w->s;
    int port = gwproc_pick_port(&s->next_port, s->c->base_port, gsup_port_used, s);
    if (port < 0) {
        w->st = GS_DOWN;
        w->due_us = gsup_now() + 100000;
        log_warn("worker %d: no free port found", w->stats->id);
        return 0;
    }
    int rc = gwproc_start(&w->proc, s->c->worker_path, w->stats->id, port, s->c->extra_args,
                          s->c->n_extra_args);
    if (rc == -ENOENT || rc == -EACCES || rc == -ENOEXEC || rc == -ENOTDIR || rc == -EISDIR ||
        rc == -ELOOP || rc == -ENAMETOOLONG) {
        gsup_error(s, "cannot run %s: %s", s->c->worker_path, strerror(-rc));
        return rc;
    }
    if (rc < 0) {
        log_warn("worker %d: spawn failed: %s", w->stats->id, strerror(-rc));
        w->st = GS_DOWN;
        w->due_us = gsup_now() + 100000;
        return 0;
    }
    if (w->stats->port != 0) {
        w->stats->restarts++;
        s->r->restarts++;
    }
    w->stats->port = port;
    w->st = GS_WAIT;
    w->answered = 0;
    w->req_fails = 0;
    w->retry_us = 10000;
    w->due_us = w->proc.spawn_us + GSUP_FIRST_TRY_US;
    log_debug("worker %d: pid %d on port %d", w->stats->id, (int)w->proc.p.pid, port);
    return 0;
}

/* ---- requests -------------------------------------------------------- */

static void gsup_request(struct gsup_slot *w)
{
    char url[80];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/rnd?n=%d", w->proc.port, w->s->c->per_request);
    curl_easy_setopt(w->easy, CURLOPT_URL, url);
    w->status = 0;
    w->foreign = 0;
    if (curl_multi_add_handle(w->s->multi, w->easy) != CURLM_OK) {
        w->due_us = gsup_now() + 50000;
        return;
    }
    w->st = GS_STREAM;
    w->last_us = gsup_now();
}

static void gsup_on_done(struct gsup_slot *w, CURLcode rc)
{
    curl_multi_remove_handle(w->s->multi, w->easy);
    w->st = GS_WAIT;
    int64_t now = gsup_now();
    if (w->foreign) {
        rndlines_discard(&w->lines);
        gsup_retire(w, "is not what answers on its port");
        return;
    }
    if (rc == CURLE_OK && w->status == 200) {
        /* The stream ended after n numbers: ask again at once. */
        w->answered = 1;
        rndlines_finish(&w->lines, gsup_on_value, w);
        w->req_fails = 0;
        w->due_us = now;
        return;
    }
    rndlines_discard(&w->lines);
    if (gwproc_exited(&w->proc)) {
        /* The stream broke because the process died: one event, not two. */
        gsup_retire(w, NULL);
        return;
    }
    if (rc == CURLE_COULDNT_CONNECT && !w->answered) {
        /* Not listening yet (or "started" came before the listen). */
        w->due_us = now + w->retry_us;
        w->retry_us = w->retry_us * 2 > 250000 ? 250000 : w->retry_us * 2;
        return;
    }
    if (rc == CURLE_OK)
        log_warn("worker %d: HTTP status %d", w->stats->id, w->status);
    else
        log_warn("worker %d: stream failed: %s", w->stats->id, curl_easy_strerror(rc));
    if (++w->req_fails >= GSUP_MAX_REQ_FAILS) {
        gsup_retire(w, "keeps failing requests");
        return;
    }
    /* A 429 means the worker still counts our previous connection. */
    w->due_us = now + (w->status == 429 ? GSUP_BUSY_RETRY_US : 50000);
}

/* ---- the loop -------------------------------------------------------- */

/* Runs the timers of one slot. Returns 0 or -errno (fatal spawn error). */
static int gsup_tick(struct gsup_slot *w, int64_t now)
{
    const gsup_config *c = w->s->c;
    char why[96];
    switch (w->st) {
    case GS_DOWN:
        if (now >= w->due_us)
            return gsup_spawn(w);
        break;
    case GS_WAIT:
        if (!w->answered && now - w->proc.spawn_us > c->ready_us) {
            snprintf(why, sizeof why, "not answering %.1f s after start",
                     (double)(now - w->proc.spawn_us) / 1e6);
            gsup_retire(w, why);
        } else if (now >= w->due_us) {
            gsup_request(w);
        }
        break;
    case GS_STREAM:
        if (now - w->last_us > c->stall_us) {
            snprintf(why, sizeof why, "no data for %.1f s", (double)(now - w->last_us) / 1e6);
            gsup_retire(w, why);
        }
        break;
    case GS_GONE:
        break;
    }
    return 0;
}

/* The next time a timer of w fires. */
static int64_t gsup_next_due(const struct gsup_slot *w)
{
    const gsup_config *c = w->s->c;
    switch (w->st) {
    case GS_DOWN:
        return w->due_us;
    case GS_WAIT:
        if (!w->answered && w->proc.spawn_us + c->ready_us < w->due_us)
            return w->proc.spawn_us + c->ready_us;
        return w->due_us;
    case GS_STREAM:
        return w->last_us + c->stall_us + 1;
    case GS_GONE:
        break;
    }
    return INT64_MAX;
}

/* Waits for the next event and handles it. Returns 0, 1 when cancelled,
 * or -errno on a fatal error. */
static int gsup_step(struct gsup *s)
{
    const gsup_config *c = s->c;
    struct curl_waitfd fds[1 + 3 * 256];
    unsigned nfds = 0;
    struct {
        struct gsup_slot *w;
        int kind; /* 0 pidfd, 1 stderr, 2 stdout */
    } owner[1 + 3 * 256];
    if (c->cancel_fd >= 0) {
        fds[nfds] = (struct curl_waitfd){.fd = c->cancel_fd, .events = CURL_WAIT_POLLIN};
        owner[nfds++].w = NULL;
    }
    int64_t now = gsup_now();
    int64_t next = now + 250000;
    for (int i = 0; i < c->workers; i++) {
        struct gsup_slot *w = &s->slots[i];
        int64_t d = gsup_next_due(w);
        if (d < next)
            next = d;
        if (w->st != GS_WAIT && w->st != GS_STREAM)
            continue;
        int fd3[3] = {w->proc.p.pidfd, w->proc.p.err_fd, w->proc.p.out_fd};
        for (int k = 0; k < 3; k++) {
            if (fd3[k] < 0)
                continue;
            fds[nfds] = (struct curl_waitfd){.fd = fd3[k], .events = CURL_WAIT_POLLIN};
            owner[nfds].w = w;
            owner[nfds++].kind = k;
        }
    }
    int timeout_ms = next <= now ? 0 : (int)((next - now + 999) / 1000);
    CURLMcode mc = curl_multi_poll(s->multi, fds, nfds, timeout_ms, NULL);
    if (mc != CURLM_OK) {
        gsup_error(s, "curl_multi_poll: %s", curl_multi_strerror(mc));
        return -EIO;
    }
    for (unsigned i = 0; i < nfds; i++) {
        if (!fds[i].revents)
            continue;
        struct gsup_slot *w = owner[i].w;
        if (!w)
            return 1;
        if (w->st != GS_WAIT && w->st != GS_STREAM)
            continue; /* retired by an earlier fd of this round */
        if (owner[i].kind == 0) {
            gsup_retire(w, NULL);
        } else if (gwproc_drain(&w->proc, owner[i].kind == 1 ? 2 : 1) > 0 && w->st == GS_WAIT &&
                   w->due_us > gsup_now()) {
            w->due_us = gsup_now(); /* "started": connect now */
        }
    }
    int running;
    curl_multi_perform(s->multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct gsup_slot *w = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&w);
        if (w && w->st == GS_STREAM)
            gsup_on_done(w, m->data.result);
    }
    return 0;
}

/* Stops every process still running: SIGTERM to each group, a short
 * grace, then SIGKILL; all are reaped. */
static void gsup_shutdown(struct gsup *s)
{
    const gsup_config *c = s->c;
    gwproc *procs[256];
    int n = 0;
    for (int i = 0; i < c->workers; i++) {
        struct gsup_slot *w = &s->slots[i];
        if (w->st == GS_WAIT || w->st == GS_STREAM) {
            gsup_stop_transfer(w);
            w->st = GS_DOWN;
            procs[n++] = &w->proc;
        }
    }
    gwproc_end_all(procs, n, GSUP_SHUTDOWN_GRACE_MS);
}

static int gsup_check_config(const gsup_config *c)
{
    if (!c->worker_path || c->workers < 1 || c->workers > 256 || c->samples < 1 ||
        c->base_port < 1 || c->base_port > 65535 || c->per_request < 1 || c->stall_us <= 0 ||
        c->ready_us <= 0 || c->timeout_us < 0)
        return -EINVAL;
    return 0;
}

int gsup_run(const gsup_config *c, gsup_result *r)
{
    memset(r, 0, sizeof *r);
    r->first_sample_us = -1;
    if (gsup_check_config(c) < 0) {
        snprintf(r->error, sizeof r->error, "invalid configuration");
        return -EINVAL;
    }
    struct gsup s = {.c = c, .r = r, .next_port = c->base_port};
    int rc = -ENOMEM;
    r->samples = calloc(c->samples, sizeof *r->samples);
    r->workers = calloc((size_t)c->workers, sizeof *r->workers);
    s.slots = calloc((size_t)c->workers, sizeof *s.slots);
    if (!r->samples || !r->workers || !s.slots)
        goto fail_alloc;
    r->n_workers = (size_t)c->workers;
    s.multi = curl_multi_init();
    if (!s.multi)
        goto fail_alloc;
    for (int i = 0; i < c->workers; i++) {
        struct gsup_slot *w = &s.slots[i];
        w->s = &s;
        w->stats = &r->workers[i];
        w->stats->id = i + 1;
        w->st = GS_DOWN;
        gwproc_init(&w->proc);
        rndlines_init(&w->lines);
        if (gsup_easy_setup(w) < 0)
            goto fail_easy;
    }

    s.start_us = gsup_now();
    int64_t deadline = c->timeout_us ? s.start_us + c->timeout_us : INT64_MAX;
    rc = 0;
    /* Start every worker before waiting for any, so they boot in parallel. */
    for (int i = 0; i < c->workers && rc == 0; i++)
        rc = gsup_spawn(&s.slots[i]);
    while (rc == 0 && !s.reached_us) {
        int64_t now = gsup_now();
        if (now >= deadline) {
            r->timed_out = 1;
            gsup_error(&s, "timed out after %.1f s", (double)(now - s.start_us) / 1e6);
            break;
        }
        int alive = 0;
        for (int i = 0; i < c->workers && rc == 0; i++) {
            rc = gsup_tick(&s.slots[i], now);
            alive += s.slots[i].st != GS_GONE;
        }
        if (rc < 0 || !alive)
            break;
        rc = gsup_step(&s);
        if (rc == 1) {
            r->cancelled = 1;
            rc = 0;
            break;
        }
    }
    int64_t end_us = s.reached_us ? s.reached_us : gsup_now();
    r->elapsed_us = end_us - s.start_us;
    r->reached = r->n_samples == c->samples;
    gsup_shutdown(&s);
    for (int i = 0; i < c->workers; i++) {
        r->workers[i].malformed = s.slots[i].lines.malformed;
        r->malformed += s.slots[i].lines.malformed;
        r->dropped += s.slots[i].lines.dropped;
    }
    if (rc == 0 && !r->reached && !r->cancelled && !r->timed_out && !r->error[0])
        gsup_error(&s, "every worker failed");
fail_easy:
    for (int i = 0; i < c->workers; i++)
        if (s.slots[i].easy)
            curl_easy_cleanup(s.slots[i].easy);
    curl_multi_cleanup(s.multi);
fail_alloc:
    free(s.slots);
    if (rc == -ENOMEM && !r->error[0])
        snprintf(r->error, sizeof r->error, "out of memory");
    return rc < 0 ? rc : 0;
}

void gsup_result_destroy(gsup_result *r)
{
    free(r->samples);
    free(r->workers);
    memset(r, 0, sizeof *r);
}
