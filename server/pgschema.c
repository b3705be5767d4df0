/* pgschema: see pgschema.h. A migration is one entry of the list below,
 * never edited once released: a change is a new entry. */
#include "pgschema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgconn.h"

/* Any constant shared by every node: the lock that serialises migrations. */
#define PGSCHEMA_LOCK "7340032001"

static const char *const migrations[PGSCHEMA_VERSION] = {
    /* 1: tasks, the queue (status WAIT in seq order) and the nodes. */
    "CREATE TABLE tasks ("
    " seq bigserial UNIQUE,"
    " id uuid PRIMARY KEY,"
    " type text NOT NULL,"
    " status text NOT NULL,"
    " created timestamptz NOT NULL DEFAULT now(),"
    " started timestamptz,"
    " finished timestamptz,"
    " attempts integer NOT NULL DEFAULT 0,"
    " node text,"
    " lease uuid,"
    " args bytea, file bytea, stdin bytea, env bytea,"
    " stdout bytea, stderr bytea,"
    " stdout_total bigint, stdout_truncated boolean,"
    " stderr_total bigint, stderr_truncated boolean,"
    " exit_code integer, signal integer, timed_out boolean, cpu_us bigint,"
    " error text);"
    "CREATE INDEX tasks_waiting ON tasks (seq) WHERE status = 'WAIT';"
    "CREATE INDEX tasks_running ON tasks (node) WHERE status = 'RUNNING';"
    "CREATE INDEX tasks_finished ON tasks (finished) WHERE status IN ('SUCCESS', 'ERROR');"
    "CREATE TABLE nodes ("
    " name text PRIMARY KEY,"
    " url text NOT NULL,"
    " workers integer NOT NULL,"
    " running integer NOT NULL,"
    " heartbeat timestamptz NOT NULL);",
    /* 2: the task fields beyond the program: the language's name (type
     * stays 'lang'), the limits asked (float8[7] in task_limits' order),
     * the tests (the journal's text forms: the cases until the run, the
     * rendered results after), and the result's peak memory, the limit
     * that ended it and the compile step. */
    "ALTER TABLE tasks ADD COLUMN lang text, ADD COLUMN limits double precision[],"
    " ADD COLUMN tests bytea, ADD COLUMN memory_peak bigint, ADD COLUMN limit_hit text,"
    " ADD COLUMN compiled boolean NOT NULL DEFAULT false, ADD COLUMN compile_output bytea,"
    " ADD COLUMN compile_exit_code integer;",
};

int pgschema_check(long found, long known, char *err, size_t errsz)
{
    if (found <= known)
        return 0;
    snprintf(err, errsz,
             "the store's schema is version %ld, newer than this tasksolver knows (%ld): "
             "upgrade this node",
             found, known);
    return -EPROTO;
}

/* Runs sql (several statements, no parameters). Returns 0 or -EIO with
 * err set. */
static int run(PGconn *c, const char *sql, char *err, size_t errsz)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) {
        const char *m = PQresultErrorMessage(r);
        snprintf(err, errsz, "store schema: %.*s", (int)strcspn(m, "\n"), m);
    }
    PQclear(r);
    return ok ? 0 : -EIO;
}

int pgschema_migrate(PGconn *c, char *err, size_t errsz)
{
    char scratch[8];
    if (run(c, "SELECT pg_advisory_lock(" PGSCHEMA_LOCK ")", err, errsz) < 0)
        return -EIO;
    int rc = run(c,
                 "SET client_min_messages = warning;"
                 "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)",
                 err, errsz);
    long found = 0;
    if (rc == 0) {
        PGresult *r = NULL;
        rc = pgconn_exec(c, &r, "SELECT coalesce(max(version), 0) FROM schema_version", 0, NULL,
                         NULL, NULL);
        if (rc == 0)
            found = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        else
            snprintf(err, errsz, "store schema: cannot read schema_version");
        PQclear(r);
    }
    if (rc == 0)
        rc = pgschema_check(found, PGSCHEMA_VERSION, err, errsz);
    for (long v = found + 1; rc == 0 && v <= PGSCHEMA_VERSION; v++) {
        char bump[96];
        snprintf(bump, sizeof bump,
                 "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%ld)", v);
        if ((rc = run(c, "BEGIN", err, errsz)) < 0)
            break;
        if ((rc = run(c, migrations[v - 1], err, errsz)) == 0)
            rc = run(c, bump, err, errsz);
        if (rc == 0)
            rc = run(c, "COMMIT", err, errsz);
        else
            run(c, "ROLLBACK", scratch, sizeof scratch); /* err keeps the first failure */
    }
    run(c, "SELECT pg_advisory_unlock(" PGSCHEMA_LOCK ")", scratch, sizeof scratch);
    return rc;
}
