/* pgschema: see pgschema.h. A migration is one entry of the list below,
 * never edited once released: a change is a new entry. */
#include "pgschema.h"

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
    /* 3: the request's extra files (request_files_pack's blob, as the
     * journal keeps them), so that the node that claims the task writes
     * them into its directory; NULL for none, and again once it ends. And
     * whether POST /cancel_task ended it: its error says "cancelled" then,
     * but so does a run a shutting-down node killed, which was no cancel
     * (no version-2 row was cancelled: version 2 refused cancels). */
    ("ALTER TABLE tasks ADD COLUMN files bytea,"
     " ADD COLUMN cancelled boolean NOT NULL DEFAULT false;"),
};

int pgschema_check(long found, long known, char *err, size_t errsz)
{
    return pgconn_schema_check("the store's schema", found, known, err, errsz);
}

int pgschema_migrate(PGconn *c, char *err, size_t errsz)
{
    static const pgconn_schema tasks_schema = {.what = "the store's schema",
                                               .table = "schema_version",
                                               .lock = PGSCHEMA_LOCK,
                                               .migrations = migrations,
                                               .version = PGSCHEMA_VERSION};
    return pgconn_migrate(c, &tasks_schema, err, errsz);
}
