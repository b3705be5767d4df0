/* jobstore_sqlite: see jobstore_sqlite.h. */
#include "jobstore_sqlite.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadir.h"
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

enum jss_kind { JSS_RECORD, JSS_BUMP, JSS_FINISH, JSS_FORGET, JSS_KINDS };

static const char *const jss_sql[JSS_KINDS] = {
    [JSS_RECORD] = "INSERT INTO jobs(id, created_us, expr) VALUES(?1, ?2, ?3)",
    [JSS_BUMP] = "UPDATE counter SET next_id = max(next_id, ?1 + 1)",
    [JSS_FINISH] = "UPDATE jobs SET finished_us = ?2, answer = ?3, error = ?4, ops_done = ?5"
                   " WHERE id = ?1",
    [JSS_FORGET] = "DELETE FROM jobs WHERE id = ?1",
};

/* One pending write. A record (waited) lives on its caller's stack until
 * `done`; the writer frees the others, with their strings. */
typedef struct jss_rec {
    struct jss_rec *next;
    enum jss_kind kind; /* JSS_RECORD, JSS_FINISH or JSS_FORGET */
    int64_t id;
    const char *text; /* RECORD: borrowed */
    size_t text_len;
    int64_t us;      /* RECORD: created; FINISH: finished */
    char *answer;    /* FINISH: owned, or NULL */
    char *error;     /* FINISH: owned, or NULL */
    size_t ops_done; /* FINISH */
    int waited;
    int done; /* lock */
    int rc;   /* lock */
} jss_rec;

typedef struct jss {
    char *dir;
    sqlite3 *db; /* load, then the writer thread alone */
    sqlite3_stmt *st[JSS_KINDS];
    pthread_t thread;
    /* `lock` protects pending, tail, closing, stopped and the done/rc of
     * queued records. Leaf lock: SQLite is never called with it held. */
    pthread_mutex_t lock;
    pthread_cond_t work;      /* records pending, or closing */
    pthread_cond_t committed; /* waited records were written */
    jss_rec *pending, **tail;
    int closing;
    int stopped; /* the writer is gone: records are refused */
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
static int jss_write(jss *s, const jss_rec *r)
{
    sqlite3_stmt *st = s->st[r->kind];
    sqlite3_bind_int64(st, 1, r->id);
    switch (r->kind) {
    case JSS_RECORD: {
        sqlite3_bind_int64(st, 2, r->us);
        sqlite3_bind_text64(st, 3, r->text, r->text_len, SQLITE_STATIC, SQLITE_UTF8);
        int rc = jss_step(st);
        if (rc != SQLITE_OK)
            return rc;
        /* The counter moves in the same transaction as the row. */
        sqlite3_bind_int64(s->st[JSS_BUMP], 1, r->id);
        return jss_step(s->st[JSS_BUMP]);
    }
    case JSS_FINISH:
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
static int jss_write_batch(jss *s, jss_rec *batch)
{
    long count = 0;
    int rc = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
    for (jss_rec *r = batch; r && rc == SQLITE_OK; r = r->next, count++)
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

static void jss_rec_free(jss_rec *r)
{
    free(r->answer);
    free(r->error);
    free(r);
}

/* Wakes the callers of waited records of a written batch, frees the rest. */
static void jss_complete(jss *s, jss_rec *batch, int rc)
{
    jss_rec *async = NULL, **atail = &async;
    pthread_mutex_lock(&s->lock);
    for (jss_rec *r = batch, *next; r; r = next) {
        next = r->next; /* a waited record may vanish once done */
        if (r->waited) {
            r->rc = rc;
            r->done = 1;
        } else {
            *atail = r;
            atail = &r->next;
        }
    }
    *atail = NULL;
    pthread_cond_broadcast(&s->committed);
    pthread_mutex_unlock(&s->lock);
    for (jss_rec *r = async, *next; r; r = next) {
        next = r->next;
        jss_rec_free(r);
    }
}

static void *jss_writer(void *arg)
{
    jss *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->pending && !s->closing)
            pthread_cond_wait(&s->work, &s->lock);
        if (!s->pending)
            break;
        /* Everything that arrived during the last commit goes in this one. */
        jss_rec *batch = s->pending;
        s->pending = NULL;
        s->tail = &s->pending;
        pthread_mutex_unlock(&s->lock);
        jss_complete(s, batch, jss_write_batch(s, batch));
        pthread_mutex_lock(&s->lock);
    }
    s->stopped = 1;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Queues r and, for a waited record, returns once it is written. Returns
 * 0, the write's error, or -ESHUTDOWN (r not queued) once the writer is
 * gone. */
static int jss_submit(jss *s, jss_rec *r)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (s->stopped || s->closing) {
        pthread_mutex_unlock(&s->lock);
        return -ESHUTDOWN;
    }
    r->next = NULL;
    *s->tail = r;
    s->tail = &r->next;
    pthread_cond_signal(&s->work);
    while (r->waited && !r->done)
        pthread_cond_wait(&s->committed, &s->lock);
    if (r->waited)
        rc = r->rc;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Queues an asynchronous record; on failure logs that the row is stale. */
static void jss_submit_async(jss *s, jss_rec *r, int64_t id, const char *what)
{
    if (r && jss_submit(s, r) == 0)
        return;
    log_error("job %lld: its %s is not in the job store (%s)", (long long)id, what,
              r ? "store closed" : "out of memory");
    if (r)
        jss_rec_free(r);
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
    jss_rec r = {
        .kind = JSS_RECORD, .id = id, .text = text, .text_len = len, .us = created_us, .waited = 1};
    return jss_submit(impl, &r);
}

static void jss_finish(void *impl, const jobstore_row *row)
{
    jss_rec *r = calloc(1, sizeof *r);
    if (r) {
        r->kind = JSS_FINISH;
        r->id = row->id;
        r->us = row->finished_us;
        r->ops_done = row->ops_done;
        r->answer = row->answer ? strdup(row->answer) : NULL;
        r->error = row->error ? strdup(row->error) : NULL;
        if ((row->answer && !r->answer) || (row->error && !r->error)) {
            jss_rec_free(r);
            r = NULL;
        }
    }
    /* A lost finish leaves the row unfinished: the next start computes
     * the job again, which gives the same answer (operations are pure). */
    jss_submit_async(impl, r, row->id, "result");
}

static void jss_forget(void *impl, int64_t id)
{
    jss_rec *r = calloc(1, sizeof *r);
    if (r) {
        r->kind = JSS_FORGET;
        r->id = id;
    }
    /* A row left behind is trimmed with retention at the next start. */
    jss_submit_async(impl, r, id, "deletion");
}

static void jss_close(void *impl)
{
    jss *s = impl;
    pthread_mutex_lock(&s->lock);
    s->closing = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    for (int k = 0; k < JSS_KINDS; k++)
        sqlite3_finalize(s->st[k]);
    /* The last close checkpoints the WAL into the database and removes it. */
    if (sqlite3_close(s->db) != SQLITE_OK)
        log_error("job store %s/%s: %s", s->dir, JOBSTORE_SQLITE_FILE, sqlite3_errmsg(s->db));
    pthread_cond_destroy(&s->committed);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->lock);
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
    s->tail = &s->pending;
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
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->committed, NULL);
    /* The writer only waits for records until load has run: the
     * connection is the loader's until the first record is queued. */
    if ((rc = -pthread_create(&s->thread, NULL, jss_writer, s)) < 0) {
        snprintf(err, errsz, "cannot start the job store's writer: %s", strerror(-rc));
        goto fail_thread;
    }
    *out = (jobstore){.ops = &jss_ops, .impl = s};
    return 0;

fail_thread:
    pthread_cond_destroy(&s->committed);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->lock);
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
