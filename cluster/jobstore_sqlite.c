/* jobstore_sqlite: see jobstore_sqlite.h. */
#include "jobstore_sqlite.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadir.h"
#include "jobstore_writer.h"
#include "log.h"

#define JSS_APP_ID 0x54534a42 /* "TSJB": tells our files from other SQLite files */
#define JSS_VERSION 1
#define JSS_WAL_LIMIT (8 << 20) /* WAL bytes kept after a checkpoint */

/* One row per job, the expression last so that scanning the small columns
 * does not read it; one row in `counter`: the first id never handed out,
 * raised with every insert, so ids stay unique even once rows are gone. */
#define JSS_SCHEMA                                                                                 \
    "BEGIN; CREATE TABLE jobs ("                                                                   \
    " id INTEGER PRIMARY KEY,"                                                                     \
    " created_us INTEGER NOT NULL," /* microseconds since the epoch */                             \
    " finished_us INTEGER,"         /* NULL while unfinished */                                    \
    " answer TEXT,"                 /* finished without error: JSON number */                      \
    " error TEXT,"                  /* finished with an error */                                   \
    " ops_done INTEGER,"            /* finished: operations computed */                            \
    " expr TEXT NOT NULL);"                                                                        \
    "CREATE TABLE counter (next_id INTEGER NOT NULL);"                                             \
    "INSERT INTO counter VALUES (1);"                                                              \
    "PRAGMA application_id = 1414744642;" /* JSS_APP_ID */                                         \
    "PRAGMA user_version = 1;"            /* JSS_VERSION */                                        \
    "COMMIT;" /* all or nothing: a half-made file would not pass for ours */

/* Statements by record kind (jobstore_writer.h), then the counter's. */
enum { JSS_BUMP = JOBSTORE_FORGET + 1, JSS_KINDS };

static const char *const jss_sql[JSS_KINDS] = {
    [JOBSTORE_RECORD] = "INSERT INTO jobs(id, created_us, expr) VALUES(?1, ?2, ?3)",
    [JSS_BUMP] = "UPDATE counter SET next_id = max(next_id, ?1 + 1)",
    [JOBSTORE_FINISH] = ("UPDATE jobs SET finished_us = ?2, answer = ?3, error = ?4,"
                         " ops_done = ?5 WHERE id = ?1"),
    [JOBSTORE_FORGET] = "DELETE FROM jobs WHERE id = ?1",
};

typedef struct jss {
    char *dir;
    sqlite3 *db; /* load, then the writer thread alone */
    sqlite3_stmt *st[JSS_KINDS];
    jobstore_writer w;
} jss;

/* Puts "DIR/jobs.db: SQLite's message" in err and returns the errno. */
static int jss_fail(jss *s, int rc, char *err, size_t errsz)
{
    snprintf(err, errsz, "job store %s/%s: %s", s->dir, JOBSTORE_SQLITE_FILE,
             sqlite3_errmsg(s->db));
    return datadir_sqlite_errno(rc);
}

static int jss_exec(jss *s, const char *sql, char *err, size_t errsz)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : jss_fail(s, rc, err, errsz);
}

/* Reads one integer ("PRAGMA x" and the like) into *out. */
static int jss_query_int(jss *s, const char *sql, long long *out, char *err, size_t errsz)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return jss_fail(s, rc, err, errsz);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : jss_fail(s, rc, err, errsz);
}

/* Creates the schema in a new file, or checks that an old one is ours. */
static int jss_check_format(jss *s, char *err, size_t errsz)
{
    long long app = 0, version = 0, objects = 0;
    int rc = jss_query_int(s, "PRAGMA application_id", &app, err, errsz);
    if (rc == 0)
        rc = jss_query_int(s, "PRAGMA user_version", &version, err, errsz);
    if (rc == 0)
        rc = jss_query_int(s, "SELECT count(*) FROM sqlite_schema", &objects, err, errsz);
    if (rc < 0)
        return rc;
    if (app == 0 && objects == 0)
        return jss_exec(s, JSS_SCHEMA, err, errsz);
    if (app != JSS_APP_ID) {
        snprintf(err, errsz, "%s/%s is an SQLite database but not a tasksolver job store", s->dir,
                 JOBSTORE_SQLITE_FILE);
        return -EINVAL;
    }
    if (version != JSS_VERSION) {
        snprintf(err, errsz, "job store %s/%s has format %lld; this tasksolver reads format %d",
                 s->dir, JOBSTORE_SQLITE_FILE, version, JSS_VERSION);
        return -EINVAL;
    }
    return 0;
}

/* Format, WAL, sync level and the exclusive lock, as the task journal:
 * the lock taken by the first write is kept until close, so a second
 * master on the same directory fails at start-up instead of handing out
 * the same ids; WAL then needs no -shm file. */
static int jss_configure(jss *s, int sync_full, char *err, size_t errsz)
{
    int rc = jss_exec(s, "PRAGMA locking_mode = EXCLUSIVE", err, errsz);
    if (rc == 0)
        rc = jss_check_format(s, err, errsz);
    char sql[256];
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s;"
             " PRAGMA journal_size_limit = %d; BEGIN IMMEDIATE; COMMIT;",
             sync_full ? "FULL" : "NORMAL", JSS_WAL_LIMIT);
    if (rc == 0)
        rc = jss_exec(s, sql, err, errsz);
    if (rc == -EBUSY)
        snprintf(err, errsz, "job store %s/%s is in use by another process", s->dir,
                 JOBSTORE_SQLITE_FILE);
    for (int k = 0; rc == 0 && k < JSS_KINDS; k++) {
        int src =
            sqlite3_prepare_v3(s->db, jss_sql[k], -1, SQLITE_PREPARE_PERSISTENT, &s->st[k], NULL);
        if (src != SQLITE_OK)
            rc = jss_fail(s, src, err, errsz);
    }
    return rc;
}

/* Runs one prepared statement to its end. Returns an SQLite code. */
static int jss_step(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Writes one record inside the writer's transaction. Returns an SQLite
 * code. */
static int jss_write(jss *s, const jobstore_rec *r)
{
    sqlite3_stmt *st = s->st[r->kind];
    sqlite3_bind_int64(st, 1, r->id);
    switch (r->kind) {
    case JOBSTORE_RECORD: {
        sqlite3_bind_int64(st, 2, r->us);
        sqlite3_bind_text64(st, 3, r->text, r->text_len, SQLITE_STATIC, SQLITE_UTF8);
        int rc = jss_step(st);
        if (rc != SQLITE_OK)
            return rc;
        /* The counter moves in the same transaction as the row. */
        sqlite3_bind_int64(s->st[JSS_BUMP], 1, r->id);
        return jss_step(s->st[JSS_BUMP]);
    }
    case JOBSTORE_FINISH:
        sqlite3_bind_int64(st, 2, r->us);
        if (r->answer)
            sqlite3_bind_text(st, 3, r->answer, -1, SQLITE_STATIC);
        if (r->error)
            sqlite3_bind_text(st, 4, r->error, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)r->ops_done);
        break;
    default:
        break;
    }
    return jss_step(st);
}

/* Writes a batch in one transaction. Returns 0 or -errno (then nothing of
 * the batch is written). */
static int jss_write_batch(void *impl, const jobstore_rec *batch)
{
    jss *s = impl;
    long count = 0;
    int rc = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
    for (const jobstore_rec *r = batch; r && rc == SQLITE_OK; r = jobstore_rec_next(r), count++)
        rc = jss_write(s, r);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return 0;
    log_error("job store %s/%s: could not write %ld records: %s", s->dir, JOBSTORE_SQLITE_FILE,
              count, sqlite3_errmsg(s->db));
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return datadir_sqlite_errno(rc);
}

static int jss_load(void *impl, jobstore_row_fn fn, void *arg, int64_t *next_id, char *err,
                    size_t errsz)
{
    jss *s = impl;
    long long counter = 1;
    int rc = jss_query_int(s, "SELECT next_id FROM counter", &counter, err, errsz);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st;
    int src = sqlite3_prepare_v2(s->db,
                                 "SELECT id, created_us, finished_us, answer, error, expr, ops_done"
                                 " FROM jobs ORDER BY id",
                                 -1, &st, NULL);
    if (src != SQLITE_OK)
        return jss_fail(s, src, err, errsz);
    int64_t next = counter > 0 ? counter : 1;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 5);
        jobstore_row row = {
            .id = sqlite3_column_int64(st, 0),
            .text = text ? text : "",
            .text_len = (size_t)sqlite3_column_bytes(st, 5),
            .created_us = sqlite3_column_int64(st, 1),
            .finished = sqlite3_column_type(st, 2) != SQLITE_NULL,
            .finished_us = sqlite3_column_int64(st, 2),
            .answer = (const char *)sqlite3_column_text(st, 3),
            .error = (const char *)sqlite3_column_text(st, 4),
            .ops_done = (size_t)sqlite3_column_int64(st, 6),
        };
        if (row.id >= next)
            next = row.id + 1;
        if ((rc = fn(arg, &row)) < 0) {
            snprintf(err, errsz, "job store %s/%s: job %lld: %s", s->dir, JOBSTORE_SQLITE_FILE,
                     (long long)row.id, strerror(-rc));
            break;
        }
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = jss_fail(s, src, err, errsz);
    sqlite3_finalize(st);
    *next_id = next;
    return rc;
}

static int jss_record(void *impl, int64_t id, const char *text, size_t len, int64_t created_us)
{
    return jobstore_writer_record(&((jss *)impl)->w, id, text, len, created_us);
}

static void jss_finish(void *impl, const jobstore_row *row)
{
    jobstore_writer_finish(&((jss *)impl)->w, row);
}

static void jss_forget(void *impl, int64_t id)
{
    jobstore_writer_forget(&((jss *)impl)->w, id);
}

static void jss_close(void *impl)
{
    jss *s = impl;
    jobstore_writer_destroy(&s->w);
    for (int k = 0; k < JSS_KINDS; k++)
        sqlite3_finalize(s->st[k]);
    /* The last close checkpoints the WAL into the database and removes it. */
    if (sqlite3_close(s->db) != SQLITE_OK)
        log_error("job store %s/%s: %s", s->dir, JOBSTORE_SQLITE_FILE, sqlite3_errmsg(s->db));
    free(s->dir);
    free(s);
}

static const jobstore_ops jss_ops = {
    .name = "sqlite",
    .load = jss_load,
    .record = jss_record,
    .finish = jss_finish,
    .forget = jss_forget,
    .close = jss_close,
};

int jobstore_sqlite_open(jobstore *out, const jobstore_sqlite_config *cfg, char *err, size_t errsz)
{
    int rc = datadir_prepare(cfg->dir, JOBSTORE_SQLITE_FILE, err, errsz);
    if (rc < 0)
        return rc;
    rc = -ENOMEM;
    snprintf(err, errsz, "out of memory opening the job store");
    jss *s = calloc(1, sizeof *s);
    if (!s)
        goto fail_alloc;
    if (!(s->dir = strdup(cfg->dir)))
        goto fail_dir;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", s->dir, JOBSTORE_SQLITE_FILE);
    /* One connection, used by one thread at a time: no SQLite mutexes. */
    int src = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = s->db ? jss_fail(s, src, err, errsz) : -ENOMEM;
        goto fail_db;
    }
    if ((rc = jss_configure(s, cfg->sync_full, err, errsz)) < 0)
        goto fail_db;
    /* The writer only waits for records until load has run: the
     * connection is the loader's until the first record is queued. */
    if ((rc = jobstore_writer_init(&s->w, jss_write_batch, s)) < 0) {
        snprintf(err, errsz, "cannot start the job store's writer: %s", strerror(-rc));
        goto fail_db;
    }
    *out = (jobstore){.ops = &jss_ops, .impl = s};
    return 0;

fail_db:
    for (int k = 0; k < JSS_KINDS; k++)
        sqlite3_finalize(s->st[k]);
    sqlite3_close(s->db);
    free(s->dir);
fail_dir:
    free(s);
fail_alloc:
    return rc;
}
