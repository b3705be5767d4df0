/* cmd_gather: the `tasksolver-cli gather` command.
 *
 * Starts a set of streaming worker processes, collects --samples numbers
 * from them and reports how many were collected, how many numbers were
 * processed in all, how long it took, and per worker how many numbers it
 * gave and how often it had to be restarted. The supervision itself is in
 * gather_sup; this file is options, signals and output.
 *
 * SIGINT, SIGTERM and SIGHUP are taken through a signalfd that the
 * supervisor polls, so an interrupted run still stops every worker it
 * started before the command exits (with 128 + the signal number). A
 * SIGKILL cannot be caught: the workers would then outlive the command. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "commands.h"
#include "gather_sup.h"
#include "log.h"

struct gather_opts {
    gsup_config sup;
    char **extra;         /* owned array (strings are argv's) */
    const char *out_path; /* -o */
    int json;
};

static void gather_usage(FILE *f)
{
    fprintf(f, "usage: tasksolver-cli gather --worker PATH [--workers 16] [--samples 150]\n"
               "           [--base-port 3001] [--per-request 100] [-o FILE] [--json]\n"
               "           [--worker-arg ARG]... [--stall-timeout SEC] [--ready-timeout SEC]\n"
               "           [--timeout SEC] [-v|-q]\n"
               "\n"
               "Starts --workers processes `PATH -workerId I -port P`, reads numbers from\n"
               "GET /rnd?n=K on each (one connection per worker), replaces workers that\n"
               "crash or stall, and stops them all once --samples numbers were collected.\n"
               "\n"
               "  --worker PATH         worker program\n"
               "  --workers N           parallel workers (1-256, default 16)\n"
               "  --samples N           numbers to collect (default 150)\n"
               "  --base-port P         first port to try; busy ports are skipped (3001)\n"
               "  --per-request K       n of each request; a finished stream is asked again (100)\n"
               "  --worker-arg ARG      extra argument for every worker (repeatable)\n"
               "  --stall-timeout SEC   replace a worker silent this long (3)\n"
               "  --ready-timeout SEC   replace a worker not answering this long after start (10)\n"
               "  --timeout SEC         give up after this long (default: never)\n"
               "  -o FILE               write the samples to FILE, one per line\n"
               "  --json                print the report as one JSON object\n"
               "  -v, -q                more / less logging on stderr\n"
               "\n"
               "Exit status: 0 when all samples were collected, 1 if not, 2 for bad usage,\n"
               "128+N when stopped by signal N.\n");
}

static int gather_num(const char *name, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "gather: %s: expected a number in [%g, %g], got '%s'\n", name, lo, hi, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* Returns 0, 1 for --help, or -EINVAL (message printed). */
static int gather_parse(int argc, char **argv, struct gather_opts *o)
{
    enum {
        O_WORKER = 256,
        O_WORKERS,
        O_SAMPLES,
        O_BASE,
        O_PER,
        O_WARG,
        O_STALL,
        O_READY,
        O_TIMEOUT,
        O_JSON
    };
    static const struct option longopts[] = {
        {"worker", required_argument, NULL, O_WORKER},
        {"workers", required_argument, NULL, O_WORKERS},
        {"samples", required_argument, NULL, O_SAMPLES},
        {"base-port", required_argument, NULL, O_BASE},
        {"per-request", required_argument, NULL, O_PER},
        {"worker-arg", required_argument, NULL, O_WARG},
        {"stall-timeout", required_argument, NULL, O_STALL},
        {"ready-timeout", required_argument, NULL, O_READY},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"json", no_argument, NULL, O_JSON},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    gsup_config *c = &o->sup;
    *c = (gsup_config){.workers = 16,
                       .samples = 150,
                       .base_port = 3001,
                       .per_request = 100,
                       .stall_us = 3000000,
                       .ready_us = 10000000,
                       .cancel_fd = -1};
    o->extra = calloc((size_t)argc, sizeof *o->extra);
    if (!o->extra)
        return -ENOMEM;
    double v;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:vqh", longopts, NULL)) != -1) {
        int rc = 0;
        switch (opt) {
        case O_WORKER:
            c->worker_path = optarg;
            break;
        case O_WORKERS:
            if ((rc = gather_num("--workers", optarg, 1, 256, &v)) == 0)
                c->workers = (int)v;
            break;
        case O_SAMPLES:
            if ((rc = gather_num("--samples", optarg, 1, 10000000, &v)) == 0)
                c->samples = (size_t)v;
            break;
        case O_BASE:
            if ((rc = gather_num("--base-port", optarg, 1, 65535, &v)) == 0)
                c->base_port = (int)v;
            break;
        case O_PER:
            if ((rc = gather_num("--per-request", optarg, 1, 1000000000, &v)) == 0)
                c->per_request = (int)v;
            break;
        case O_WARG:
            o->extra[c->n_extra_args++] = optarg;
            break;
        case O_STALL:
            if ((rc = gather_num("--stall-timeout", optarg, 0.01, 86400, &v)) == 0)
                c->stall_us = (int64_t)(v * 1e6);
            break;
        case O_READY:
            if ((rc = gather_num("--ready-timeout", optarg, 0.01, 86400, &v)) == 0)
                c->ready_us = (int64_t)(v * 1e6);
            break;
        case O_TIMEOUT:
            if ((rc = gather_num("--timeout", optarg, 0, 864000, &v)) == 0)
                c->timeout_us = (int64_t)(v * 1e6);
            break;
        case O_JSON:
            o->json = 1;
            break;
        case 'o':
            o->out_path = optarg;
            break;
        case 'v':
            log_set_level(LOG_DEBUG);
            break;
        case 'q':
            log_set_level(LOG_ERROR);
            break;
        case 'h':
            gather_usage(stdout);
            return 1;
        default:
            gather_usage(stderr);
            return -EINVAL;
        }
        if (rc < 0)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "gather: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    if (!c->worker_path) {
        fprintf(stderr, "gather: --worker PATH is required\n");
        return -EINVAL;
    }
    c->extra_args = o->extra;
    return 0;
}

static int gather_write_samples(const char *path, const gsup_result *r)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        log_error("%s: %s", path, strerror(errno));
        return -errno;
    }
    for (size_t i = 0; i < r->n_samples; i++)
        fprintf(f, "%" PRId64 "\n", r->samples[i]);
    int err = ferror(f);
    if (fclose(f) != 0 || err) {
        log_error("%s: write failed", path);
        return -EIO;
    }
    return 0;
}

static void gather_print_text(const gsup_result *r, size_t target, int sig)
{
    printf("samples collected: %zu of %zu\n", r->n_samples, target);
    printf("numbers processed: %" PRIu64 " (%" PRIu64 " after the target)\n", r->numbers,
           r->numbers - r->n_samples);
    printf("malformed lines:   %" PRIu64 " (%" PRIu64 " cut off by a broken stream)\n",
           r->malformed, r->dropped);
    printf("total time:        %.3f s", (double)r->elapsed_us / 1e6);
    if (r->first_sample_us >= 0)
        printf(" (first sample after %.3f s)", (double)r->first_sample_us / 1e6);
    printf("\nrestarts:          %u\n", r->restarts);
    if (sig)
        printf("stopped by:        %s\n", strsignal(sig));
    else if (!r->reached)
        printf("failed:            %s\n", r->error);
    printf("worker  port   numbers  restarts  requests\n");
    for (size_t i = 0; i < r->n_workers; i++) {
        const gsup_worker_stats *w = &r->workers[i];
        printf("%6d  %5d  %7" PRIu64 "  %8u  %8u%s\n", w->id, w->port, w->numbers, w->restarts,
               w->requests, w->gave_up ? "  (gave up)" : "");
    }
}

static cJSON *gather_seconds(int64_t us)
{
    char num[32];
    snprintf(num, sizeof num, "%.3f", (double)us / 1e6);
    return cJSON_CreateRaw(num);
}

static int gather_print_json(const gsup_result *r, size_t target, int sig)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *ws = cJSON_CreateArray();
    if (!o || !ws)
        goto fail_alloc;
    cJSON_AddNumberToObject(o, "samples", (double)r->n_samples);
    cJSON_AddNumberToObject(o, "target", (double)target);
    cJSON_AddNumberToObject(o, "numbers", (double)r->numbers);
    cJSON_AddNumberToObject(o, "malformed", (double)r->malformed);
    cJSON_AddNumberToObject(o, "dropped", (double)r->dropped);
    cJSON_AddItemToObject(o, "time_s", gather_seconds(r->elapsed_us));
    if (r->first_sample_us >= 0)
        cJSON_AddItemToObject(o, "first_sample_s", gather_seconds(r->first_sample_us));
    else
        cJSON_AddNullToObject(o, "first_sample_s");
    cJSON_AddNumberToObject(o, "restarts", r->restarts);
    cJSON_AddBoolToObject(o, "reached", r->reached);
    cJSON_AddBoolToObject(o, "timed_out", r->timed_out);
    if (sig)
        cJSON_AddStringToObject(o, "signal", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    else
        cJSON_AddNullToObject(o, "signal");
    if (!r->reached && !sig)
        cJSON_AddStringToObject(o, "error", r->error);
    else
        cJSON_AddNullToObject(o, "error");
    for (size_t i = 0; i < r->n_workers; i++) {
        const gsup_worker_stats *w = &r->workers[i];
        cJSON *j = cJSON_CreateObject();
        if (!j)
            goto fail_alloc;
        cJSON_AddItemToArray(ws, j);
        cJSON_AddNumberToObject(j, "id", w->id);
        cJSON_AddNumberToObject(j, "port", w->port);
        cJSON_AddNumberToObject(j, "numbers", (double)w->numbers);
        cJSON_AddNumberToObject(j, "malformed", (double)w->malformed);
        cJSON_AddNumberToObject(j, "restarts", w->restarts);
        cJSON_AddNumberToObject(j, "requests", w->requests);
        cJSON_AddBoolToObject(j, "gave_up", w->gave_up);
    }
    cJSON_AddItemToObject(o, "workers", ws);
    ws = NULL;
    char *text = cJSON_PrintUnformatted(o);
    if (!text)
        goto fail_alloc;
    puts(text);
    free(text);
    cJSON_Delete(o);
    return 0;
fail_alloc:
    cJSON_Delete(ws);
    cJSON_Delete(o);
    log_error("out of memory");
    return -ENOMEM;
}

int cmd_gather(int argc, char **argv)
{
    struct gather_opts o = {0};
    int rc = gather_parse(argc, argv, &o);
    if (rc != 0) {
        free(o.extra);
        return rc == 1 ? 0 : 2;
    }
    int status = 1;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &old);
    /* Writes to a worker that died must fail with EPIPE, not kill us; the
     * runner gives the workers default dispositions again. */
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        log_error("signalfd: %s", strerror(errno));
        goto fail_signalfd;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("curl_global_init failed");
        goto fail_curl;
    }
    o.sup.cancel_fd = sfd;
    gsup_result r;
    rc = gsup_run(&o.sup, &r);
    if (rc < 0) {
        log_error("gather: %s", r.error);
        gsup_result_destroy(&r);
        goto fail_run;
    }
    int sig = 0;
    struct signalfd_siginfo si;
    if (r.cancelled && read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
        sig = (int)si.ssi_signo;
    int out_ok = !o.out_path || gather_write_samples(o.out_path, &r) == 0;
    if (o.json)
        gather_print_json(&r, o.sup.samples, sig);
    else
        gather_print_text(&r, o.sup.samples, sig);
    fflush(stdout);
    status = sig ? 128 + sig : (r.reached && out_ok) ? 0 : 1;
    gsup_result_destroy(&r);
fail_run:
    curl_global_cleanup();
fail_curl:
    close(sfd);
fail_signalfd:
    sigprocmask(SIG_SETMASK, &old, NULL);
    free(o.extra);
    return status;
}
