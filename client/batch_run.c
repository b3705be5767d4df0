/* batch_run: see batch_run.h. */
#include "batch_run.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"
#include "timefmt.h"

volatile sig_atomic_t batch_interrupted;

/* Largest answer kept: get_status carries up to 1 MiB per stream. */
#define BATCH_MAX_RESPONSE (8 << 20)

int batch_run_init(batch_run *r, const batch_opts *o, const batch_proto *p, batch_input *in,
                   const char *input_name, FILE *out, batch_done *done)
{
    memset(r, 0, sizeof *r);
    r->o = *o;
    r->proto = p;
    r->in = in;
    r->input_name = input_name;
    r->out = out;
    r->done = done;
    r->multi = curl_multi_init();
    if (!r->multi)
        return -ENOMEM;
    /* One kept-alive connection per slot. libcurl's default cache follows
     * the number of handles added at the moment, which drops whenever
     * slots are between requests, and closing the spare connections then
     * costs a reconnect per request (and ports in TIME_WAIT). */
    curl_multi_setopt(r->multi, CURLMOPT_MAXCONNECTS, (long)o->concurrency);
    /* "Expect:" off: a 100-continue round trip per request is pure delay. */
    r->headers = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *h2 = r->headers ? curl_slist_append(r->headers, "Expect:") : NULL;
    if (h2)
        r->headers = h2;
    if (h2 && o->token) {
        char *auth = NULL;
        if (asprintf(&auth, "Authorization: Bearer %s", o->token) < 0)
            goto fail_alloc;
        h2 = curl_slist_append(r->headers, auth);
        secret_free(auth);
        if (h2)
            r->headers = h2;
    }
    r->slots = calloc((size_t)o->concurrency, sizeof *r->slots);
    if (!h2 || !r->slots)
        goto fail_alloc;
    for (int i = 0; i < o->concurrency; i++) {
        batch_slot *s = &r->slots[i];
        s->easy = curl_easy_init();
        if (!s->easy)
            goto fail_alloc;
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
        s->sink = (httpc_sink){&s->resp, BATCH_MAX_RESPONSE};
        curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, httpc_sink_write);
        curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, &s->sink);
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, r->headers);
        curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf);
        curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "tasksolver-cli/" TS_VERSION);
    }
    r->start_us = r->last_answer_us = r->last_progress_us = time_mono_us();
    r->watching = o->stop_after > 0;
    return 0;

fail_alloc:
    batch_run_destroy(r);
    return -ENOMEM;
}

void batch_run_destroy(batch_run *r)
{
    for (int i = 0; r->slots && i < r->o.concurrency; i++) {
        batch_slot *s = &r->slots[i];
        if (s->easy) {
            if (s->in_multi)
                curl_multi_remove_handle(r->multi, s->easy);
            curl_easy_cleanup(s->easy);
        }
        free(s->input);
        buf_destroy(&s->url);
        buf_destroy(&s->body);
        buf_destroy(&s->resp);
    }
    free(r->slots);
    curl_slist_free_all(r->headers);
    if (r->multi)
        curl_multi_cleanup(r->multi);
    buf_destroy(&r->line);
    buf_destroy(&r->held);
    free(r->held_why);
    memset(r, 0, sizeof *r);
}

static void stop(batch_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void stop(batch_run *r, const char *fmt, ...)
{
    if (r->fatal)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->fatal_msg, sizeof r->fatal_msg, fmt, ap);
    va_end(ap);
    r->fatal = 1;
}

/* Clears the progress line so that a message starts on a clean line. */
static void clear_progress(batch_run *r)
{
    if (r->progress_shown) {
        fputs("\r\033[K", stderr);
        r->progress_shown = 0;
    }
}

/* Exponential backoff from 2 ms with jitter (half to all of it), at least
 * the server's Retry-After, capped at max_backoff. The start is short
 * because with --concurrency equal to the server's capacity a refusal
 * mostly means a worker that delivered our last result is not back yet:
 * it is free a moment later. */
static int64_t backoff_us(batch_run *r, batch_slot *s, double retry_after)
{
    int n = s->backoff_n < 16 ? s->backoff_n : 16;
    double d = 0.002 * (double)(1 << n);
    if (d > r->o.max_backoff)
        d = r->o.max_backoff;
    d *= 0.5 + 0.5 * ((double)random() / RAND_MAX);
    if (retry_after > d)
        d = retry_after < r->o.max_backoff ? retry_after : r->o.max_backoff;
    s->backoff_n++;
    return (int64_t)(d * 1e6);
}

static void schedule(batch_slot *s, int64_t at)
{
    s->state = SLOT_DELAY;
    s->due_us = at;
}

/* The first poll goes out just before the quickest recent attempt would
 * have finished; later ones at pauses proportional to the time waited so
 * far, which bounds the lateness to poll_factor of the task's duration
 * with a logarithmic number of polls. */
static int64_t first_poll_us(batch_run *r)
{
    if (r->proto->api == BATCH_API_TASKSOLVER || r->nrecent == 0)
        return 0;
    int64_t m = r->recent[0];
    for (int i = 1; i < r->nrecent; i++)
        if (r->recent[i] < m)
            m = r->recent[i];
    return m * 9 / 10;
}

static int64_t next_poll_us(batch_run *r, batch_slot *s, int64_t now)
{
    double pause = (double)(now - s->accepted_us) / 1e6 * r->o.poll_factor;
    if (pause < r->o.poll_min)
        pause = r->o.poll_min;
    if (pause > r->o.poll_max)
        pause = r->o.poll_max;
    return (int64_t)(pause * 1e6);
}

static void release(batch_run *r, batch_slot *s)
{
    free(s->input);
    s->input = NULL;
    s->state = SLOT_IDLE;
    r->in_flight--;
}

/* Ends the watch for a persistent failure: what was held is written. */
static void release_held(batch_run *r)
{
    r->watching = 0;
    if (r->held.len)
        buf_append(&r->line, r->held.data, r->held.len);
    r->st.errors += r->nheld;
    r->nheld = 0;
    buf_reset(&r->held);
}

/* While watching, holds back the error line of an input that failed with
 * the same error as every one before it; stops the run at the limit.
 * Returns 1 if the line was held. */
static int hold_error(batch_run *r, batch_slot *s, const char *err)
{
    if (!r->watching)
        return 0;
    if (!r->held_why && !(r->held_why = strdup(err))) {
        release_held(r);
        return 0;
    }
    if (strcmp(err, r->held_why) != 0) {
        release_held(r);
        return 0;
    }
    batch_out_error(&r->held, r->o.format, s->input, err);
    if (++r->nheld >= r->o.stop_after)
        stop(r,
             "the first %d inputs all failed with the same error and none got a result: %s "
             "(their lines are not written: once the server is fixed, run again with "
             "--resume to do them)",
             r->nheld, err);
    return 1;
}

static void finish(batch_run *r, batch_slot *s, const char *result, size_t len, const char *err)
{
    if (err && hold_error(r, s, err)) {
        /* held back, or the run stops */
    } else if (err) {
        batch_out_error(&r->line, r->o.format, s->input, err);
        r->st.errors++;
    } else {
        release_held(r);
        batch_out_result(&r->line, r->o.format, s->input, result, len);
        r->st.results++;
    }
    release(r, s);
}

/* This attempt is over without a result: submit again, or give up. */
static void attempt_failed(batch_run *r, batch_slot *s, const char *why, int64_t now)
{
    if (s->failures < r->o.retries) {
        s->failures++;
        r->st.retries++;
        s->step = STEP_SUBMIT;
        s->backoff_n = 0;
        schedule(s, now);
        return;
    }
    finish(r, s, NULL, 0, why);
}

static void start(batch_run *r, batch_slot *s, int64_t now)
{
    CURL *e = s->easy;
    int rc;
    long timeout_ms = 30000;
    if (s->step == STEP_SUBMIT) {
        rc = batch_proto_submit(r->proto, s->input, &s->url, &s->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body.data);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)s->body.len);
        r->st.submits++;
    } else {
        rc = batch_proto_poll(r->proto, s->id, &s->url);
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        if (r->proto->api == BATCH_API_TASKSOLVER)
            timeout_ms += (long)(r->proto->long_poll * 1000);
        r->st.polls++;
    }
    if (rc < 0) {
        stop(r, "out of memory");
        return;
    }
    curl_easy_setopt(e, CURLOPT_URL, s->url.data);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    buf_reset(&s->resp);
    s->errbuf[0] = '\0';
    s->sent_us = now;
    if (curl_multi_add_handle(r->multi, e) != CURLM_OK) {
        stop(r, "cannot start a transfer");
        return;
    }
    s->state = SLOT_ACTIVE;
    s->in_multi = 1;
}

static double retry_after(CURL *e)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return 0;
    char *end;
    double v = strtod(h->value, &end);
    return end != h->value && v > 0 ? v : 0;
}

static void on_answer(batch_run *r, batch_slot *s, long status, int64_t now)
{
    batch_reply rep = {.verdict = BATCH_FAILED, .text = BUF_INIT};
    int rc = s->step == STEP_SUBMIT
                 ? batch_proto_submit_reply(r->proto, status, s->resp.data, s->resp.len, &rep)
                 : batch_proto_poll_reply(r->proto, status, s->resp.data, s->resp.len, &rep);
    if (rc < 0) {
        stop(r, "out of memory");
        goto done;
    }
    const char *text = rep.text.data ? rep.text.data : "";
    switch (rep.verdict) {
    case BATCH_ACCEPTED:
        snprintf(s->id, sizeof s->id, "%s", text);
        s->step = STEP_POLL;
        s->backoff_n = 0;
        s->accepted_us = now;
        schedule(s, now + first_poll_us(r));
        break;
    case BATCH_REFUSED:
        r->st.refused[status == 403 ? 0 : status == 429 ? 1 : 2]++;
        schedule(s, now + backoff_us(r, s, retry_after(s->easy)));
        break;
    case BATCH_TRANSIENT:
        schedule(s, now + backoff_us(r, s, 0));
        break;
    case BATCH_PENDING:
        s->backoff_n = 0;
        if (now - s->accepted_us > (int64_t)(r->o.attempt_timeout * 1e6))
            attempt_failed(r, s, "no result within the attempt timeout", now);
        else if (r->proto->api == BATCH_API_TASKSOLVER &&
                 now - s->sent_us >= (int64_t)(r->proto->long_poll * 5e5))
            schedule(s, now); /* a real long poll: ask again at once */
        else
            schedule(s, now + next_poll_us(r, s, now));
        break;
    case BATCH_RESULT:
        r->recent[r->irecent] = now - s->accepted_us;
        r->irecent = (r->irecent + 1) % 64;
        if (r->nrecent < 64)
            r->nrecent++;
        finish(r, s, text, rep.text.len, NULL);
        break;
    case BATCH_LOST:
    case BATCH_FAILED:
        attempt_failed(r, s, text, now);
        break;
    case BATCH_REJECTED:
        finish(r, s, NULL, 0, text);
        break;
    case BATCH_FATAL:
        if (status == 401) {
            stop(r, "%s answered %s; %s", s->url.data, text,
                 r->o.token ? "the server does not accept the token of --token-file"
                            : "the server wants a bearer token: give it with --token-file");
            break;
        }
        stop(r, "%s answered %s; is that a %s server?", s->url.data, text,
             r->proto->api == BATCH_API_CALC ? "calculation (--api calc)" : "tasksolver");
        break;
    case BATCH_STOP:
        stop(r, "%s answered %s", s->url.data, text);
        break;
    }
done:
    buf_destroy(&rep.text);
}

static void on_conn_error(batch_run *r, batch_slot *s, CURLcode rc, int64_t now)
{
    const char *why = s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_WRITE_ERROR) {
        attempt_failed(r, s, "answer too large", now);
        return;
    }
    r->st.conn_errors++;
    snprintf(r->last_conn_error, sizeof r->last_conn_error, "%s", why);
    if (now - r->last_answer_us > (int64_t)(r->o.give_up * 1e6)) {
        stop(r, "no answer from %s for %.0f s (%s)", r->proto->base, r->o.give_up, why);
        return;
    }
    schedule(s, now + backoff_us(r, s, 0));
}

static void collect(batch_run *r)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(r->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode rc = m->data.result;
        batch_slot *s = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
        int64_t now = time_mono_us();
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (rc == CURLE_OK) {
            r->last_answer_us = now;
            on_answer(r, s, status, now);
        } else {
            on_conn_error(r, s, rc, now);
        }
        curl_multi_remove_handle(r->multi, e);
        s->in_multi = 0;
    }
}

/* Gives idle slots their next input. Returns 1 if a slot is still waiting
 * for input that has not arrived yet. */
static int feed(batch_run *r, int64_t now)
{
    for (int i = 0; i < r->o.concurrency && !r->input_over; i++) {
        batch_slot *s = &r->slots[i];
        if (s->state != SLOT_IDLE)
            continue;
        for (;;) {
            const char *text;
            size_t len;
            enum batch_line kind = batch_input_next(r->in, &text, &len);
            if (kind == BATCH_LINE_WAIT)
                return 1;
            if (kind == BATCH_LINE_END) {
                r->input_over = 1;
                return 0;
            }
            if (kind == BATCH_LINE_MALFORMED) {
                clear_progress(r);
                fprintf(stderr, "tasksolver-cli batch: %s:%ld: %s: '%.*s%s'\n", r->input_name,
                        r->in->lineno, r->in->why, len > 60 ? 60 : (int)len, text,
                        len > 60 ? "..." : "");
                r->st.malformed++;
                continue;
            }
            if (r->done && batch_done_take(r->done, text, len)) {
                r->st.skipped++;
                continue;
            }
            s->input = strndup(text, len);
            if (!s->input) {
                stop(r, "out of memory");
                return 0;
            }
            s->lineno = r->in->lineno;
            s->failures = 0;
            s->backoff_n = 0;
            s->step = STEP_SUBMIT;
            schedule(s, now);
            r->in_flight++;
            r->st.inputs++;
            break;
        }
    }
    return 0;
}

/* Milliseconds until the earliest delayed request, at most 200 (the
 * progress line and the interrupt flag are looked at that often). */
static long wait_ms(batch_run *r, int64_t now)
{
    int64_t t = 200000;
    for (int i = 0; i < r->o.concurrency; i++) {
        batch_slot *s = &r->slots[i];
        if (s->state == SLOT_DELAY && s->due_us - now < t)
            t = s->due_us - now;
    }
    return t <= 0 ? 0 : (long)((t + 999) / 1000);
}

static void read_input(batch_run *r)
{
    struct pollfd p = {.fd = r->in->fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return;
    ssize_t n = batch_input_fill(r->in);
    if (n < 0)
        stop(r, "cannot read %s: %s", r->input_name, strerror((int)-n));
}

int batch_run_loop(batch_run *r)
{
    while (!r->fatal && !batch_interrupted) {
        int64_t now = time_mono_us();
        int need_input = feed(r, now);
        for (int i = 0; i < r->o.concurrency && !r->fatal; i++)
            if (r->slots[i].state == SLOT_DELAY && r->slots[i].due_us <= now)
                start(r, &r->slots[i], now);
        if (r->fatal || (r->input_over && r->in_flight == 0))
            break;
        int running;
        curl_multi_perform(r->multi, &running);
        collect(r);
        if (r->line.len) {
            if (fwrite(r->line.data, 1, r->line.len, r->out) != r->line.len || fflush(r->out) != 0)
                stop(r, "cannot write the output: %s", strerror(errno));
            buf_reset(&r->line);
        }
        now = time_mono_us();
        if (r->o.progress && now - r->last_progress_us >= 500000)
            batch_run_progress(r, now);
        long ms = wait_ms(r, now);
        struct curl_waitfd w = {.fd = r->in->fd, .events = CURL_WAIT_POLLIN, .revents = 0};
        curl_multi_poll(r->multi, need_input ? &w : NULL, need_input ? 1 : 0, (int)ms, NULL);
        /* curl reports POLLIN only, not the POLLHUP of a closed pipe: ask
         * the descriptor itself. */
        if (need_input)
            read_input(r);
    }
    clear_progress(r);
    /* Unless the run stops for them, held errors are the inputs' lines. */
    if (!(r->fatal && r->nheld >= r->o.stop_after && r->o.stop_after > 0))
        release_held(r);
    if (r->line.len) {
        fwrite(r->line.data, 1, r->line.len, r->out);
        buf_reset(&r->line);
    }
    if (fflush(r->out) != 0 && !r->fatal)
        stop(r, "cannot write the output: %s", strerror(errno));
    return r->fatal || batch_interrupted ? -1 : 0;
}

static void fmt_duration(char *out, size_t size, double s)
{
    if (s >= 3600)
        snprintf(out, size, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60)
        snprintf(out, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(out, size, "%.0fs", s);
}

void batch_run_progress(batch_run *r, int64_t now)
{
    r->last_progress_us = now;
    double secs = (double)(now - r->start_us) / 1e6;
    long long done = r->st.results + r->st.errors;
    double rate = secs > 0 ? (double)done / secs : 0;
    long long refused = r->st.refused[0] + r->st.refused[1] + r->st.refused[2];
    char eta[64] = "";
    if (r->in->size > 0 && r->in->pos > 0 && rate > 0) {
        /* Inputs still to come, estimated from the share of bytes read. */
        double total = (double)(r->st.inputs + r->st.skipped + r->st.malformed) *
                       (double)r->in->size / (double)r->in->pos;
        double left = total - (double)(done + r->st.skipped + r->st.malformed);
        char d[32];
        fmt_duration(d, sizeof d, left > 0 ? left / rate : 0);
        snprintf(eta, sizeof eta, " | ETA %s", d);
    }
    fprintf(stderr, "\r\033[Kdone %lld | in flight %d | %.1f/s | errors %lld | refused %lld%s",
            done, r->in_flight, rate, r->st.errors, refused, eta);
    r->progress_shown = 1;
}

/* Peak resident memory of this program in KiB, or -1. From VmHWM, which
 * belongs to this program's own address space: getrusage's ru_maxrss also
 * carries the peak of whatever ran in the process before exec (a Python
 * parent's pages, through vfork), which made it useless as a measure. */
static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

void batch_run_summary(batch_run *r, FILE *f)
{
    double secs = (double)(time_mono_us() - r->start_us) / 1e6;
    const batch_stats *st = &r->st;
    long long done = st->results + st->errors;
    fprintf(f,
            "batch: %lld inputs: %lld results, %lld errors, %d unfinished; %lld malformed "
            "lines; %lld skipped (already in the output)\n",
            st->inputs, st->results, st->errors, r->in_flight + r->nheld, st->malformed,
            st->skipped);
    fprintf(f,
            "batch: %lld retries; %lld refusals (403: %lld, 429: %lld, 503: %lld); %lld "
            "connection errors%s%s%s; %lld submissions, %lld polls (%.2f per input)\n",
            st->retries, st->refused[0] + st->refused[1] + st->refused[2], st->refused[0],
            st->refused[1], st->refused[2], st->conn_errors, st->conn_errors ? " (last: " : "",
            st->conn_errors ? r->last_conn_error : "", st->conn_errors ? ")" : "", st->submits,
            st->polls, done ? (double)st->polls / (double)done : 0.0);
    fprintf(f, "batch: elapsed %.3f s, %.1f inputs/s, peak RSS %.1f MiB\n", secs,
            secs > 0 ? (double)done / secs : 0.0, (double)peak_rss_kib() / 1024);
}
