/* tasksolver: the server's entry point. Parses the settings, starts the
 * worker pool and the HTTP server, and turns SIGTERM/SIGINT into an orderly
 * shutdown: stop accepting, let running tasks finish within the grace
 * period, kill what is left, clean up, exit 0. */
#include <civetweb.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "calc_api.h"
#include "auth.h"
#include "bodywatch.h"
#include "cluster.h"
#include "config.h"
#include "confine.h"
#include "connlimit.h"
#include "http.h"
#include "http_routes.h"
#include "journal.h"
#include "lang.h"
#include "log.h"
#include "nodename.h"
#include "nodes_api.h"
#include "pool.h"
#include "reach.h"
#include "tasks.h"
#include "tasks_pg.h"
#include "timefmt.h"
#include "workdir.h"

/* What cluster mode reads of the settings. */
static cluster_config cluster_settings(const config *c)
{
    return (cluster_config){.join = c->join,
                            .name = c->name,
                            .advertise = c->advertise,
                            .address = c->address,
                            .slots = c->slots,
                            .announce_interval = c->announce_interval,
                            .compute_local = c->compute_local,
                            .op_timeout = c->op_timeout,
                            .op_attempts = c->op_attempts,
                            .forget_after = c->forget_after,
                            .max_jobs = c->max_jobs,
                            .compute_delay_ms = c->compute_delay_ms,
                            .max_body = c->max_body,
                            .data_dir = c->data_dir,
                            .data_sync_full = strcmp(c->data_sync, "full") == 0,
                            .store = c->store};
}

/* Set once every route is in place. civetweb listens from mg_start2 on,
 * before any handler can be registered, and a request in that window would
 * get civetweb's bare 404: a client whose server was just restarted took
 * that for "no such API" and gave up. */
static atomic_bool http_ready;

/* Holds a request that arrives while the server is starting until the
 * routes are in place (milliseconds, a store's first connection aside).
 * Returns 0 when ready, else the status of the 503 it sent. */
static int wait_ready(struct mg_connection *c)
{
    const struct timespec tick = {0, 2000000};
    for (int i = 0; i < 5000 && !atomic_load(&http_ready); i++)
        nanosleep(&tick, NULL);
    if (atomic_load(&http_ready))
        return 0;
    return http_send_error(c, 503, "Retry-After: 1\r\n", NULL, "the server is still starting");
}

/* Every request passes here before any handler, in both server modes: one
 * whose length is in doubt is refused before anything reads its body, then
 * one that came before the routes waits for them, then the bearer token is
 * checked. */
static int begin_request(struct mg_connection *c)
{
    int st = http_check_framing(c);
    if (!st)
        st = wait_ready(c);
    return st ? st : auth_begin_request(c);
}

/* Each open connection is a descriptor and --http-threads of them may be
 * open at once, the tasks' pipes on top: raise the soft limit on open
 * files towards the hard one (shells commonly leave it at 1024, where the
 * default thread count would run out and then fail task starts too). */
static void raise_fd_limit(const config *c)
{
    rlim_t need = (rlim_t)c->http_threads + 16 * (rlim_t)c->workers + 256;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need)
        log_warn("open files limited to %llu: fewer than --http-threads %d connections and "
                 "the tasks' pipes need (%llu)",
                 (unsigned long long)rl.rlim_cur, c->http_threads, (unsigned long long)need);
}

/* Starts the HTTP server with cl, which it initialises, counting its
 * connections. Returns it, or NULL with the reason in err.
 *
 * civetweb serves a connection on one thread from accept to close, so
 * every limit here is about freeing threads that slow or idle clients
 * hold: request_timeout_ms bounds the reading of a request's headers from
 * the moment a thread takes the connection (and any one read or write of
 * the body or response), keep_alive_timeout_ms the same for the requests
 * after the first, i.e. how long an idle keep-alive connection is kept. */
static struct mg_context *start_http(const config *c, auth *au, connlimit *cl, char *err,
                                     size_t errsz)
{
    char listen[300], threads[16], maxreq[16], req_ms[24], ka_ms[24];
    snprintf(listen, sizeof listen, "%s:%d", c->address, c->port);
    snprintf(threads, sizeof threads, "%d", c->http_threads);
    snprintf(maxreq, sizeof maxreq, "%d", 16384);
    snprintf(req_ms, sizeof req_ms, "%.0f", c->request_timeout * 1000);
    snprintf(ka_ms, sizeof ka_ms, "%.0f", c->keep_alive_timeout * 1000);
    /* clang-format off */
    const char *options[] = {
        "listening_ports", listen,
        "num_threads", threads,
        "enable_keep_alive", "yes",
        "tcp_nodelay", "1",
        "request_timeout_ms", req_ms,
        "keep_alive_timeout_ms", ka_ms,
        "max_request_size", maxreq,
        /* No CORS unless configured: civetweb's default allows any origin. */
        "access_control_allow_origin", "",
        "decode_url", "yes",
        NULL,
    };
    /* clang-format on */
    static struct mg_callbacks cb;
    cb.begin_request = begin_request;
    cb.http_error = http_error_json;
    err[0] = '\0';
    int rc = connlimit_init(cl, c->max_conns_per_address, c->http_threads);
    if (rc < 0)
        goto fail_limit;
    connlimit_install(cl, &cb);
    http_set_body_limits(c->body_timeout, c->body_min_rate);
    if ((rc = bodywatch_start()) < 0)
        goto fail_watch;
    struct mg_init_data init = {
        .callbacks = &cb, .user_data = au, .configuration_options = options};
    struct mg_error_data error = {.code = 0, .text = err, .text_buffer_size = errsz};
    struct mg_context *ctx = mg_start2(&init, &error);
    if (ctx)
        return ctx;
    bodywatch_stop();
fail_watch:
    connlimit_destroy(cl);
fail_limit:
    if (rc < 0)
        snprintf(err, errsz, "%s", strerror(-rc));
    return NULL;
}

/* Stops what start_http started. */
static void stop_http(struct mg_context *ctx, connlimit *cl)
{
    mg_stop(ctx);
    bodywatch_stop();
    connlimit_destroy(cl);
}

/* Opens the shared store of --store. Returns 0 or -errno with err set. */
static int open_store(tasks_pg **g, const config *c, membudget *mb, char *err, size_t errsz)
{
    tasks_pg_config pc = {.url = c->store,
                          .workers = c->workers,
                          .lease = c->lease,
                          .max_attempts = c->max_attempts,
                          .fail_running = strcmp(c->on_restart, "fail") == 0,
                          .max_queue = c->max_queue,
                          .max_finished = c->max_finished,
                          .budget = mb};
    return tasks_pg_new(g, &pc, err, errsz);
}

/* Names this node in the shared store (--name, else HOST:PORT) and the URL
 * it is reached at (--advertise, else from the address it listens on), as
 * cluster mode does. */
static int name_node(tasks_pg *g, const config *c, int port)
{
    char name[128], url[160], host[64] = "node";
    gethostname(host, sizeof host - 1);
    nodename_get(c->name, port, name, sizeof name);
    if (c->advertise[0])
        snprintf(url, sizeof url, "%s", c->advertise);
    else
        snprintf(url, sizeof url, "http://%s:%d", strcmp(c->address, "0.0.0.0") ? c->address : host,
                 port);
    return tasks_pg_set_node(g, name, url);
}

/* Opens the task lifecycle over its storage: the shared store of --store,
 * the journal of --data-dir, loaded, or memory (*g is the shared store or
 * NULL). Returns 0 or -1 after printing why. */
static int open_tasks(tasks *tk, const config *c, membudget *mb, tasks_restored *n, tasks_pg **g)
{
    tasks_config tc = {.max_finished = c->max_finished, .max_waiting = c->max_queue, .budget = mb};
    const tasks_backend_ops *ops = &tasks_memory_ops;
    void *impl = NULL;
    journal *jr = NULL;
    char err[512];
    int rc = 0;
    *g = NULL;
    if (c->store[0]) {
        ops = &tasks_pg_ops;
        rc = open_store(g, c, mb, err, sizeof err);
        impl = *g;
    } else if (c->data_dir[0]) {
        journal_config jc = {.dir = c->data_dir,
                             .sync_full = strcmp(c->data_sync, "full") == 0,
                             .fail_running = strcmp(c->on_restart, "fail") == 0,
                             .budget = mb};
        ops = &tasks_journal_ops;
        rc = journal_open(&jr, &jc, err, sizeof err);
        impl = jr;
    }
    if (rc == 0)
        rc = tasks_open(tk, &tc, ops, impl, n, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "tasksolver: %s\n", err);
        return -1;
    }
    return 0;
}

/* Loads the languages file (--languages, else the default one, else
 * none) and keeps the languages whose tools answer. Returns 0 or -1 after
 * printing why. */
static int load_languages(lang_table *t, const config *c)
{
    char path[4096], err[512];
    memset(t, 0, sizeof *t);
    if (c->languages[0])
        snprintf(path, sizeof path, "%s", c->languages);
    else if (lang_default_path(path, sizeof path) < 0) {
        log_warn("no languages file (languages.conf): tasks are python or bin only");
        return 0;
    }
    if (lang_table_load(t, path, err, sizeof err) < 0) {
        fprintf(stderr, "tasksolver: %s\n", err);
        return -1;
    }
    /* Outside any request, while the server starts: each tool gets a few
     * seconds to tell its version. */
    int rc = lang_table_probe_start(t, 5);
    if (rc < 0) {
        fprintf(stderr, "tasksolver: cannot probe the languages: %s\n", strerror(-rc));
        lang_table_destroy(t);
        return -1;
    }
    return 0;
}

/* The shared store's hooks: a node that lost it kills its tasks. */
static void cancel_runs(void *arg)
{
    pool_cancel(arg);
}

static void resume_runs(void *arg)
{
    pool_cancel_reset(arg);
}

/* Waits up to the grace period for running tasks, then kills them. */
static void drain_running(tasks *tk, pool *p, double grace, sigset_t *sigs)
{
    int64_t deadline = time_mono_us() + (int64_t)(grace * 1e6);
    while (tasks_get_counts(tk).running > 0) {
        int64_t left = deadline - time_mono_us();
        if (left <= 0) {
            log_warn("grace period over: killing %ld running tasks", tasks_get_counts(tk).running);
            break;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        if (sigtimedwait(sigs, NULL, &ts) > 0) {
            log_warn("second signal: killing running tasks now");
            break;
        }
    }
    pool_cancel(p);
}

/* Waits for SIGTERM or SIGINT and returns it, giving the free pages in
 * malloc's arenas back to the system every few seconds while tasks finish.
 * Finished tasks are freed in the order they finished, each with outputs of
 * any size allocated by whichever worker ran it: glibc keeps the holes for
 * reuse and returns only the top of each arena, so under steady retention
 * the resident size climbed to nearly twice what was in use (a ten-minute
 * soak: 100 MB resident for 60 MB in use; after malloc_trim, 70 MB). */
static int wait_for_stop(tasks *tk, const sigset_t *sigs)
{
    const struct timespec tick = {.tv_sec = 5};
    long trimmed_at = 0;
    for (;;) {
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig > 0)
            return sig;
        tasks_counts c = tasks_get_counts(tk);
        if (c.finished + c.evicted != trimmed_at) {
            trimmed_at = c.finished + c.evicted;
            malloc_trim(0);
        }
    }
}

int main(int argc, char **argv)
{
    /* Big blocks (request bodies, programs, cJSON's copies of them) get a
     * mapping of their own and go back to the system when freed. glibc
     * otherwise raises its mmap threshold to the size of each freed block
     * (up to 32 MiB), and the next ones land in the per-thread arenas,
     * whose freed holes stay resident: 20 programs of 8 MB queued took
     * 463 MB of RSS for the 168 MB counted by --max-queue-bytes, 172 MB
     * with the threshold fixed. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    /* Taken by sigtimedwait in this thread only; every thread started from here
     * inherits the mask, and the runner resets it for children. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    config cfg;
    if (config_init(&cfg) < 0) {
        fprintf(stderr, "tasksolver: out of memory\n");
        return 1;
    }
    int rc = config_parse_args(&cfg, argc, argv);
    if (rc) {
        config_destroy(&cfg);
        return rc == 1 ? 0 : 2;
    }
    log_set_level((enum log_level)cfg.log_level);
    config_check(&cfg);

    int exit_code = 1;
    workdir wd;
    rc = workdir_prepare(&wd, &cfg);
    if (rc < 0) {
        fprintf(stderr, "tasksolver: work directory %s: %s\n", cfg.work_dir,
                rc == -EEXIST ? "in use by another server" : strerror(-rc));
        goto fail_workdir;
    }
    if (wd.stale_removed)
        log_notice("removed %d work directories of servers that are gone", wd.stale_removed);
    confine cf;
    if (confine_start(&cf, &cfg) < 0)
        goto fail_confine;
    /* Tasks that are refused need nothing within reach. */
    reach rch;
    char rerr[1024];
    if (reach_check(&rch, cf.refusal ? NULL : confine_sandbox(&cf), &cfg, rerr, sizeof rerr) < 0) {
        fprintf(stderr, "tasksolver: %s\n", rerr);
        goto fail_reach;
    }
    lang_table langs;
    if (load_languages(&langs, &cfg) < 0)
        goto fail_langs;
    /* Returns the mask of features initialised: 0 for the 0 asked here,
     * so it carries no error to check. */
    mg_init_library(0);
    membudget mb;
    membudget_init(&mb, cfg.max_queue_bytes);
    tasks tk;
    tasks_restored jn;
    tasks_pg *shared;
    if (open_tasks(&tk, &cfg, &mb, &jn, &shared) < 0)
        goto fail_tasks;
    int kept = tasks_durable(&tk);
    pool p;
    pool_config pc = {
        .workers = cfg.workers,
        .task_timeout = cfg.task_timeout,
        .max_output = cfg.max_output,
        .work_dir = cfg.work_dir,
        .python = cfg.python,
        .calc_command = cfg.calc_command[0] ? cfg.calc_command : NULL,
        .calc_image = rch.calc_image,
        .calc_len = rch.calc_len,
        .calc_name = rch.calc_name,
        .langs = &langs,
        .compile_timeout = cfg.compile_timeout,
        .sandbox = confine_sandbox(&cf),
        .refuse = cf.refusal,
    };
    rc = pool_start(&p, &pc, &tk);
    if (rc < 0) {
        fprintf(stderr, "tasksolver: cannot start workers: %s\n", strerror(-rc));
        goto fail_pool;
    }
    auth au = {NULL, 0};
    if (cfg.auth_token_file[0] && (rc = auth_load(&au, cfg.auth_token_file)) < 0) {
        fprintf(stderr, "tasksolver: --auth-token-file %s: %s\n", cfg.auth_token_file,
                rc == -ENODATA ? "no token in the file" : strerror(-rc));
        goto fail_http;
    }
    raise_fd_limit(&cfg);
    char err[256];
    connlimit climit;
    struct mg_context *ctx = start_http(&cfg, &au, &climit, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "tasksolver: cannot listen on %s:%d: %s\n", cfg.address, cfg.port,
                err[0] ? err : "unknown error");
        goto fail_http;
    }
    http_routes routes;
    http_routes_init(&routes, ctx);
    api a = {.budget = &mb, .sandbox_json = cf.info_json, .refusal = cf.refusal, .langs = &langs};
    api_register(&a, &routes, &cfg, &tk);
    lang_register(&langs, &routes);
    if (cfg.calc_command[0])
        calc_api_register(&routes, &a);
    struct mg_server_port ports[4];
    int nports = mg_get_server_ports(ctx, 4, ports);
    int port = nports > 0 ? ports[0].port : cfg.port;
    cluster cl;
    cluster_config cc = cluster_settings(&cfg);
    if (cluster_start(&cl, &routes, &cc, port, au.token, &mb) < 0) {
        stop_http(ctx, &climit);
        http_routes_destroy(&routes);
        cluster_stop(&cl);
        goto fail_http;
    }
    if (shared) {
        if (nodes_api_register(&routes, shared) < 0 || name_node(shared, &cfg, port) < 0) {
            fprintf(stderr, "tasksolver: out of memory\n");
            stop_http(ctx, &climit);
            http_routes_destroy(&routes);
            cluster_stop(&cl);
            goto fail_http;
        }
        tasks_pg_set_cancel(shared, cancel_runs, resume_runs, &p);
    }
    /* Only now that the server is sure to start: one that fails to would
     * cancel what it ran on its way out. */
    tasks_admit_restored(&tk);
    http_routes_fallback(&routes);
    atomic_store(&http_ready, true);
    log_notice("tasksolver %s listening on http://%s:%d with %d workers (work dir %s)", TS_VERSION,
               cfg.address, port, cfg.workers, cfg.work_dir);
    if (kept && !shared)
        log_notice("journal %s/tasks.db: %ld finished, %ld waiting (%ld were running: %ld "
                   "requeued, %ld failed), %ld old ones dropped",
                   cfg.data_dir, jn.finished, jn.waiting, jn.requeued + jn.interrupted, jn.requeued,
                   jn.interrupted, jn.dropped);
    if (kept && cfg.max_queue_bytes && membudget_used(&mb) > cfg.max_queue_bytes)
        log_warn("the %ld waiting tasks read back from the journal hold %zu bytes, more than "
                 "--max-queue-bytes %zu: new tasks are refused until they have started",
                 jn.waiting, membudget_used(&mb), cfg.max_queue_bytes);
    confine_log(&cf);
    reach_log(&rch);
    lang_log(&langs);

    int sig = wait_for_stop(&tk, &sigs);
    log_notice("received %s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    api_stop_accepting(&a);
    long dropped = tasks_stop_queue(&tk);
    if (dropped > 0 && shared)
        log_notice("%ld tasks claimed here go back to the store's queue", dropped);
    else if (dropped > 0 && kept)
        log_notice("%ld waiting tasks stay in the journal for the next start", dropped);
    else if (dropped > 0)
        log_warn("%ld waiting tasks will not run", dropped);
    drain_running(&tk, &p, cfg.shutdown_grace, &sigs);
    pool_join(&p);
    tasks_close(&tk);
    stop_http(ctx, &climit);
    http_routes_destroy(&routes);
    cluster_stop(&cl);
    auth_destroy(&au);
    exit_code = 0;
    goto done;

fail_http:
    auth_destroy(&au);
    tasks_stop_queue(&tk);
    pool_cancel(&p);
    pool_join(&p);
done:
fail_pool:
    /* After the HTTP server and the workers: they go through it, and a
     * journal publishes results until its last commit. */
    tasks_destroy(&tk);
fail_tasks:
    mg_exit_library();
    lang_table_destroy(&langs);
fail_langs:
    reach_destroy(&rch);
fail_reach:
    confine_stop(&cf);
fail_confine:
    workdir_release(&wd);
fail_workdir:
    config_destroy(&cfg);
    if (exit_code == 0)
        log_notice("stopped");
    return exit_code;
}
