/* tasks_pg: see tasks_pg.h. This file holds the state, the backend's
 * functions (admission, lookup, start, result) and the rows; the three
 * threads (claimer, listener, keeper) are in tasks_pg_threads.c. */
#include "tasks_pg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "jsonw.h"
#include "log.h"
#include "pgschema.h"
#include "request_files.h"
#include "testset.h"
#include "timefmt.h"

/* Connections for the connection threads and the workers: each takes one
 * for one statement or transaction. */
#define PG_POOL_SIZE 8

/* A finished row's columns, in this order, as row_view and fill_result read
 * them. */
#define ROW_COLS                                                                                   \
    "type, status, (extract(epoch from created) * 1e6)::bigint,"                                   \
    " (extract(epoch from started) * 1e6)::bigint, (extract(epoch from finished) * 1e6)::bigint,"  \
    " attempts, stdout, stderr, stdout_total, stdout_truncated, stderr_total, stderr_truncated,"   \
    " exit_code, signal, timed_out, cpu_us, error, lang, tests, memory_peak, limit_hit, compiled," \
    " compile_output, compile_exit_code, cancelled"
enum {
    C_TYPE,
    C_STATUS,
    C_CREATED,
    C_STARTED,
    C_FINISHED,
    C_ATTEMPTS,
    C_STDOUT,
    C_STDERR,
    C_OUT_TOTAL,
    C_OUT_TRUNC,
    C_ERR_TOTAL,
    C_ERR_TRUNC,
    C_EXIT,
    C_SIGNAL,
    C_TIMED_OUT,
    C_CPU,
    C_ERROR,
    C_LANG,
    C_TESTS,
    C_MEM_PEAK, /* then the other four of pg_fields_fill */
    C_CANCELLED = C_MEM_PEAK + 5
};

const char *const pg_row_select = "SELECT " ROW_COLS " FROM tasks WHERE id = $1";

int pg_parse_type(const char *s)
{
    for (int i = TASK_PYTHON; i <= TASK_LANG; i++)
        if (strcmp(s, task_type_name((enum task_type)i)) == 0)
            return i;
    return -1;
}

static int parse_status(const char *s)
{
    for (int i = TASK_WAIT; i <= TASK_ERROR; i++)
        if (strcmp(s, task_status_name((enum task_status)i)) == 0)
            return i;
    return -1;
}

static long long num(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int flag(const PGresult *r, int row, int col)
{
    return PQgetvalue(r, row, col)[0] == 't';
}

int pg_row_view(const PGresult *r, int row, task_view *v)
{
    int st = parse_status(PQgetvalue(r, row, C_STATUS));
    if (st < 0)
        return -EINVAL;
    v->status = (enum task_status)st;
    v->started_us = num(r, row, C_STARTED);
    v->finished_us = num(r, row, C_FINISHED);
    v->attempts = (int)num(r, row, C_ATTEMPTS);
    return 0;
}

/* Decodes a bytea column into *out (NULL for SQL NULL). */
static int bytea(const PGresult *r, int row, int col, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (PQgetisnull(r, row, col))
        return 0;
    return pgconn_unhex(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col),
                        (unsigned char **)out, len);
}

int pg_fill_result(task *t, const PGresult *r, int row)
{
    if (bytea(r, row, C_STDOUT, &t->out, &t->out_len) < 0 ||
        bytea(r, row, C_STDERR, &t->err, &t->err_len) < 0)
        return -ENOMEM;
    t->out_total = (size_t)num(r, row, C_OUT_TOTAL);
    t->out_truncated = flag(r, row, C_OUT_TRUNC);
    t->err_total = (size_t)num(r, row, C_ERR_TOTAL);
    t->err_truncated = flag(r, row, C_ERR_TRUNC);
    t->exited = !PQgetisnull(r, row, C_EXIT);
    t->exit_code = (int)num(r, row, C_EXIT);
    t->term_signal = (int)num(r, row, C_SIGNAL);
    t->timed_out = flag(r, row, C_TIMED_OUT);
    t->cpu_us = num(r, row, C_CPU);
    if (!PQgetisnull(r, row, C_ERROR) && !(t->error = strdup(PQgetvalue(r, row, C_ERROR))))
        return -ENOMEM;
    t->cancelled = flag(r, row, C_CANCELLED);
    if (pg_tests_read(t, r, row, C_TESTS, 1) < 0)
        return -ENOMEM;
    return pg_fields_fill(t, r, row, C_MEM_PEAK);
}

void pg_set_id(task *t, const char *id)
{
    uuid_parse(id, t->id);
    uuid_unparse_lower(t->id, t->id_str);
}

int tasks_pg_new(tasks_pg **out, const tasks_pg_config *cfg, char *err, size_t errsz)
{
    tasks_pg *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errsz, "out of memory");
        return -ENOMEM;
    }
    g->cfg = *cfg;
    g->cfg.url = g->url = strdup(cfg->url);
    g->wake_fd = -1;
    int rc = -ENOMEM;
    if (!g->url) {
        snprintf(err, errsz, "out of memory");
        goto fail_strings;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_mutex_init(&g->lock, NULL) || pthread_mutex_init(&g->copy_lock, NULL) ||
                 pthread_cond_init(&g->kick, &ca) || pthread_cond_init(&g->keep, &ca)
             ? -ENOMEM
             : 0;
    pthread_condattr_destroy(&ca);
    if (rc < 0) {
        snprintf(err, errsz, "cannot initialise the store's lock");
        goto fail_strings;
    }
    if ((rc = pgconn_pool_init(&g->pool, cfg->url, PG_POOL_SIZE)) < 0) {
        snprintf(err, errsz, "out of memory");
        goto fail_pool;
    }
    PGconn *c = pgconn_take(&g->pool);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        const char *m = c ? PQerrorMessage(c) : "out of memory";
        snprintf(err, errsz, "cannot connect to the store: %.*s", (int)strcspn(m, "\n"), m);
        pgconn_give(&g->pool, c);
        rc = -EIO;
        goto fail_connect;
    }
    rc = pgschema_migrate(c, err, errsz);
    pgconn_give(&g->pool, c);
    if (rc < 0)
        goto fail_connect;
    *out = g;
    return 0;

fail_connect:
    pgconn_pool_destroy(&g->pool);
fail_pool:
    pthread_cond_destroy(&g->keep);
    pthread_cond_destroy(&g->kick);
    pthread_mutex_destroy(&g->copy_lock);
    pthread_mutex_destroy(&g->lock);
fail_strings:
    free(g->url);
    free(g->name);
    free(g->advertise);
    free(g);
    return rc;
}

int tasks_pg_set_node(tasks_pg *g, const char *name, const char *advertise)
{
    free(g->name);
    free(g->advertise);
    g->name = strdup(name);
    g->advertise = strdup(advertise);
    return g->name && g->advertise ? 0 : -ENOMEM;
}

void tasks_pg_set_cancel(tasks_pg *g, void (*kill)(void *arg), void (*resume)(void *arg), void *arg)
{
    g->kill = kill;
    g->resume = resume;
    g->cancel_arg = arg;
}

int tasks_pg_nodes_json(tasks_pg *g, buf *b)
{
    char lease[32];
    snprintf(lease, sizeof lease, "%g", g->cfg.lease);
    const char *vals[] = {lease};
    PGconn *c = pgconn_take(&g->pool);
    PGresult *r = NULL;
    int rc = pgconn_exec(c, &r,
                         "SELECT name, url, workers, running,"
                         " (extract(epoch from heartbeat) * 1e6)::bigint FROM nodes"
                         " WHERE heartbeat > now() - make_interval(secs => $1) ORDER BY name",
                         1, vals, NULL, NULL);
    pgconn_give(&g->pool, c);
    if (rc < 0)
        return rc;
    buf_puts(b, "{\"nodes\":[");
    for (int i = 0; i < PQntuples(r); i++) {
        char ts[TIMEFMT_LEN];
        buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        jsonw_cstr(b, PQgetvalue(r, i, 0));
        buf_puts(b, ",\"url\":");
        jsonw_cstr(b, PQgetvalue(r, i, 1));
        buf_printf(b, ",\"workers\":%lld,\"running\":%lld,\"last_heartbeat\":\"%s\"}", num(r, i, 2),
                   num(r, i, 3), time_fmt_utc(num(r, i, 4), ts));
    }
    buf_puts(b, "]}\n");
    PQclear(r);
    return buf_failed(b) ? -ENOMEM : 0;
}

/* The backend. */

static int pg_open(void *impl, store *s, long max_finished, tasks_restored *n, char *err,
                   size_t errsz)
{
    tasks_pg *g = impl;
    (void)max_finished, (void)n, (void)err, (void)errsz; /* retention is service-wide */
    g->s = s;
    return 0;
}

static void pg_admit_restored(void *impl, queue *q)
{
    tasks_pg *g = impl;
    g->q = q;
    /* This node's tasks from before a restart under the same name: nobody
     * else would, since its heartbeat goes on. Unreachable now, the
     * claimer's check of dead nodes gets them later. */
    if (!g->name)
        return; /* tasks_pg_set_node was not called: the node cannot run */
    PGconn *c = pgconn_take(&g->pool);
    pg_requeue_node(g, c, g->name, NULL);
    pgconn_give(&g->pool, c);
    pg_threads_start(g);
}

/* INSERT of a new task: without a waiting room, one statement; with one,
 * under a transaction-scoped advisory lock so that two nodes admitting at
 * once cannot both take the last place. The waiting room is counted
 * beyond the service's idle workers, as the queue of one node does. */
static const char *const insert_sql =
    "INSERT INTO tasks (id, type, status, args, file, stdin, env, lang, limits, tests, files)"
    " VALUES ($1, $2, 'WAIT', $3, $4, $5, $6, $7, $8::double precision[], $9, $10)"
    " RETURNING (extract(epoch from created) * 1e6)::bigint";
static const char *const admit_sql =
    "INSERT INTO tasks (id, type, status, args, file, stdin, env, lang, limits, tests, files)"
    " SELECT $1, $2, 'WAIT', $3, $4, $5, $6, $7, $8::double precision[], $9, $10"
    " WHERE (SELECT count(*) FROM tasks WHERE status = 'WAIT') < $11::bigint +"
    "  (SELECT coalesce(sum(greatest(workers - running, 0)), 0) FROM nodes"
    "   WHERE heartbeat > now() - make_interval(secs => $12))"
    " RETURNING (extract(epoch from created) * 1e6)::bigint";

/* The task whose row this thread wrote or read last, and g->done_seen
 * before that: the long poll that follows on the same connection thread
 * (create_task?wait=S, or get_status?wait=S after its lookup) need not
 * read the row again unless the listener took an end of it since
 * (pg_watch). */
static _Thread_local struct {
    const tasks_pg *g;
    unsigned char id[16];
    unsigned long seen;
} last_read;

/* g->done_seen now. */
static unsigned long done_seen(tasks_pg *g)
{
    pthread_mutex_lock(&g->lock);
    unsigned long seen = g->done_seen;
    pthread_mutex_unlock(&g->lock);
    return seen;
}

static void set_last_read(tasks_pg *g, const task *t, unsigned long seen)
{
    last_read.g = g;
    memcpy(last_read.id, t->id, sizeof last_read.id);
    last_read.seen = seen;
}

static int pg_add(void *impl, task *t)
{
    tasks_pg *g = impl;
    char *args = NULL, *env = NULL, maxq[32], lease[32], limits[PG_LIMITS_LEN];
    unsigned char *files = NULL;
    size_t alen, elen, flen;
    buf tests = BUF_INIT;
    if (pgconn_pack_strings(t->args, t->argc, &args, &alen) < 0 ||
        pgconn_pack_strings(t->env, t->envc, &env, &elen) < 0 ||
        (t->tests && testset_write_cases(&tests, t->tests) < 0) ||
        request_files_pack(t->files, t->nfiles, &files, &flen) < 0) {
        free(args);
        free(env);
        free(files);
        buf_destroy(&tests);
        return -ENOMEM;
    }
    snprintf(maxq, sizeof maxq, "%ld", g->cfg.max_queue);
    snprintf(lease, sizeof lease, "%g", g->cfg.lease);
    const char *vals[] = {t->id_str,
                          task_type_name(t->type),
                          args,
                          t->file ? (const char *)t->file : "",
                          (const char *)t->input,
                          env,
                          t->lang,
                          pg_limits_param(&t->limits, limits, sizeof limits),
                          t->tests ? (tests.data ? tests.data : "") : NULL,
                          (const char *)files,
                          maxq,
                          lease};
    const int lens[] = {0,         0, (int)alen, (int)t->file_len, (int)t->input_len,
                        (int)elen, 0, 0,         (int)tests.len,   (int)flen,
                        0,         0};
    const int fmts[] = {0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0};
    int limited = g->cfg.max_queue >= 0;
    unsigned long seen = done_seen(g);
    PGconn *c = pgconn_take(&g->pool);
    PGresult *r = NULL;
    /* The admission's four statements go in one round trip: the lock is
     * taken by the second, and the count is read by the third, whose
     * snapshot comes after it. */
    const pgconn_query admit[] = {
        {"BEGIN", 0, NULL, NULL, NULL, NULL},
        {"SELECT pg_advisory_xact_lock(7340032002)", 0, NULL, NULL, NULL, NULL},
        {admit_sql, 12, vals, lens, fmts, &r},
        {"COMMIT", 0, NULL, NULL, NULL, NULL}};
    int rc = limited ? pgconn_exec_batch(c, admit, 4)
                     : pgconn_exec(c, &r, insert_sql, 10, vals, lens, fmts);
    if (rc == -EIO && (!c || PQstatus(c) != CONNECTION_OK))
        rc = -ENOTCONN; /* the database is down: a sentence of its own */
    pgconn_give(&g->pool, c);
    free(args);
    free(env);
    free(files);
    buf_destroy(&tests);
    if (rc == 0 && PQntuples(r) == 0)
        rc = -EAGAIN;
    if (rc == 0)
        t->created_us = num(r, 0, 0); /* the database's clock, as every node reads it */
    PQclear(r);
    if (rc < 0)
        return rc;
    set_last_read(g, t, seen);
    /* Whichever node claims it reads the program from the row: this copy
     * only answers for the task. */
    task_drop_program(t);
    task_drop_args(t);
    /* This node's claimer need not wait for its own NOTIFY to come back,
     * nor be woken at all while it would claim nothing (every worker busy
     * and one task ahead): the worker that ends next kicks it. Other nodes
     * hear of the task from the keeper, after the commit. */
    if (pg_claim_room(g) > 0)
        pg_kick(g);
    pg_notify_new(g);
    return 0;
}

static void pg_forget(void *impl, task *t)
{
    (void)impl, (void)t; /* never called: admission is part of add */
}

static task *pg_lookup(void *impl, const char *id)
{
    tasks_pg *g = impl;
    uuid_t u;
    if (uuid_parse(id, u) < 0)
        return NULL;
    const char *vals[] = {id};
    unsigned long seen = done_seen(g);
    PGconn *c = pgconn_take(&g->pool);
    PGresult *r = NULL;
    int rc = pgconn_exec(c, &r, pg_row_select, 1, vals, NULL, NULL);
    pgconn_give(&g->pool, c);
    if (rc < 0 || PQntuples(r) != 1) {
        PQclear(r);
        return NULL;
    }
    task *t = NULL;
    task_view v;
    int type = pg_parse_type(PQgetvalue(r, 0, C_TYPE));
    if (type >= 0 && pg_row_view(r, 0, &v) == 0)
        t = task_new((enum task_type)type, NULL, 0, NULL, 0);
    if (t && type == TASK_LANG && !PQgetisnull(r, 0, C_LANG)) {
        char *lang = strdup(PQgetvalue(r, 0, C_LANG));
        task_set_lang(t, lang);
        if (!lang) {
            task_unref(t);
            t = NULL;
        }
    }
    if (t) {
        pg_set_id(t, id);
        t->created_us = num(r, 0, C_CREATED);
        t->status = v.status;
        t->started_us = v.started_us;
        t->finished_us = v.finished_us;
        t->attempts = v.attempts;
        if (task_status_final(v.status) && pg_fill_result(t, r, 0) < 0) {
            task_unref(t);
            t = NULL;
        }
    }
    if (t)
        set_last_read(g, t, seen);
    PQclear(r);
    return t;
}

/* Finds and unlinks the claim of t. Returns it (caller frees) or NULL. */
static pg_claim *take_claim(tasks_pg *g, const task *t)
{
    pthread_mutex_lock(&g->lock);
    pg_claim **p = &g->claims, *cl;
    while ((cl = *p) && memcmp(cl->id, t->id, sizeof cl->id))
        p = &cl->next;
    if (cl)
        *p = cl->next;
    pthread_mutex_unlock(&g->lock);
    return cl;
}

static int pg_started(void *impl, task *t)
{
    tasks_pg *g = impl;
    /* The claim already recorded the start (and its attempt). */
    pthread_mutex_lock(&g->lock);
    for (pg_claim *cl = g->claims; cl; cl = cl->next)
        if (!memcmp(cl->id, t->id, sizeof cl->id))
            cl->started = 1;
    pthread_mutex_unlock(&g->lock);
    return 0;
}

/* The result of a run under its lease. A row another node cancelled
 * meanwhile (pg_cancel: final, the lease kept) takes the run's output so
 * far but keeps its end: ERROR "cancelled", as the cancel answered. */
static const char *const finish_sql =
    "UPDATE tasks SET status = CASE WHEN status = 'RUNNING' THEN $3 ELSE status END,"
    " finished = CASE WHEN status = 'RUNNING' THEN now() ELSE finished END,"
    " error = CASE WHEN status = 'RUNNING' THEN $14 ELSE error END,"
    " limit_hit = CASE WHEN status = 'RUNNING' THEN $16 END,"
    " timed_out = CASE WHEN status = 'RUNNING' THEN $12::boolean ELSE false END,"
    " stdout = $4, stderr = $5,"
    " stdout_total = $6, stdout_truncated = $7, stderr_total = $8, stderr_truncated = $9,"
    " exit_code = $10, signal = $11, cpu_us = $13,"
    " memory_peak = $15, tests = $17, compiled = $18, compile_output = $19,"
    " compile_exit_code = $20,"
    " cancelled = CASE WHEN status = 'RUNNING' THEN $21::boolean ELSE cancelled END,"
    " args = NULL, file = NULL, stdin = NULL, env = NULL, files = NULL, lease = NULL"
    " WHERE id = $1 AND lease = $2"
    "  AND (status = 'RUNNING' OR (status = 'ERROR' AND cancelled))"
    " RETURNING (extract(epoch from finished) * 1e6)::bigint, cancelled";

/* Writes t's result under its lease. Returns 1 written (*finished_us
 * set, *cancelled when the row now says cancelled), 0 fenced off (the
 * lease is not ours any more), -EIO unreachable. */
static int write_result(tasks_pg *g, const task *t, const pg_claim *cl, enum task_status final,
                        int64_t *finished_us, int *cancelled)
{
    char ot[24], et[24], code[16], sig[16], cpu[24], peak[24], ccode[16];
    snprintf(ot, sizeof ot, "%zu", t->out_total);
    snprintf(et, sizeof et, "%zu", t->err_total);
    snprintf(code, sizeof code, "%d", t->exit_code);
    snprintf(sig, sizeof sig, "%d", t->term_signal);
    snprintf(cpu, sizeof cpu, "%lld", (long long)t->cpu_us);
    snprintf(peak, sizeof peak, "%lld", (long long)t->mem_peak);
    snprintf(ccode, sizeof ccode, "%d", t->compile_exit_code);
    /* As the journal: the tests column now holds the rendered results. */
    const testset *ts = t->tests && t->tests->ended ? t->tests : NULL;
    const char *vals[] = {t->id_str,
                          cl->lease,
                          task_status_name(final),
                          t->out ? t->out : "",
                          t->err ? t->err : "",
                          ot,
                          t->out_truncated ? "true" : "false",
                          et,
                          t->err_truncated ? "true" : "false",
                          t->exited ? code : NULL,
                          t->term_signal ? sig : NULL,
                          t->timed_out ? "true" : "false",
                          cpu,
                          t->error,
                          t->mem_peak > 0 ? peak : NULL,
                          t->limit,
                          ts ? (ts->rendered.data ? ts->rendered.data : "") : NULL,
                          t->compiled ? "true" : "false",
                          t->compiled ? (t->compile_out ? t->compile_out : "") : NULL,
                          t->compiled && t->compile_exited ? ccode : NULL,
                          t->cancelled ? "true" : "false"};
    const int lens[21] = {[3] = (int)t->out_len,
                          [4] = (int)t->err_len,
                          [16] = ts ? (int)ts->rendered.len : 0,
                          [18] = (int)t->compile_out_len};
    const int fmts[21] = {[3] = 1, [4] = 1, [16] = 1, [18] = 1};
    PGconn *c = pgconn_take(&g->pool);
    PGresult *r = NULL;
    int rc = pgconn_exec(c, &r, finish_sql, 21, vals, lens, fmts);
    pgconn_give(&g->pool, c);
    if (rc < 0)
        return rc;
    rc = PQntuples(r) == 1;
    if (rc) {
        *finished_us = num(r, 0, 0);
        *cancelled = flag(r, 0, 1);
    }
    PQclear(r);
    return rc;
}

/* t as its row now reads: cancelled from another node as its run ended
 * here, with another end (SUCCESS, a timeout). */
static enum task_status as_cancelled(task *t)
{
    free(t->error);
    t->error = strdup(PG_CANCELLED);
    t->limit = NULL;
    t->timed_out = 0;
    t->cancelled = 1;
    return TASK_ERROR;
}

/* Long polls here on copies of t (its create_task?wait=S, a get_status
 * that came while it waited) get t's result from memory at once, written
 * into their copies by this thread: neither waiting for the NOTIFY to come
 * back nor reading the row nor waking the listener to copy it (one thread
 * hand-off a task fewer). A copy it cannot write (no memory) is left to
 * the listener, which reads the row. */
static void wake_copies(tasks_pg *g, task *t)
{
    task *copies[8];
    size_t n = 0;
    int poke = 0;
    pthread_mutex_lock(&g->lock);
    for (pg_watcher *w = g->watches; w; w = w->next) {
        if (memcmp(w->t->id, t->id, sizeof t->id) || w->done)
            continue;
        w->done = task_ref(t);
        if (n < sizeof copies / sizeof *copies)
            copies[n++] = task_ref(w->t);
        else
            poke = w->fresh = 1;
    }
    pthread_mutex_unlock(&g->lock);
    for (size_t i = 0; i < n; i++) {
        if (pg_copy_end(g, copies[i], t) < 0) {
            pthread_mutex_lock(&g->lock);
            for (pg_watcher *w = g->watches; w; w = w->next)
                if (w->t == copies[i])
                    poke = w->fresh = 1;
            pthread_mutex_unlock(&g->lock);
        }
        task_unref(copies[i]);
    }
    if (poke)
        pg_poke_listener(g);
}

static void pg_finished(void *impl, store *s, task *t, enum task_status final)
{
    tasks_pg *g = impl;
    pg_claim *cl = take_claim(g, t);
    int64_t finished_us = 0;
    int rc = -EIO, cancelled = 0;
    /* Retried while this node's lease lasts: a result that reaches the
     * database before another node gives the task up for dead is kept. */
    while (cl && !atomic_load(&g->lost) &&
           (rc = write_result(g, t, cl, final, &finished_us, &cancelled)) < 0)
        nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
    if (rc == 1 && cancelled && !t->cancelled)
        final = as_cancelled(t);
    if (rc == 1) {
        store_mark_finished_at(s, t, final, finished_us);
        pg_notify_done(g, t->id_str);
        wake_copies(g, t);
    } else {
        log_warn("task %s: result dropped: %s", t->id_str,
                 rc == 0 ? "its lease was taken over (the task was given to another node)"
                         : "this node lost the store for longer than its lease");
        store_drop(s, t);
    }
    free(cl);
    pg_kick(g);
}

void pg_cancel_here(tasks_pg *g, const char *id, int dequeue)
{
    task *t = store_lookup(g->s, id);
    if (!t)
        return;
    if (dequeue && g->q && queue_remove(g->q, t)) {
        /* Claimed ahead of a free worker: it ends now, never run, as
         * tasks_end_cancelled ends a task of a node's own queue. */
        t->cancelled = 1;
        if (!t->error)
            t->error = strdup(PG_CANCELLED);
        task_drop_program(t);
        task_drop_args(t);
        log_info("task %s %s ERROR: cancelled before it started", t->id_str,
                 task_type_name(t->type));
        pg_finished(g, g->s, t, TASK_ERROR);
        task_unref(t); /* the queue's */
    } else {
        store_cancel(g->s, t); /* its worker kills the run (-EALREADY: it ended) */
    }
    task_unref(t);
}

/* Ends a row that is not final as cancelled, in one statement: a waiting
 * row leaves the queue with it (a claim's SKIP LOCKED passes it while it
 * is locked, and finds it final after), a running one fences off its
 * run's result (finish_sql wants RUNNING). The lease stays, for that run
 * to add its output so far. The subquery's lock reads the row as it is
 * once a claim that holds it has committed: its status and node then. */
static const char *const cancel_sql =
    "UPDATE tasks t SET status = 'ERROR', error = '" PG_CANCELLED "', cancelled = true,"
    " finished = now(),"
    " started = coalesce(t.started, now()), args = NULL, file = NULL, stdin = NULL, env = NULL,"
    " files = NULL"
    " FROM (SELECT id, status, node FROM tasks WHERE id = $1 FOR UPDATE) o"
    " WHERE t.id = o.id AND o.status IN ('WAIT', 'RUNNING')"
    " RETURNING o.status, o.node, EXISTS (SELECT 1 FROM nodes n WHERE n.name = o.node"
    "  AND n.heartbeat > now() - make_interval(secs => $2))";

/* How long a cancel waits for the node that ran the task to add its
 * output so far: the NOTIFY, the kill and the write take a few
 * milliseconds between live nodes; a node that does not answer within
 * this leaves the row without its output. */
#define PG_CANCEL_OUTPUT_US (3 * 1000000)

/* Waits until the run of id has written its output (its lease is gone),
 * PG_CANCEL_OUTPUT_US passes or the database does not answer. */
static void wait_output(tasks_pg *g, const char *id)
{
    const char *vals[] = {id};
    int64_t deadline = time_mono_us() + PG_CANCEL_OUTPUT_US;
    for (;;) {
        PGconn *c = pgconn_take(&g->pool);
        PGresult *r = NULL;
        int rc = pgconn_exec(c, &r, "SELECT 1 FROM tasks WHERE id = $1 AND lease IS NOT NULL", 1,
                             vals, NULL, NULL);
        pgconn_give(&g->pool, c);
        int waiting = rc == 0 && PQntuples(r) == 1;
        PQclear(r);
        if (!waiting || time_mono_us() >= deadline)
            return;
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
}

static int pg_cancel(void *impl, task *t)
{
    tasks_pg *g = impl;
    char lease[32];
    snprintf(lease, sizeof lease, "%g", g->cfg.lease);
    const char *vals[] = {t->id_str, lease};
    PGconn *c = pgconn_take(&g->pool);
    PGresult *r = NULL;
    int rc = pgconn_exec(c, &r, cancel_sql, 2, vals, NULL, NULL);
    if (rc == 0 && PQntuples(r) == 0)
        rc = -EALREADY; /* final already (or deleted since the lookup) */
    int running = rc == 0 && strcmp(PQgetvalue(r, 0, 0), "RUNNING") == 0;
    int here = running && g->name && strcmp(PQgetvalue(r, 0, 1), g->name) == 0;
    int alive = running && flag(r, 0, 2);
    /* Outside the data transaction, which has committed: the node that
     * runs it kills the run at once (a node that misses it finds the row
     * final at its keeper's next check). */
    if (alive && !here)
        pgconn_exec(c, NULL, "SELECT pg_notify('ts_cancel', $1)", 1, vals, NULL, NULL);
    pgconn_give(&g->pool, c);
    PQclear(r);
    if (rc < 0)
        return rc == -EALREADY ? rc : -EIO;
    log_info("task %s cancelled (%s)", t->id_str,
             !running ? "waiting"
             : here   ? "claimed here"
             : alive  ? "running on another node"
                      : "its node is dead");
    if (here)
        pg_cancel_here(g, t->id_str, 1); /* claimed here since the lookup */
    if (here || alive)
        wait_output(g, t->id_str); /* its run sends ts_done with the output */
    else
        pg_notify_done(g, t->id_str); /* no run to wait for: long polls end now */
    return 0;
}

static int pg_runner_url(void *impl, const task *t, char *url, size_t n)
{
    tasks_pg *g = impl;
    char lease[32];
    snprintf(lease, sizeof lease, "%g", g->cfg.lease);
    const char *vals[] = {t->id_str, g->name ? g->name : "", lease};
    PGconn *c = pgconn_take(&g->pool);
    PGresult *r = NULL;
    int rc = pgconn_exec(c, &r,
                         "SELECT n.url FROM tasks t JOIN nodes n ON n.name = t.node"
                         " WHERE t.id = $1 AND t.status = 'RUNNING' AND n.name <> $2"
                         " AND n.heartbeat > now() - make_interval(secs => $3)",
                         3, vals, NULL, NULL);
    pgconn_give(&g->pool, c);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    if (PQntuples(r) == 1) {
        const char *u = PQgetvalue(r, 0, 0);
        size_t len = strlen(u);
        /* It goes into a Location header: one line of printable bytes. */
        int clean = len > 0 && len < n;
        for (size_t i = 0; clean && i < len; i++)
            clean = (unsigned char)u[i] > 0x20 && (unsigned char)u[i] < 0x7f;
        if (clean) {
            memcpy(url, u, len + 1);
            while (len > 0 && url[len - 1] == '/')
                url[--len] = '\0';
            rc = 0;
        }
    }
    PQclear(r);
    return rc;
}

static void pg_evict(void *impl, task *t)
{
    (void)impl, (void)t; /* this node's copy only: the row stays for every node */
}

static void pg_watch(void *impl, task *t)
{
    tasks_pg *g = impl;
    pg_watcher *w = malloc(sizeof *w);
    if (!w)
        return; /* the long poll then waits out its deadline */
    w->t = task_ref(t);
    w->fresh = 0;
    w->done = NULL;
    int mine = last_read.g == g && !memcmp(last_read.id, t->id, sizeof t->id);
    last_read.g = NULL;
    pthread_mutex_lock(&g->lock);
    w->next = g->watches;
    g->watches = w;
    /* The listener reads the row of a new watch, in case its end came
     * before the watch: not for a task this thread has just inserted or
     * read when no end of it reached the listener since (a later one finds
     * the watch). It was one statement of five per trivial task
     * (log_statement=all); with the ends counted but not named, still a
     * quarter of a statement a task under load. */
    int read = !mine || pg_seen_since(g, t->id, last_read.seen);
    pthread_mutex_unlock(&g->lock);
    /* Nor when this node has run it: the end is here (a result fenced
     * off is not, so a task still running here is read as any other). */
    task *here = read ? store_lookup(g->s, t->id_str) : NULL;
    if (here && task_status_final(store_view(g->s, here, 0).status)) {
        pthread_mutex_lock(&g->lock);
        if (!w->done)
            w->done = task_ref(here); /* the listener copies it */
        pthread_mutex_unlock(&g->lock);
    }
    task_unref(here);
    if (read) {
        pthread_mutex_lock(&g->lock);
        w->fresh = 1;
        pthread_mutex_unlock(&g->lock);
        pg_poke_listener(g);
    }
}

static void pg_unwatch(void *impl, task *t)
{
    tasks_pg *g = impl;
    pthread_mutex_lock(&g->lock);
    pg_watcher **p = &g->watches, *w;
    while ((w = *p) && w->t != t)
        p = &w->next;
    if (w)
        *p = w->next;
    pthread_mutex_unlock(&g->lock);
    if (w) {
        task_unref(w->t);
        task_unref(w->done);
        free(w);
    }
}

static int pg_counts(void *impl, tasks_counts *n)
{
    tasks_pg *g = impl;
    PGconn *c = pgconn_take(&g->pool);
    PGresult *r = NULL;
    int rc = pgconn_exec(c, &r,
                         "SELECT count(*) FILTER (WHERE status = 'WAIT'),"
                         " count(*) FILTER (WHERE status = 'RUNNING'),"
                         " count(*) FILTER (WHERE status IN ('SUCCESS', 'ERROR')), count(*),"
                         " (SELECT CASE WHEN is_called THEN last_value ELSE 0 END"
                         "  FROM tasks_seq_seq) FROM tasks",
                         0, NULL, NULL, NULL);
    pgconn_give(&g->pool, c);
    if (rc < 0)
        return rc;
    *n = (tasks_counts){.queued = num(r, 0, 0),
                        .waiting = num(r, 0, 0),
                        .running = num(r, 0, 1),
                        .finished = num(r, 0, 2),
                        .total = num(r, 0, 4),
                        .evicted = num(r, 0, 4) - num(r, 0, 3)};
    PQclear(r);
    return 0;
}

static void pg_close(void *impl)
{
    tasks_pg *g = impl;
    if (!g)
        return;
    pg_threads_stop(g);
    /* What this node claimed and will not finish goes back to the queue;
     * a claim that never started gives its attempt back. */
    PGconn *c = pgconn_take(&g->pool);
    for (pg_claim *cl = g->claims, *next; cl; cl = next) {
        next = cl->next;
        char id[37];
        uuid_unparse_lower(cl->id, id);
        const char *vals[] = {id, cl->lease, cl->started ? "0" : "1"};
        pgconn_exec(c, NULL,
                    "UPDATE tasks SET status = 'WAIT', node = NULL, lease = NULL,"
                    " started = NULL, attempts = attempts - $3::integer"
                    " WHERE id = $1 AND lease = $2 AND status = 'RUNNING'",
                    3, vals, NULL, NULL);
        free(cl);
    }
    const char *me[] = {g->name};
    pgconn_exec(c, NULL, "DELETE FROM nodes WHERE name = $1", 1, me, NULL, NULL);
    pgconn_exec(c, NULL, "SELECT pg_notify('ts_new', '')", 0, NULL, NULL, NULL);
    pgconn_give(&g->pool, c);
    for (pg_watcher *w = g->watches, *next; w; w = next) {
        next = w->next;
        task_unref(w->t);
        task_unref(w->done);
        free(w);
    }
    buf_destroy(&g->done);
    pgconn_pool_destroy(&g->pool);
    pthread_cond_destroy(&g->keep);
    pthread_cond_destroy(&g->kick);
    pthread_mutex_destroy(&g->copy_lock);
    pthread_mutex_destroy(&g->lock);
    free(g->url);
    free(g->name);
    free(g->advertise);
    free(g);
}

const tasks_backend_ops tasks_pg_ops = {
    .name = "store",
    .durable = 1,
    .open = pg_open,
    .admit_restored = pg_admit_restored,
    .add = pg_add,
    .forget = pg_forget,
    .started = pg_started,
    .finished = pg_finished,
    .evict = pg_evict,
    .close = pg_close,
    .shared_queue = 1,
    .lookup = pg_lookup,
    .watch = pg_watch,
    .unwatch = pg_unwatch,
    .counts = pg_counts,
    .cancel = pg_cancel,
    .runner_url = pg_runner_url,
};
