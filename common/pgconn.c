/* pgconn: see pgconn.h. */
#include "pgconn.h"

#include <errno.h>
#include <libpq-events.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "log.h"

/* The statements prepared on one connection, its instance data: each
 * pgconn_exec text is prepared on first use (named "ts<index>") and then
 * run with PQexecPrepared. Parsing and planning every statement again
 * (perf: base_yyparse, core_yylex, copyObjectImpl, get_relation_info on
 * top of PostgreSQL's profile) cost: trivial tasks through one node took
 * 1.0-1.6 ms of PostgreSQL CPU each unprepared, 0.7 ms prepared. The
 * texts callers pass are a fixed set, a few dozen at most; beyond
 * PREPARED_MAX a text runs unprepared. */
#define PREPARED_MAX 48
typedef struct prepared {
    int n;
    uint64_t hash[PREPARED_MAX];
    char *sql[PREPARED_MAX]; /* owned: some callers build the text on their stack */
} prepared;

static void prepared_clear(prepared *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->sql[i]);
    p->n = 0;
}

/* libpq's events: a reset connection is a new session, without the
 * statements prepared on the old one. */
static int prepared_event(PGEventId id, void *info, void *pass)
{
    (void)pass;
    if (id == PGEVT_CONNRESET || id == PGEVT_CONNDESTROY) {
        PGconn *c = id == PGEVT_CONNRESET ? ((PGEventConnReset *)info)->conn
                                          : ((PGEventConnDestroy *)info)->conn;
        prepared *p = PQinstanceData(c, prepared_event);
        if (p)
            prepared_clear(p);
        if (p && id == PGEVT_CONNDESTROY)
            free(p);
    }
    return 1;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The index of sql among the statements prepared on c, preparing it
 * first when new. Returns it, -1 when it is to run unprepared (no cache,
 * full, out of memory), or -2 with the failed PQprepare's result in *err. */
static int prepared_index(PGconn *c, const char *sql, int n, PGresult **err)
{
    prepared *p = PQinstanceData(c, prepared_event);
    if (!p)
        return -1;
    uint64_t h = fnv1a(sql);
    for (int i = 0; i < p->n; i++)
        if (p->hash[i] == h && strcmp(p->sql[i], sql) == 0)
            return i;
    if (p->n == PREPARED_MAX)
        return -1;
    char *copy = strdup(sql), name[16];
    if (!copy)
        return -1;
    snprintf(name, sizeof name, "ts%d", p->n);
    PGresult *r = PQprepare(c, name, sql, n, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        free(copy);
        *err = r;
        return -2;
    }
    PQclear(r);
    p->hash[p->n] = h;
    p->sql[p->n] = copy;
    return p->n++;
}

PGconn *pgconn_open(const char *url)
{
    /* Listed first so that the URL's own settings win. Without a connect
     * timeout and a TCP user timeout, a database host that drops packets
     * would hold a worker, a connection thread or the keeper (which must
     * notice that its lease runs out) for as long as TCP retries, minutes;
     * 5 s is under the default lease. */
    const char *const keys[] = {
        "connect_timeout",  "tcp_user_timeout", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "application_name", "dbname",          NULL};
    const char *const vals[] = {"3", "5000", "5", "1", "3", "tasksolver", url, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    prepared *p = c ? calloc(1, sizeof *p) : NULL;
    /* Without it (out of memory), statements run unprepared. */
    if (p && !(PQregisterEventProc(c, prepared_event, "pgconn", NULL) &&
               PQsetInstanceData(c, prepared_event, p)))
        free(p);
    return c;
}

/* Non-zero when c is broken, or was closed by the server while idle. A
 * server that stops tells its idle clients so before it closes, which
 * libpq learns only when it reads: an idle connection that does not LISTEN
 * (none of the callers' does) has nothing else to read. One poll(2):
 * cheaper than the failed statement it saves after every restart of the
 * database. */
static int broken(PGconn *c)
{
    if (PQstatus(c) != CONNECTION_OK)
        return 1;
    struct pollfd pf = {PQsocket(c), POLLIN, 0};
    return poll(&pf, 1, 0) != 0;
}

int pgconn_ensure(PGconn **c, const char *url)
{
    if (!*c)
        *c = pgconn_open(url);
    else if (broken(*c))
        PQreset(*c);
    return *c && PQstatus(*c) == CONNECTION_OK ? 0 : -EIO;
}

/* Logs why r failed (at debug when the connection is down, which the
 * callers report themselves). */
static void failed(PGconn *c, const PGresult *r)
{
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
    if (PQstatus(c) == CONNECTION_OK)
        log_warn("store: %.*s", (int)strcspn(msg, "\n"), msg);
    else
        log_debug("store: %.*s", (int)strcspn(msg, "\n"), msg);
}

int pgconn_exec(PGconn *c, PGresult **out, const char *sql, int n, const char *const *vals,
                const int *lens, const int *fmts)
{
    if (out)
        *out = NULL;
    if (!c || PQstatus(c) != CONNECTION_OK)
        return -EIO;
    PGresult *r = NULL;
    int k = prepared_index(c, sql, n, &r);
    if (k >= 0) {
        char name[16];
        snprintf(name, sizeof name, "ts%d", k);
        r = PQexecPrepared(c, name, n, vals, lens, fmts, 0);
        /* Gone from the session (DISCARD ALL, a pooler that moved it to
         * another backend): prepared again next time, and run unprepared
         * now unless a transaction failed with it. */
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "26000") == 0) {
            prepared_clear(PQinstanceData(c, prepared_event));
            if (PQtransactionStatus(c) == PQTRANS_IDLE) {
                PQclear(r);
                r = PQexecParams(c, sql, n, NULL, vals, lens, fmts, 0);
            }
        }
    } else if (k == -1) {
        r = PQexecParams(c, sql, n, NULL, vals, lens, fmts, 0);
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = r;
        else
            PQclear(r);
        return 0;
    }
    failed(c, r);
    PQclear(r);
    return -EIO;
}

/* Most statements pgconn_exec_batch takes. */
#define BATCH_MAX 8

int pgconn_exec_batch(PGconn *c, const pgconn_query *q, int count)
{
    int k[BATCH_MAX];
    for (int i = 0; i < count; i++)
        if (q[i].out)
            *q[i].out = NULL;
    if (count > BATCH_MAX)
        return -EINVAL;
    if (!c || PQstatus(c) != CONNECTION_OK)
        return -EIO;
    for (int i = 0; i < count; i++) {
        PGresult *r = NULL;
        if ((k[i] = prepared_index(c, q[i].sql, q[i].n, &r)) == -2) {
            failed(c, r);
            PQclear(r);
            return -EIO;
        }
    }
    if (!PQenterPipelineMode(c))
        return -EIO;
    int sent = 1;
    for (int i = 0; sent && i < count; i++) {
        char name[16];
        snprintf(name, sizeof name, "ts%d", k[i]);
        sent = k[i] >= 0 ? PQsendQueryPrepared(c, name, q[i].n, q[i].vals, q[i].lens, q[i].fmts, 0)
                         : PQsendQueryParams(c, q[i].sql, q[i].n, NULL, q[i].vals, q[i].lens,
                                             q[i].fmts, 0);
    }
    if (!sent || !PQpipelineSync(c)) {
        /* The connection broke while sending: the pool resets it when
         * it is next taken, which also leaves pipeline mode. */
        log_debug("store: %.*s", (int)strcspn(PQerrorMessage(c), "\n"), PQerrorMessage(c));
        PQexitPipelineMode(c);
        return -EIO;
    }
    int rc = 0;
    for (int i = 0; i < count; i++) {
        PGresult *r = PQgetResult(c);
        ExecStatusType st = PQresultStatus(r);
        if (rc == 0 && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            if (state && strcmp(state, "26000") == 0)
                prepared_clear(PQinstanceData(c, prepared_event));
            failed(c, r);
            rc = -EIO;
        }
        if (rc == 0 && q[i].out)
            *q[i].out = r;
        else
            PQclear(r);
        if (!r)
            break;                   /* the connection is gone: no more results */
        while ((r = PQgetResult(c))) /* the NULL that ends each statement's results */
            PQclear(r);
    }
    PGresult *r;
    while ((r = PQgetResult(c)) && PQresultStatus(r) != PGRES_PIPELINE_SYNC)
        PQclear(r);
    PQclear(r);
    PQexitPipelineMode(c);
    if (rc < 0) {
        for (int i = 0; i < count; i++)
            if (q[i].out) {
                PQclear(*q[i].out);
                *q[i].out = NULL;
            }
        /* A transaction the batch opened and that failed in it. */
        if (PQtransactionStatus(c) == PQTRANS_INERROR)
            pgconn_exec(c, NULL, "ROLLBACK", 0, NULL, NULL, NULL);
    }
    return rc;
}

int pgconn_pool_init(pgconn_pool *p, const char *url, int size)
{
    memset(p, 0, sizeof *p);
    p->size = size;
    p->idle = calloc((size_t)size, sizeof *p->idle);
    p->url = strdup(url);
    if (!p->idle || !p->url)
        goto fail;
    if (pthread_mutex_init(&p->lock, NULL))
        goto fail;
    if (pthread_cond_init(&p->freed, NULL)) {
        pthread_mutex_destroy(&p->lock);
        goto fail;
    }
    return 0;

fail:
    free(p->idle);
    free(p->url);
    return -ENOMEM;
}

void pgconn_pool_destroy(pgconn_pool *p)
{
    for (int i = 0; i < p->nidle; i++)
        PQfinish(p->idle[i]);
    free(p->idle);
    free(p->url);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
}

PGconn *pgconn_take(pgconn_pool *p)
{
    PGconn *c = NULL;
    pthread_mutex_lock(&p->lock);
    while (!p->nidle && p->opened >= p->size)
        pthread_cond_wait(&p->freed, &p->lock);
    if (p->nidle)
        c = p->idle[--p->nidle];
    else
        p->opened++; /* a slot for the connection made below */
    pthread_mutex_unlock(&p->lock);
    pgconn_ensure(&c, p->url);
    return c;
}

void pgconn_give(pgconn_pool *p, PGconn *c)
{
    pthread_mutex_lock(&p->lock);
    if (c)
        p->idle[p->nidle++] = c;
    else
        p->opened--; /* out of memory while opening: the slot is free */
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pgconn_unhex(const char *s, size_t len, unsigned char **out, size_t *n)
{
    if (len < 2 || s[0] != '\\' || s[1] != 'x' || len % 2)
        return -EINVAL;
    size_t m = (len - 2) / 2;
    unsigned char *b = malloc(m + 1);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < m; i++) {
        int hi = hexval(s[2 + 2 * i]), lo = hexval(s[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            free(b);
            return -EINVAL;
        }
        b[i] = (unsigned char)(hi << 4 | lo);
    }
    b[m] = '\0';
    *out = b;
    *n = m;
    return 0;
}

int pgconn_pack_strings(char *const *v, int n, char **out, size_t *len)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += strlen(v[i]) + 1;
    *out = NULL;
    *len = total;
    if (!total)
        return 0;
    char *b = malloc(total), *p = b;
    if (!b)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(v[i]) + 1;
        memcpy(p, v[i], l);
        p += l;
    }
    *out = b;
    return 0;
}

int pgconn_unpack_strings(const unsigned char *p, size_t len, char ***out, int *count)
{
    *out = NULL;
    *count = 0;
    if (!len)
        return 0;
    if (p[len - 1] != '\0')
        return -EINVAL;
    int k = 0;
    for (size_t i = 0; i < len; i++)
        k += p[i] == '\0';
    char **v = calloc((size_t)k + 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    const char *s = (const char *)p;
    for (int i = 0; i < k; i++) {
        if (!(v[i] = strdup(s))) {
            for (int j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return -ENOMEM;
        }
        s += strlen(s) + 1;
    }
    *out = v;
    *count = k;
    return 0;
}

int pgconn_each_id(const char *list, void (*fn)(void *arg, const char *id), void *arg)
{
    int n = 0;
    while (*list) {
        size_t l = strcspn(list, ",");
        if (l == 36) {
            char id[37];
            uuid_t u;
            memcpy(id, list, 36);
            id[36] = '\0';
            if (uuid_parse(id, u) == 0) {
                fn(arg, id);
                n++;
            }
        }
        list += l;
        if (*list == ',')
            list++;
    }
    return n;
}

int pgconn_schema_check(const char *what, long found, long known, char *err, size_t errsz)
{
    if (found <= known)
        return 0;
    snprintf(err, errsz,
             "%s is version %ld, newer than this tasksolver knows (%ld): upgrade this node", what,
             found, known);
    return -EPROTO;
}

/* Runs sql (several statements, no parameters). Returns 0 or -EIO with
 * err set. */
static int pgconn_run(PGconn *c, const char *what, const char *sql, char *err, size_t errsz)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) {
        const char *m = PQresultErrorMessage(r);
        snprintf(err, errsz, "%s: %.*s", what, (int)strcspn(m, "\n"), m);
    }
    PQclear(r);
    return ok ? 0 : -EIO;
}

int pgconn_migrate(PGconn *c, const pgconn_schema *s, char *err, size_t errsz)
{
    char scratch[8], sql[256];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%s)", s->lock);
    if (pgconn_run(c, s->what, sql, err, errsz) < 0)
        return -EIO;
    snprintf(sql, sizeof sql,
             "SET client_min_messages = warning;"
             "CREATE TABLE IF NOT EXISTS %s (version integer NOT NULL)",
             s->table);
    int rc = pgconn_run(c, s->what, sql, err, errsz);
    long found = 0;
    if (rc == 0) {
        PGresult *r = NULL;
        snprintf(sql, sizeof sql, "SELECT coalesce(max(version), 0) FROM %s", s->table);
        rc = pgconn_exec(c, &r, sql, 0, NULL, NULL, NULL);
        if (rc == 0)
            found = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        else
            snprintf(err, errsz, "%s: cannot read %s", s->what, s->table);
        PQclear(r);
    }
    if (rc == 0)
        rc = pgconn_schema_check(s->what, found, s->version, err, errsz);
    for (long v = found + 1; rc == 0 && v <= s->version; v++) {
        snprintf(sql, sizeof sql, "DELETE FROM %s; INSERT INTO %s VALUES (%ld)", s->table, s->table,
                 v);
        if ((rc = pgconn_run(c, s->what, "BEGIN", err, errsz)) < 0)
            break;
        if ((rc = pgconn_run(c, s->what, s->migrations[v - 1], err, errsz)) == 0)
            rc = pgconn_run(c, s->what, sql, err, errsz);
        if (rc == 0)
            rc = pgconn_run(c, s->what, "COMMIT", err, errsz);
        else /* err keeps the first failure */
            pgconn_run(c, s->what, "ROLLBACK", scratch, sizeof scratch);
    }
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%s)", s->lock);
    pgconn_run(c, s->what, sql, scratch, sizeof scratch);
    return rc;
}
