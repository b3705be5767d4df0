/* tasks_pg_threads: the shared store's three threads, each with its own
 * connection. The claimer takes waiting tasks for the idle workers, every
 * second gives up dead nodes' tasks and, every 5 s, applies retention and
 * forgets long-dead nodes; the listener follows NOTIFY ts_new (wakes the
 * claimer), ts_done (updates the copies long polls wait on) and ts_cancel
 * (kills a run of this node that another node cancelled); the keeper
 * heartbeats, notices that this node lost its lease or that a row it runs
 * ended elsewhere, and sends the batched NOTIFY ts_done. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "log.h"
#include "tasks_pg_int.h"
#include "timefmt.h"

#define SECOND_US 1000000
/* A NOTIFY payload must stay under 8000 bytes: this many ids a NOTIFY. */
#define IDS_PER_NOTIFY 200
/* The keeper sends at most one NOTIFY (ts_done with every id that ended
 * since, and ts_new) this often. Two a task (ts_new inside the insert's
 * transaction) cost the database a transaction each, serialised commits on
 * the notification queue and woke every listening backend and listener
 * thread: trivial tasks through one node, 8 clients, 3000 tasks, went
 * from 915 to 365 NOTIFY statements a thousand tasks, from 776-843 to
 * 556-690 us of PostgreSQL CPU a task and 723-766 to 550-663 us of the
 * node's. It delays a cross-node wake-up by as much at most under load,
 * and not at all when a NOTIFY is the first for that long. */
#define NOTIFY_EVERY_US 4000
/* Retention deletes scan the finished rows: not at every tick. */
#define RETENTION_EVERY_US (5 * SECOND_US)
/* A node silent this many leases is forgotten (its row deleted): far
 * beyond any pause a node comes back from, and a node that does come back
 * writes its row again with its next heartbeat. */
#define NODE_FORGET_LEASES 100

static int stopping(tasks_pg *g)
{
    pthread_mutex_lock(&g->lock);
    int s = g->stop;
    pthread_mutex_unlock(&g->lock);
    return s;
}

/* Waits on cond until *flag, stop or deadline_mono_us; g->lock held. */
static void wait_until(tasks_pg *g, pthread_cond_t *cond, const int *flag, int64_t deadline)
{
    struct timespec ts = {deadline / SECOND_US, (deadline % SECOND_US) * 1000};
    while (!*flag && !g->stop && time_mono_us() < deadline)
        if (pthread_cond_timedwait(cond, &g->lock, &ts) == ETIMEDOUT)
            break;
}

void pg_kick(tasks_pg *g)
{
    pthread_mutex_lock(&g->lock);
    g->kicked = 1;
    pthread_cond_signal(&g->kick);
    pthread_mutex_unlock(&g->lock);
}

void pg_poke_listener(tasks_pg *g)
{
    uint64_t one = 1;
    ssize_t n = write(g->wake_fd, &one, sizeof one);
    (void)n; /* the eventfd only overflows after 2^64 pokes */
}

/* Marks something for the keeper to notify; g->lock held. The keeper is
 * woken only by the first: it then sleeps out NOTIFY_EVERY_US anyway. */
static void want_notify(tasks_pg *g)
{
    if (!g->pending)
        pthread_cond_signal(&g->keep);
    g->pending = 1;
}

void pg_notify_done(tasks_pg *g, const char *id)
{
    pthread_mutex_lock(&g->lock);
    buf_printf(&g->done, "%s%s", g->done.len ? "," : "", id);
    want_notify(g);
    pthread_mutex_unlock(&g->lock);
}

void pg_notify_new(tasks_pg *g)
{
    pthread_mutex_lock(&g->lock);
    g->inserted_here = 1;
    want_notify(g);
    pthread_mutex_unlock(&g->lock);
}

static void notify_new(PGconn *c)
{
    pgconn_exec(c, NULL, "SELECT pg_notify('ts_new', '')", 0, NULL, NULL, NULL);
}

int pg_requeue_node(tasks_pg *g, PGconn *c, const char *name, tasks_restored *n)
{
    char who[32], max[16];
    snprintf(who, sizeof who, "%g", g->cfg.lease);
    snprintf(max, sizeof max, "%d", g->cfg.max_attempts);
    const char *vals[] = {name ? name : who, max, g->cfg.fail_running ? "true" : "false"};
#define AGAIN "attempts < $2::integer AND NOT $3::boolean"
    const char *head =
        "UPDATE tasks SET status = CASE WHEN " AGAIN " THEN 'WAIT' ELSE 'ERROR' END,"
        " error = CASE WHEN " AGAIN " THEN NULL ELSE 'node lost: ' || node ||"
        " ' stopped while the task ran (attempt ' || attempts || ' of ' || $2::integer || ')' END,"
        " finished = CASE WHEN " AGAIN " THEN NULL ELSE now() END,"
        " started = CASE WHEN " AGAIN " THEN NULL ELSE started END,"
        " stdout_total = 0, stderr_total = 0, node = NULL, lease = NULL"
        " WHERE status = 'RUNNING' AND ";
#undef AGAIN
    char sql[1024];
    snprintf(sql, sizeof sql, "%s%s RETURNING id, status", head,
             name ? "node = $1"
                  : "node IN (SELECT name FROM nodes"
                    " WHERE heartbeat < now() - make_interval(secs => $1::double precision))");
    PGresult *r = NULL;
    int rc = pgconn_exec(c, &r, sql, 3, vals, NULL, NULL);
    if (rc < 0)
        return rc;
    long again = 0, lost = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        if (strcmp(PQgetvalue(r, i, 1), "WAIT") == 0) {
            again++;
        } else {
            lost++;
            pg_notify_done(g, PQgetvalue(r, i, 0));
        }
    }
    PQclear(r);
    if (again + lost)
        log_warn("store: %ld tasks of %s requeued, %ld ended \"node lost\"", again,
                 name ? name : "dead nodes", lost);
    if (again) {
        notify_new(c);
        pg_kick(g);
    }
    if (n) {
        n->requeued = again;
        n->interrupted = lost;
    }
    return 0;
}

/* The claimer. */

static const char *const claim_sql =
    "UPDATE tasks t SET status = 'RUNNING', node = $1, lease = gen_random_uuid(),"
    " attempts = t.attempts + 1, started = now()"
    " FROM (SELECT id FROM tasks WHERE status = 'WAIT' ORDER BY seq LIMIT $2"
    "  FOR UPDATE SKIP LOCKED) w"
    " WHERE t.id = w.id"
    " RETURNING t.seq, t.id, t.lease, t.attempts, t.type,"
    " (extract(epoch from t.created) * 1e6)::bigint, t.args, t.file, t.stdin, t.env, t.lang,"
    " t.limits, t.tests, t.files, (extract(epoch from t.started) * 1e6)::bigint";
enum {
    K_SEQ,
    K_ID,
    K_LEASE,
    K_ATTEMPTS,
    K_TYPE,
    K_CREATED,
    K_ARGS,
    K_FILE,
    K_STDIN,
    K_ENV,
    K_LANG,
    K_LIMITS,
    K_TESTS,
    K_FILES,
    K_STARTED
};

/* Decodes a bytea column, NULL staying NULL. */
static int col_bytes(const PGresult *r, int row, int col, unsigned char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (PQgetisnull(r, row, col))
        return 0;
    return pgconn_unhex(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col), out, len);
}

/* Gives t the language, limits, tests and files of a claimed row. Returns
 * 0, or -EINVAL (a row no tasksolver wrote) / -ENOMEM. */
static int claimed_fields(task *t, const PGresult *r, int row)
{
    if (t->type == TASK_LANG) {
        if (PQgetisnull(r, row, K_LANG))
            return -EINVAL;
        char *lang = strdup(PQgetvalue(r, row, K_LANG));
        if (!lang)
            return -ENOMEM;
        task_set_lang(t, lang);
    }
    if (!PQgetisnull(r, row, K_LIMITS) &&
        pg_limits_parse(PQgetvalue(r, row, K_LIMITS), &t->limits) < 0)
        return -EINVAL;
    int rc = pg_tests_read(t, r, row, K_TESTS, 0);
    return rc < 0 ? rc : pg_files_read(t, r, row, K_FILES);
}

/* A task from a claimed row, ready to queue. Returns it (one reference)
 * or NULL (a row no tasksolver wrote, or out of memory). */
static task *claimed_task(tasks_pg *g, const PGresult *r, int row)
{
    unsigned char *file = NULL, *in = NULL, *blob = NULL;
    size_t flen, inlen, blen;
    char **args = NULL, **env = NULL;
    int argc = 0, envc = 0;
    int type = pg_parse_type(PQgetvalue(r, row, K_TYPE));
    if (type < 0 || col_bytes(r, row, K_FILE, &file, &flen) < 0 || !file)
        goto fail;
    if (col_bytes(r, row, K_ARGS, &blob, &blen) < 0 ||
        pgconn_unpack_strings(blob, blen, &args, &argc) < 0)
        goto fail;
    free(blob);
    blob = NULL;
    if (col_bytes(r, row, K_ENV, &blob, &blen) < 0 ||
        pgconn_unpack_strings(blob, blen, &env, &envc) < 0)
        goto fail;
    free(blob);
    blob = NULL;
    if (col_bytes(r, row, K_STDIN, &in, &inlen) < 0)
        goto fail;
    task *t = task_new((enum task_type)type, file, flen, args, argc);
    file = NULL;
    args = NULL;
    if (!t)
        goto fail;
    task_set_input(t, in, inlen, env, envc);
    if (claimed_fields(t, r, row) < 0) {
        task_unref(t);
        return NULL;
    }
    pg_set_id(t, PQgetvalue(r, row, K_ID));
    t->created_us = strtoll(PQgetvalue(r, row, K_CREATED), NULL, 10);
    /* store_mark_running counts the start the claim recorded, and keeps
     * its time: every node reports the database's clock, this one too
     * while it runs the task. */
    t->attempts = atoi(PQgetvalue(r, row, K_ATTEMPTS)) - 1;
    t->started_us = strtoll(PQgetvalue(r, row, K_STARTED), NULL, 10);
    task_hold_restored(t, g->cfg.budget);
    (void)g;
    return t;

fail:
    free(file);
    free(in);
    free(blob);
    task_args_free(args);
    task_args_free(env);
    return NULL;
}

static int by_seq(const void *a, const void *b)
{
    long long x = ((const long long *)a)[0], y = ((const long long *)b)[0];
    return (x > y) - (x < y);
}

/* One task ahead: a worker that finishes finds its next task queued
 * instead of waiting for a claim's round trip (trivial tasks through one
 * node, 8 clients: see README). */
long pg_claim_room(tasks_pg *g)
{
    store_counts sc = store_get_counts(g->s);
    return g->cfg.workers + 1L - sc.running - sc.waiting;
}

/* Claims for the idle workers, and one task ahead (pg_claim_room). Returns
 * how many it queued; *more is set when it got all it asked for (more may
 * wait). */
static int claim(tasks_pg *g, PGconn *c, int *more)
{
    *more = 0;
    long idle = pg_claim_room(g);
    if (idle <= 0 || g->queue_closed)
        return 0;
    char n[24];
    snprintf(n, sizeof n, "%ld", idle);
    const char *vals[] = {g->name, n};
    PGresult *r = NULL;
    if (pgconn_exec(c, &r, claim_sql, 2, vals, NULL, NULL) < 0)
        return 0;
    int rows = PQntuples(r);
    *more = rows == idle;
    /* Oldest first, as one node's queue would run them. */
    long long(*order)[2] = calloc((size_t)rows + 1, sizeof *order);
    for (int i = 0; order && i < rows; i++) {
        order[i][0] = strtoll(PQgetvalue(r, i, K_SEQ), NULL, 10);
        order[i][1] = i;
    }
    if (order)
        qsort(order, (size_t)rows, sizeof *order, by_seq);
    int queued = 0;
    for (int k = 0; k < rows; k++) {
        int i = order ? (int)order[k][1] : k;
        const char *id = PQgetvalue(r, i, K_ID);
        task *t = claimed_task(g, r, i);
        pg_claim *cl = t ? calloc(1, sizeof *cl) : NULL;
        task *old = t ? store_lookup(g->s, id) : NULL;
        if (!cl || old) {
            /* Left RUNNING under a lease nobody renews: the row comes back
             * when this node stops; it is not expected to happen. */
            log_error("store: task %s claimed but not run here: %s", id,
                      old ? "an older run of it is still here" : "unreadable row or no memory");
            task_unref(old);
            task_unref(t);
            free(cl);
            continue;
        }
        memcpy(cl->id, t->id, sizeof cl->id);
        snprintf(cl->lease, sizeof cl->lease, "%s", PQgetvalue(r, i, K_LEASE));
        pthread_mutex_lock(&g->lock);
        cl->next = g->claims;
        g->claims = cl;
        pthread_mutex_unlock(&g->lock);
        store_add(g->s, t);
        log_debug("task %s claimed (attempt %d)", t->id_str, t->attempts + 1);
        /* Refused once the server stops: the claim goes back to the
         * database's queue at close. */
        if (queue_push_restored(g->q, t) < 0)
            g->queue_closed = 1;
        task_unref(t);
        queued++;
    }
    free(order);
    PQclear(r);
    return queued;
}

/* Deletes the oldest finished tasks beyond --max-finished, service-wide. */
static void retention(tasks_pg *g, PGconn *c)
{
    char keep[24];
    snprintf(keep, sizeof keep, "%ld", g->cfg.max_finished);
    const char *vals[] = {keep};
    pgconn_exec(c, NULL,
                "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks"
                " WHERE status IN ('SUCCESS', 'ERROR') ORDER BY finished DESC OFFSET $1)",
                1, vals, NULL, NULL);
}

/* Deletes the rows of nodes silent for NODE_FORGET_LEASES leases, so that
 * a service whose nodes come and go under new names (HOST:PORT with a new
 * port, containers) does not keep every one it ever had. A node that still
 * has RUNNING tasks keeps its row: pg_requeue_node finds them through it,
 * and takes them first (it runs before, on the same thread). */
static void forget_nodes(tasks_pg *g, PGconn *c)
{
    char age[32];
    snprintf(age, sizeof age, "%g", g->cfg.lease * NODE_FORGET_LEASES);
    const char *vals[] = {age};
    PGresult *r = NULL;
    if (pgconn_exec(c, &r,
                    "DELETE FROM nodes n"
                    " WHERE heartbeat < now() - make_interval(secs => $1::double precision)"
                    " AND NOT EXISTS (SELECT 1 FROM tasks t"
                    "  WHERE t.status = 'RUNNING' AND t.node = n.name)"
                    " RETURNING name",
                    1, vals, NULL, NULL) < 0)
        return;
    for (int i = 0; i < PQntuples(r); i++)
        log_info("store: node %s forgotten (silent for more than %s s)", PQgetvalue(r, i, 0), age);
    PQclear(r);
}

static void *claimer_main(void *arg)
{
    tasks_pg *g = arg;
    PGconn *c = NULL;
    int64_t next_check = 0, next_retention = 0;
    for (;;) {
        pthread_mutex_lock(&g->lock);
        int stop = g->stop;
        g->kicked = 0;
        pthread_mutex_unlock(&g->lock);
        if (stop)
            break;
        int64_t now = time_mono_us();
        int more = 0;
        if (pgconn_ensure(&c, g->url) == 0) {
            if (now >= next_check) {
                pg_requeue_node(g, c, NULL, NULL);
                next_check = now + SECOND_US;
            }
            if (now >= next_retention) {
                retention(g, c);
                forget_nodes(g, c);
                next_retention = now + RETENTION_EVERY_US;
            }
            if (!atomic_load(&g->lost) && atomic_load(&g->beaten))
                claim(g, c, &more);
        }
        if (more)
            continue; /* it got all it asked for: more may wait, for workers that freed since */
        /* Woken by ts_new, a worker that finished, or after a second: the
         * slow poll behind a NOTIFY lost while the connection was down. */
        pthread_mutex_lock(&g->lock);
        wait_until(g, &g->kick, &g->kicked, time_mono_us() + SECOND_US);
        pthread_mutex_unlock(&g->lock);
    }
    PQfinish(c);
    return NULL;
}

/* The listener. */

/* Copies the result of src, final, into t. Returns 0 or -ENOMEM. */
static int copy_result(task *t, const task *src)
{
    t->out = src->out ? malloc(src->out_len + 1) : NULL;
    t->err = src->err ? malloc(src->err_len + 1) : NULL;
    t->error = src->error ? strdup(src->error) : NULL;
    if ((src->out && !t->out) || (src->err && !t->err) || (src->error && !t->error))
        return -ENOMEM; /* what was copied goes with the copy */
    if (src->out)
        memcpy(t->out, src->out, src->out_len + 1);
    if (src->err)
        memcpy(t->err, src->err, src->err_len + 1);
    t->out_len = src->out_len;
    t->out_total = src->out_total;
    t->out_truncated = src->out_truncated;
    t->err_len = src->err_len;
    t->err_total = src->err_total;
    t->err_truncated = src->err_truncated;
    t->exited = src->exited;
    t->exit_code = src->exit_code;
    t->term_signal = src->term_signal;
    t->timed_out = src->timed_out;
    t->cpu_us = src->cpu_us;
    t->cancelled = src->cancelled;
    return pg_fields_copy(t, src);
}

int pg_copy_end(tasks_pg *g, task *t, const task *done)
{
    task_view v = store_view(g->s, (task *)done, 0);
    int rc = 0;
    pthread_mutex_lock(&g->copy_lock);
    if (!task_status_final(store_view(g->s, t, 0).status) && (rc = copy_result(t, done)) == 0)
        store_update_copy(g->s, t, &v);
    pthread_mutex_unlock(&g->copy_lock);
    return rc;
}

/* Publishes in the copy t what changed: from done, the task as this node
 * ran it, when given, else from its row. */
static void refresh(tasks_pg *g, PGconn *c, task *t, const task *done)
{
    if (task_status_final(store_view(g->s, t, 0).status))
        return;
    if (done && pg_copy_end(g, t, done) == 0)
        return;
    const char *vals[] = {t->id_str};
    PGresult *r = NULL;
    if (pgconn_exec(c, &r, pg_row_select, 1, vals, NULL, NULL) < 0)
        return;
    task_view v;
    pthread_mutex_lock(&g->copy_lock);
    task_view now = store_view(g->s, t, 0);
    if (!task_status_final(now.status) && PQntuples(r) == 1 && pg_row_view(r, 0, &v) == 0 &&
        (v.status != now.status || v.attempts != now.attempts)) {
        if (!task_status_final(v.status) || pg_fill_result(t, r, 0) == 0)
            store_update_copy(g->s, t, &v);
    }
    pthread_mutex_unlock(&g->copy_lock);
    PQclear(r);
}

/* Refreshes the watched copies that are new, whose id is in ids, or all. */
static void refresh_watches(tasks_pg *g, PGconn *c, const char *ids, int all)
{
    task *(*v)[2] = NULL; /* the copy, and the task as run here or NULL */
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&g->lock);
    for (pg_watcher *w = g->watches; w; w = w->next) {
        if (!(all || w->fresh || (ids && strstr(ids, w->t->id_str))))
            continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            task *(*nv)[2] = realloc(v, nc * sizeof *nv);
            if (!nv)
                break; /* the next full pass reads the others */
            v = nv;
            cap = nc;
        }
        w->fresh = 0;
        v[n][0] = task_ref(w->t);
        v[n++][1] = w->done ? task_ref(w->done) : NULL;
    }
    pthread_mutex_unlock(&g->lock);
    for (size_t i = 0; i < n; i++) {
        refresh(g, c, v[i][0], v[i][1]);
        task_unref(v[i][0]);
        task_unref(v[i][1]);
    }
    free(v);
}

/* Counts a batch of ends in done_seen and keeps their ids ("ID,ID,") in
 * the ring; an incomplete batch (no memory) counts as a reconnect: every
 * watch registered since reads its row. g->lock held. */
static void remember_ends(tasks_pg *g, const buf *ids)
{
    g->done_seen++;
    if (buf_failed(ids)) {
        g->seen_reconnect = g->done_seen;
        return;
    }
    for (const char *p = ids->data; p && *p;) {
        const char *comma = strchr(p, ',');
        char id[37];
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        unsigned char u[16];
        if (n < sizeof id) {
            memcpy(id, p, n);
            id[n] = '\0';
            if (uuid_parse(id, u) == 0) {
                unsigned i = g->seen_next++ % PG_SEEN_RING;
                if (g->seen_ring[i].seen > g->seen_floor)
                    g->seen_floor = g->seen_ring[i].seen;
                memcpy(g->seen_ring[i].id, u, sizeof u);
                g->seen_ring[i].seen = g->done_seen;
            }
        }
        p = comma ? comma + 1 : p + n;
    }
}

int pg_seen_since(const tasks_pg *g, const unsigned char *id, unsigned long seen)
{
    if (g->done_seen == seen)
        return 0;
    if (g->seen_reconnect > seen || g->seen_floor > seen)
        return 1; /* a pass over everything, or ends pushed out of the ring */
    for (unsigned i = 0; i < PG_SEEN_RING; i++)
        if (g->seen_ring[i].seen > seen && !memcmp(g->seen_ring[i].id, id, 16))
            return 1;
    return 0;
}

static void add_id(void *arg, const char *id)
{
    buf_printf(arg, "%s,", id);
}

static void *listener_main(void *arg)
{
    tasks_pg *g = arg;
    PGconn *c = NULL;
    int listening = 0;
    int64_t last_all = 0;
    buf ids = BUF_INIT;
    while (!stopping(g)) {
        if (!listening) {
            if (pgconn_ensure(&c, g->url) == 0 &&
                pgconn_exec(c, NULL, "LISTEN ts_done", 0, NULL, NULL, NULL) == 0 &&
                pgconn_exec(c, NULL, "LISTEN ts_new", 0, NULL, NULL, NULL) == 0 &&
                pgconn_exec(c, NULL, "LISTEN ts_cancel", 0, NULL, NULL, NULL) == 0) {
                listening = 1;
                last_all = 0; /* what ended while it was away */
                pthread_mutex_lock(&g->lock);
                g->seen_reconnect = ++g->done_seen;
                pthread_mutex_unlock(&g->lock);
                pg_kick(g);
            } else {
                struct pollfd pf = {g->wake_fd, POLLIN, 0};
                poll(&pf, 1, 500);
                continue;
            }
        }
        struct pollfd pf[2] = {{PQsocket(c), POLLIN, 0}, {g->wake_fd, POLLIN, 0}};
        poll(pf, 2, 1000);
        if (pf[1].revents & POLLIN) {
            uint64_t v;
            ssize_t nr = read(g->wake_fd, &v, sizeof v);
            (void)nr;
        }
        buf_reset(&ids);
        if (pf[0].revents) {
            if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK) {
                listening = 0;
                continue;
            }
            PGnotify *nt;
            while ((nt = PQnotifies(c))) {
                if (strcmp(nt->relname, "ts_new") == 0)
                    pg_kick(g);
                else if (strcmp(nt->relname, "ts_cancel") == 0)
                    pg_cancel_here(g, nt->extra, 1);
                else
                    pgconn_each_id(nt->extra, add_id, &ids);
                PQfreemem(nt);
            }
        }
        if (ids.len || buf_failed(&ids)) {
            /* Before the watches are read: a watch registered from now on
             * sees that it may have missed one of these ends (pg_watch). */
            pthread_mutex_lock(&g->lock);
            remember_ends(g, &ids);
            pthread_mutex_unlock(&g->lock);
        }
        int64_t now = time_mono_us();
        int all = now - last_all >= SECOND_US;
        if (all)
            last_all = now;
        refresh_watches(g, c, ids.len ? ids.data : NULL, all);
    }
    buf_destroy(&ids);
    PQfinish(c);
    return NULL;
}

/* The keeper. */

static int heartbeat(tasks_pg *g, PGconn *c)
{
    char workers[16], running[24];
    snprintf(workers, sizeof workers, "%d", g->cfg.workers);
    snprintf(running, sizeof running, "%ld", store_get_counts(g->s).running);
    const char *vals[] = {g->name, g->advertise, workers, running};
    return pgconn_exec(c, NULL,
                       "INSERT INTO nodes (name, url, workers, running, heartbeat)"
                       " VALUES ($1, $2, $3, $4, now()) ON CONFLICT (name) DO UPDATE SET"
                       " url = EXCLUDED.url, workers = EXCLUDED.workers,"
                       " running = EXCLUDED.running, heartbeat = now()",
                       4, vals, NULL, NULL);
}

/* Sends NOTIFY ts_done for a comma-separated list of ids, in payloads
 * under PostgreSQL's limit, and with the first NOTIFY ts_new when news. */
static void notify_done(PGconn *c, const char *ids, int news)
{
    if (!*ids && news)
        notify_new(c);
    while (*ids) {
        const char *end = ids;
        for (int k = 0; k < IDS_PER_NOTIFY && *end; k++) {
            end += strcspn(end, ",");
            if (*end == ',' && k + 1 < IDS_PER_NOTIFY)
                end++;
        }
        char *chunk = strndup(ids, (size_t)(end - ids));
        const char *vals[] = {chunk};
        if (chunk)
            pgconn_exec(c, NULL,
                        news ? "SELECT pg_notify('ts_done', $1), pg_notify('ts_new', '')"
                             : "SELECT pg_notify('ts_done', $1)",
                        1, vals, NULL, NULL);
        if (chunk)
            news = 0;
        free(chunk);
        ids = *end == ',' ? end + 1 : end;
    }
}

/* Kills the runs of this node whose rows ended elsewhere: cancelled by
 * another node (whose NOTIFY ts_cancel this node missed, its listener
 * reconnecting), or given to another node, or deleted. Their results
 * would be fenced off anyway. */
static void check_claims(tasks_pg *g, PGconn *c)
{
    buf ids = BUF_INIT, leases = BUF_INIT;
    pthread_mutex_lock(&g->lock);
    for (pg_claim *cl = g->claims; cl; cl = cl->next) {
        if (cl->stopped)
            continue;
        char id[37];
        uuid_unparse_lower(cl->id, id);
        buf_printf(&ids, "%s%s", ids.len ? "," : "{", id);
        buf_printf(&leases, "%s%s", leases.len ? "," : "{", cl->lease);
    }
    pthread_mutex_unlock(&g->lock);
    if (!ids.len || buf_puts(&ids, "}") < 0 || buf_puts(&leases, "}") < 0 || buf_failed(&ids) ||
        buf_failed(&leases))
        goto done;
    const char *vals[] = {ids.data, leases.data};
    PGresult *r = NULL;
    if (pgconn_exec(
            c, &r,
            "SELECT k.id FROM unnest($1::uuid[], $2::uuid[]) AS k(id, lease)"
            " LEFT JOIN tasks t ON t.id = k.id"
            " WHERE t.id IS NULL OR t.status <> 'RUNNING' OR t.lease IS DISTINCT FROM k.lease",
            2, vals, NULL, NULL) < 0)
        goto done;
    for (int i = 0; i < PQntuples(r); i++) {
        unsigned char u[16];
        if (uuid_parse(PQgetvalue(r, i, 0), u) < 0)
            continue;
        pthread_mutex_lock(&g->lock);
        for (pg_claim *cl = g->claims; cl; cl = cl->next)
            if (!memcmp(cl->id, u, sizeof u))
                cl->stopped = 1; /* once: the worker may take a while to get to it */
        pthread_mutex_unlock(&g->lock);
        log_info("task %s: its row ended elsewhere; stopping its run here", PQgetvalue(r, i, 0));
        /* Not dequeue: the keeper must not block on the database (it is
         * the one that notices the database gone); a queued one ends when
         * a worker takes it. */
        pg_cancel_here(g, PQgetvalue(r, i, 0), 0);
    }
    PQclear(r);
done:
    buf_destroy(&ids);
    buf_destroy(&leases);
}

/* A node that lost its lease and is back: once every task it had is gone
 * (killed, results dropped), its rows go back to the queue and it runs
 * tasks again. */
static void recover(tasks_pg *g, PGconn *c)
{
    store_counts sc = store_get_counts(g->s);
    if (sc.running + sc.waiting > 0 || pg_requeue_node(g, c, g->name, NULL) < 0)
        return;
    atomic_store(&g->lost, 0);
    if (g->resume)
        g->resume(g->cancel_arg);
    log_notice("store reachable again: node %s runs tasks again", g->name);
    pg_kick(g);
}

static void *keeper_main(void *arg)
{
    tasks_pg *g = arg;
    PGconn *c = NULL;
    int64_t last_ok = time_mono_us(), next_beat = 0, next_notify = 0;
    for (;;) {
        pthread_mutex_lock(&g->lock);
        int stop = g->stop, due = g->pending && (stop || time_mono_us() >= next_notify);
        char *ids = NULL;
        int news = 0;
        if (due) {
            ids = buf_steal(&g->done, NULL); /* NULL: no ids, or no memory for them */
            news = g->inserted_here;
            g->inserted_here = g->pending = 0;
        }
        pthread_mutex_unlock(&g->lock);
        int up = pgconn_ensure(&c, g->url) == 0;
        if (due && up) {
            /* Lost otherwise: the listeners' full pass reads the ends, and
             * the claimers look every second. */
            notify_done(c, ids ? ids : "", news);
            next_notify = time_mono_us() + NOTIFY_EVERY_US;
        }
        free(ids);
        if (stop)
            break;
        int64_t now = time_mono_us();
        if (now >= next_beat) {
            next_beat = now + SECOND_US;
            if (up && heartbeat(g, c) == 0) {
                last_ok = now;
                if (!atomic_exchange(&g->beaten, 1))
                    pg_kick(g); /* the claimer waited for this row */
                if (atomic_load(&g->lost))
                    recover(g, c);
                else
                    check_claims(g, c);
            } else if (!atomic_load(&g->lost) && now - last_ok > (int64_t)(g->cfg.lease * 1e6)) {
                atomic_store(&g->lost, 1);
                log_error("store unreachable for longer than the lease (%gs): killing this "
                          "node's tasks; their results are dropped, other nodes run them",
                          g->cfg.lease);
                if (g->kill)
                    g->kill(g->cancel_arg);
            }
        }
        pthread_mutex_lock(&g->lock);
        if (!g->pending)
            wait_until(g, &g->keep, &g->pending, next_beat);
        if (g->pending && !g->stop && time_mono_us() < next_notify) {
            int64_t until = next_notify < next_beat ? next_notify : next_beat;
            struct timespec ts = {until / SECOND_US, (until % SECOND_US) * 1000};
            pthread_cond_timedwait(&g->keep, &g->lock, &ts); /* stop signals it */
        }
        pthread_mutex_unlock(&g->lock);
    }
    PQfinish(c);
    return NULL;
}

void pg_threads_start(tasks_pg *g)
{
    void *(*mains[])(void *) = {claimer_main, listener_main, keeper_main};
    g->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    for (int i = 0; i < 3; i++) {
        int rc = pthread_create(&g->threads[i], NULL, mains[i], g);
        if (rc) {
            log_error("store: cannot start a thread: %s", strerror(rc));
            break;
        }
        g->nthreads++;
    }
}

void pg_threads_stop(tasks_pg *g)
{
    pthread_mutex_lock(&g->lock);
    g->stop = 1;
    pthread_cond_broadcast(&g->kick);
    pthread_cond_broadcast(&g->keep);
    pthread_mutex_unlock(&g->lock);
    if (g->wake_fd >= 0)
        pg_poke_listener(g);
    for (int i = 0; i < g->nthreads; i++)
        pthread_join(g->threads[i], NULL);
    g->nthreads = 0;
    if (g->wake_fd >= 0)
        close(g->wake_fd);
    g->wake_fd = -1;
}
