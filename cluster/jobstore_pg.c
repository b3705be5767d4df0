/* jobstore_pg: see jobstore_pg.h. A migration is one entry of the list
 * below, never edited once released: a change is a new entry. */
#include "jobstore_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobstore_writer.h"
#include "log.h"
#include "pgconn.h"

/* Advisory lock keys, any constants shared by every node: the one that
 * serialises migrations of the job tables (the task tables use 7340032001),
 * and the first half of each master's (the second is its name's hash). */
#define JPG_MIGRATE_LOCK "7340032002"
#define JPG_MASTER_LOCK "7340033"

static const char *const jpg_migrations[JOBSTORE_PG_VERSION] = {
    /* 1: jobs by master and id, the expression last (it is long and read
     * only at start), and each master's first id never handed out. */
    "CREATE TABLE cluster_jobs ("
    " master text NOT NULL,"
    " id bigint NOT NULL,"
    " created_us bigint NOT NULL,"
    " finished_us bigint,"
    " answer text,"
    " error text,"
    " ops_done bigint,"
    " expr text NOT NULL,"
    " PRIMARY KEY (master, id));"
    "CREATE TABLE cluster_job_counters ("
    " master text PRIMARY KEY,"
    " next_id bigint NOT NULL);",
};

static const pgconn_schema jpg_schema = {.what = "the store's job tables' schema",
                                         .table = "job_schema_version",
                                         .lock = JPG_MIGRATE_LOCK,
                                         .migrations = jpg_migrations,
                                         .version = JOBSTORE_PG_VERSION};

typedef struct jpg {
    char *url;
    char *master;
    PGconn *conn;   /* load, then the writer thread alone */
    int locked_pid; /* backend that holds the master's lock; 0: none */
    jobstore_writer w;
} jpg;

/* Takes the master's lock on the current connection unless it holds it
 * already (a reset connection lost it). Returns 0, -EBUSY when another
 * master holds it, -EIO. */
static int jpg_lock(jpg *s)
{
    if (s->locked_pid && s->locked_pid == PQbackendPID(s->conn))
        return 0;
    s->locked_pid = 0;
    PGresult *r = NULL;
    const char *v[] = {s->master};
    int rc =
        pgconn_exec(s->conn, &r, "SELECT pg_try_advisory_lock(" JPG_MASTER_LOCK ", hashtext($1))",
                    1, v, NULL, NULL);
    if (rc == 0 && strcmp(PQgetvalue(r, 0, 0), "t") != 0)
        rc = -EBUSY;
    PQclear(r);
    if (rc == 0)
        s->locked_pid = PQbackendPID(s->conn);
    return rc;
}

/* Runs sql with the master's name as $1 and the n - 1 values after it. */
static int jpg_exec(jpg *s, PGresult **out, const char *sql, int n, const char *const *rest)
{
    const char *v[6] = {s->master};
    for (int i = 1; i < n; i++)
        v[i] = rest[i - 1];
    return pgconn_exec(s->conn, out, sql, n, v, NULL, NULL);
}

/* Runs sql and checks that it changed exactly one row. */
static int jpg_exec_one(jpg *s, const char *sql, int n, const char *const *rest)
{
    PGresult *r = NULL;
    int rc = jpg_exec(s, &r, sql, n, rest);
    if (rc == 0 && strcmp(PQcmdTuples(r), "1") != 0)
        rc = -EEXIST;
    PQclear(r);
    return rc;
}

/* Writes one record inside the writer's transaction. */
static int jpg_write(jpg *s, const jobstore_rec *r)
{
    char id[24], us[24], ops[24];
    snprintf(id, sizeof id, "%" PRId64, r->id);
    snprintf(us, sizeof us, "%" PRId64, r->us);
    snprintf(ops, sizeof ops, "%zu", r->ops_done);
    switch (r->kind) {
    case JOBSTORE_RECORD: {
        const char *ins[] = {id, us, r->text};
        int rc = jpg_exec_one(s,
                              "INSERT INTO cluster_jobs(master, id, created_us, expr)"
                              " VALUES ($1, $2, $3, $4)",
                              4, ins);
        /* The counter moves in the same transaction as the row, upwards
         * only: one batch may hold ids out of order (submits race to the
         * writer's queue). A second master of the name cannot write here
         * (the lock), and the primary key refuses an id stored twice. */
        const char *bump[] = {id};
        return rc ? rc
                  : jpg_exec_one(
                        s,
                        "UPDATE cluster_job_counters SET next_id = greatest(next_id, $2 + 1)"
                        " WHERE master = $1",
                        2, bump);
    }
    case JOBSTORE_FINISH: {
        const char *fin[] = {id, us, r->answer, r->error, ops};
        PGresult *res = NULL;
        int rc = jpg_exec(s, &res,
                          "UPDATE cluster_jobs SET finished_us = $3, answer = $4, error = $5,"
                          " ops_done = $6 WHERE master = $1 AND id = $2",
                          6, fin);
        PQclear(res);
        return rc;
    }
    case JOBSTORE_FORGET: {
        const char *del[] = {id};
        PGresult *res = NULL;
        int rc =
            jpg_exec(s, &res, "DELETE FROM cluster_jobs WHERE master = $1 AND id = $2", 2, del);
        PQclear(res);
        return rc;
    }
    }
    return -EINVAL;
}

/* Writes a batch in one transaction, reconnecting first if the database
 * went away (and taking the master's lock again on the new session). */
static int jpg_write_batch(void *impl, const jobstore_rec *batch)
{
    jpg *s = impl;
    long count = 0;
    int rc = pgconn_ensure(&s->conn, s->url);
    if (rc == 0)
        rc = jpg_lock(s);
    if (rc == -EBUSY)
        log_error("job store: another master named %s took its jobs while the database was away",
                  s->master);
    if (rc == 0)
        rc = pgconn_exec(s->conn, NULL, "BEGIN", 0, NULL, NULL, NULL);
    for (const jobstore_rec *r = batch; r && rc == 0; r = jobstore_rec_next(r), count++)
        rc = jpg_write(s, r);
    if (rc == 0)
        rc = pgconn_exec(s->conn, NULL, "COMMIT", 0, NULL, NULL, NULL);
    if (rc == 0)
        return 0;
    log_error("job store: could not write %ld records of master %s (%s)", count, s->master,
              strerror(-rc));
    if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        pgconn_exec(s->conn, NULL, "ROLLBACK", 0, NULL, NULL, NULL);
    return rc;
}

static int jpg_load(void *impl, jobstore_row_fn fn, void *arg, int64_t *next_id, char *err,
                    size_t errsz)
{
    jpg *s = impl;
    PGresult *r = NULL;
    int rc = jpg_exec(s, &r, "SELECT next_id FROM cluster_job_counters WHERE master = $1", 1, NULL);
    int64_t next = 1;
    if (rc == 0 && PQntuples(r) == 1)
        next = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    r = NULL;
    if (rc == 0)
        rc = jpg_exec(s, &r,
                      "SELECT id, created_us, finished_us, answer, error, expr, ops_done"
                      " FROM cluster_jobs WHERE master = $1 ORDER BY id",
                      1, NULL);
    if (rc < 0) {
        snprintf(err, errsz, "job store: cannot read the jobs of master %s", s->master);
        PQclear(r);
        return rc;
    }
    if (next < 1)
        next = 1;
    for (int i = 0; i < PQntuples(r); i++) {
        jobstore_row row = {
            .id = strtoll(PQgetvalue(r, i, 0), NULL, 10),
            .text = PQgetvalue(r, i, 5),
            .text_len = (size_t)PQgetlength(r, i, 5),
            .created_us = strtoll(PQgetvalue(r, i, 1), NULL, 10),
            .finished = !PQgetisnull(r, i, 2),
            .finished_us = strtoll(PQgetvalue(r, i, 2), NULL, 10),
            .answer = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3),
            .error = PQgetisnull(r, i, 4) ? NULL : PQgetvalue(r, i, 4),
            .ops_done = (size_t)strtoull(PQgetvalue(r, i, 6), NULL, 10),
        };
        if (row.id >= next)
            next = row.id + 1;
        if ((rc = fn(arg, &row)) < 0) {
            snprintf(err, errsz, "job store: job %lld: %s", (long long)row.id, strerror(-rc));
            break;
        }
    }
    PQclear(r);
    *next_id = next;
    return rc;
}

static int jpg_record(void *impl, int64_t id, const char *text, size_t len, int64_t created_us)
{
    return jobstore_writer_record(&((jpg *)impl)->w, id, text, len, created_us);
}

static void jpg_finish(void *impl, const jobstore_row *row)
{
    jobstore_writer_finish(&((jpg *)impl)->w, row);
}

static void jpg_forget(void *impl, int64_t id)
{
    jobstore_writer_forget(&((jpg *)impl)->w, id);
}

static void jpg_free(jpg *s)
{
    /* Closing the session releases the master's lock. */
    PQfinish(s->conn);
    free(s->master);
    free(s->url);
    free(s);
}

static void jpg_close(void *impl)
{
    jpg *s = impl;
    jobstore_writer_destroy(&s->w);
    jpg_free(s);
}

static const jobstore_ops jpg_ops = {
    .name = "postgresql",
    .load = jpg_load,
    .record = jpg_record,
    .finish = jpg_finish,
    .forget = jpg_forget,
    .close = jpg_close,
};

/* Brings the tables up to date, takes the master's lock and makes its
 * counter row. */
static int jpg_prepare(jpg *s, char *err, size_t errsz)
{
    if (PQstatus(s->conn) != CONNECTION_OK) {
        snprintf(err, errsz, "job store: cannot connect to the store: %.*s",
                 (int)strcspn(PQerrorMessage(s->conn), "\n"), PQerrorMessage(s->conn));
        return -EIO;
    }
    int rc = pgconn_migrate(s->conn, &jpg_schema, err, errsz);
    if (rc < 0)
        return rc;
    if ((rc = jpg_lock(s)) == -EBUSY)
        snprintf(err, errsz,
                 "job store: another running master is named %s on this store; give each "
                 "master its own --name",
                 s->master);
    PGresult *r = NULL;
    if (rc == 0 && (rc = jpg_exec(s, &r,
                                  "INSERT INTO cluster_job_counters VALUES ($1, 1)"
                                  " ON CONFLICT DO NOTHING",
                                  1, NULL)) < 0)
        snprintf(err, errsz, "job store: cannot make the id counter of master %s", s->master);
    PQclear(r);
    if (rc == -EIO && !err[0])
        snprintf(err, errsz, "job store: the store failed while starting");
    return rc;
}

int jobstore_pg_open(jobstore *out, const jobstore_pg_config *cfg, char *err, size_t errsz)
{
    int rc = -ENOMEM;
    snprintf(err, errsz, "out of memory opening the job store");
    jpg *s = calloc(1, sizeof *s);
    if (!s)
        return rc;
    if (!(s->url = strdup(cfg->url)) || !(s->master = strdup(cfg->master)) ||
        !(s->conn = pgconn_open(cfg->url)))
        goto fail;
    err[0] = '\0';
    if ((rc = jpg_prepare(s, err, errsz)) < 0)
        goto fail;
    /* The writer only waits for records until load has run: the
     * connection is the loader's until the first record is queued. */
    if ((rc = jobstore_writer_init(&s->w, jpg_write_batch, s)) < 0) {
        snprintf(err, errsz, "cannot start the job store's writer: %s", strerror(-rc));
        goto fail;
    }
    *out = (jobstore){.ops = &jpg_ops, .impl = s};
    return 0;

fail:
    jpg_free(s);
    return rc;
}
