/* journal_load: opens the journal (directory, format, WAL, the lock that
 * keeps a second server out) and reads it back at start-up (see
 * journal_open, journal_restore and journal_queue_restored in journal.h).
 * Runs before any other thread uses the connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "datadir.h"
#include "journal_db.h"
#include "request.h"
#include "request_tests.h"
#include "log.h"
#include "request_files.h"
#include "request_limits.h"
#include "timefmt.h"

int journal_db_errno(int sqlite_rc)
{
    return datadir_sqlite_errno(sqlite_rc);
}

int journal_db_fail(journal *j, int sqlite_rc, char *err, size_t errsz)
{
    if (err)
        snprintf(err, errsz, "journal %s/%s: %s", j->dir, JOURNAL_FILE, sqlite3_errmsg(j->db));
    return journal_db_errno(sqlite_rc);
}

int journal_db_exec(journal *j, const char *sql, char *err, size_t errsz)
{
    int rc = sqlite3_exec(j->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : journal_db_fail(j, rc, err, errsz);
}

/* Reads one integer ("PRAGMA x" and the like). Returns 0 or -errno with
 * err set. */
static int query_int(journal *j, const char *sql, long long *out, char *err, size_t errsz)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(j->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return journal_db_fail(j, rc, err, errsz);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : journal_db_fail(j, rc, err, errsz);
}

/* Creates the schema in a new file, or checks that an old one is ours. */
static int check_format(journal *j, char *err, size_t errsz)
{
    long long app = 0, version = 0, objects = 0;
    int rc = query_int(j, "PRAGMA application_id", &app, err, errsz);
    if (rc == 0)
        rc = query_int(j, "PRAGMA user_version", &version, err, errsz);
    if (rc == 0)
        rc = query_int(j, "SELECT count(*) FROM sqlite_schema", &objects, err, errsz);
    if (rc < 0)
        return rc;
    if (app == 0 && objects == 0)
        return journal_db_exec(j, JOURNAL_SCHEMA, err, errsz);
    if (app != JOURNAL_APP_ID) {
        snprintf(err, errsz, "%s/%s is an SQLite database but not a tasksolver journal", j->dir,
                 JOURNAL_FILE);
        return -EINVAL;
    }
    if (version == 1) {
        rc = journal_db_exec(j, JOURNAL_UPGRADE_1, err, errsz);
        if (rc < 0)
            return rc;
        version = 2;
    }
    if (version == 2) {
        rc = journal_db_exec(j, JOURNAL_UPGRADE_2, err, errsz);
        if (rc < 0)
            return rc;
        version = 3;
    }
    if (version == 3) {
        rc = journal_db_exec(j, JOURNAL_UPGRADE_3, err, errsz);
        if (rc < 0)
            return rc;
        version = 4;
    }
    if (version == 4) {
        rc = journal_db_exec(j, JOURNAL_UPGRADE_4, err, errsz);
        if (rc < 0)
            return rc;
        version = JOURNAL_VERSION;
    }
    if (version != JOURNAL_VERSION) {
        snprintf(err, errsz, "journal %s/%s has format %lld; this tasksolver reads format %d",
                 j->dir, JOURNAL_FILE, version, JOURNAL_VERSION);
        return -EINVAL;
    }
    return 0;
}

/* Sets up the connection: format, WAL, sync level, and the lock that
 * keeps other processes out. Returns 0 or -errno with err set. */
static int configure(journal *j, char *err, size_t errsz)
{
    /* Exclusive locking: the lock taken by the first write is kept until
     * close, so a second server on the same directory fails at start-up
     * instead of running the same tasks; WAL then needs no -shm file. */
    int rc = journal_db_exec(j, "PRAGMA locking_mode = EXCLUSIVE", err, errsz);
    if (rc == 0)
        rc = check_format(j, err, errsz);
    char sql[256];
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s;"
             " PRAGMA journal_size_limit = %d; BEGIN IMMEDIATE; COMMIT;",
             j->cfg.sync_full ? "FULL" : "NORMAL", JOURNAL_WAL_LIMIT);
    if (rc == 0)
        rc = journal_db_exec(j, sql, err, errsz);
    if (rc == -EBUSY)
        snprintf(err, errsz, "journal %s/%s is in use by another process", j->dir, JOURNAL_FILE);
    return rc;
}

int journal_open(journal **out, const journal_config *cfg, char *err, size_t errsz)
{
    int rc = datadir_prepare(cfg->dir, JOURNAL_FILE, err, errsz);
    if (rc < 0)
        return rc;
    rc = -ENOMEM;
    snprintf(err, errsz, "out of memory opening the journal");
    journal *j = calloc(1, sizeof *j);
    if (!j)
        goto fail_alloc;
    j->cfg = *cfg;
    j->dir = strdup(cfg->dir);
    if (!j->dir)
        goto fail_dir;
    j->cfg.dir = j->dir;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", j->dir, JOURNAL_FILE);
    /* One connection, used by one thread at a time: no SQLite mutexes. */
    int src = sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = j->db ? journal_db_fail(j, src, err, errsz) : -ENOMEM;
        goto fail_db;
    }
    rc = configure(j, err, errsz);
    if (rc < 0)
        goto fail_db;
    *out = j;
    return 0;

fail_db:
    sqlite3_close(j->db);
    free(j->dir);
fail_dir:
    free(j);
fail_alloc:
    return rc;
}

#define INTERRUPTED "interrupted: the server stopped while the task was running"

/* Columns read back, in this order (see load_row). */
#define ROW_COLUMNS                                                                                \
    "rowid, id, type, status, created_us, attempts, started_us, finished_us, stdout_total,"        \
    " stdout_truncated, stderr_total, stderr_truncated, exit_code, signal, timed_out, cpu_us,"     \
    " error, args, file, stdout, stderr, stdin, env, tests, files, cancelled, limits, mem_peak,"   \
    " limit_hit, compiled, compile_out, compile_exit"

enum {
    C_ROWID,
    C_ID,
    C_TYPE,
    C_STATUS,
    C_CREATED,
    C_ATTEMPTS,
    C_STARTED,
    C_FINISHED,
    C_OUT_TOTAL,
    C_OUT_TRUNC,
    C_ERR_TOTAL,
    C_ERR_TRUNC,
    C_EXIT,
    C_SIGNAL,
    C_TIMED_OUT,
    C_CPU,
    C_ERROR,
    C_ARGS,
    C_FILE,
    C_STDOUT,
    C_STDERR,
    C_STDIN,
    C_ENV,
    C_TESTS,
    C_FILES,
    C_CANCELLED,
    C_LIMITS,
    C_MEM_PEAK,
    C_LIMIT_HIT,
    C_COMPILED,
    C_COMPILE_OUT,
    C_COMPILE_EXIT,
};

static int parse_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* A malloc'd copy of a blob column; NULL for SQL NULL. Returns 0 or
 * -ENOMEM. */
static int copy_blob(sqlite3_stmt *st, int col, void *out, size_t *len)
{
    const void *p = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    *(char **)out = NULL;
    if (len)
        *len = n;
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return 0;
    char *c = malloc(n + 1); /* NUL-terminated, for text columns */
    if (!c)
        return -ENOMEM;
    if (n)
        memcpy(c, p, n);
    c[n] = '\0';
    *(char **)out = c;
    return 0;
}

/* Splits a blob of strings (args, env) into a NULL-terminated vector.
 * Returns 0, -EINVAL for a blob that does not end a string, or -ENOMEM. */
static int split_strings(sqlite3_stmt *st, int col, char ***out, int *argc)
{
    const char *p = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (n && p[n - 1] != '\0')
        return -EINVAL;
    int count = 0;
    for (size_t i = 0; i < n; i++)
        count += p[i] == '\0';
    char **v = calloc((size_t)count + 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    for (int i = 0; i < count; i++) {
        size_t l = strlen(p) + 1;
        v[i] = malloc(l);
        if (!v[i]) {
            task_args_free(v);
            return -ENOMEM;
        }
        memcpy(v[i], p, l);
        p += l;
    }
    *out = v;
    *argc = count;
    return 0;
}

/* Gives t the tests of the current row: the cases of a waiting task, the
 * rendered results of a finished one. Returns 0, -EINVAL or -ENOMEM with
 * err set. */
static int load_tests(sqlite3_stmt *st, task *t, int final, char *err, size_t errsz)
{
    long long row = sqlite3_column_int64(st, C_ROWID);
    const char *p = sqlite3_column_blob(st, C_TESTS);
    size_t n = (size_t)sqlite3_column_bytes(st, C_TESTS);
    testset *ts = NULL;
    char why[REQUEST_ERR_MAX];
    int rc = 0;
    if (final) {
        ts = testset_new_rendered(p ? p : "", n);
        rc = ts ? 0 : -ENOMEM;
        snprintf(why, sizeof why, "out of memory");
    } else {
        rc = request_tests_parse_text(p ? p : "", n, &ts, why, sizeof why);
    }
    if (rc < 0) {
        snprintf(err, errsz, "row %lld: tests: %.120s", row, why);
        return rc;
    }
    task_set_tests(t, ts);
    return 0;
}

/* Makes a task from the current row. Returns 0 and *out (one reference),
 * or -EINVAL (a row that no tasksolver wrote) / -ENOMEM with err set. */
static int load_row(sqlite3_stmt *st, task **out, char *err, size_t errsz)
{
    static const char *const types[] = {"python", "bin", "calc"};
    static const char *const statuses[] = {"WAIT", "RUNNING", "SUCCESS", "ERROR"};
    long long row = sqlite3_column_int64(st, C_ROWID);
    const char *tname = (const char *)sqlite3_column_text(st, C_TYPE);
    int type = parse_name(tname, types, 3);
    /* Any other name is a language's (task_type_label): older journals
     * have none, so the format stays. */
    if (type < 0 && tname && *tname && strlen(tname) <= REQUEST_LANG_MAX)
        type = TASK_LANG;
    int status = parse_name((const char *)sqlite3_column_text(st, C_STATUS), statuses, 4);
    if (type < 0 || status < 0 || sqlite3_column_bytes(st, C_ID) != 16) {
        snprintf(err, errsz, "row %lld has an invalid id, type or status", row);
        return -EINVAL;
    }
    char **args;
    int argc, rc = split_strings(st, C_ARGS, &args, &argc);
    if (rc < 0) {
        snprintf(err, errsz, "row %lld: %s", row,
                 rc == -EINVAL ? "invalid arguments" : "out of memory");
        return rc;
    }
    unsigned char *file = NULL;
    size_t file_len = 0;
    if (!task_status_final(status) && copy_blob(st, C_FILE, &file, &file_len) < 0) {
        task_args_free(args);
        goto fail_mem;
    }
    task *t = task_new(type, file, file_len, args, argc);
    if (!t)
        goto fail_mem;
    if (type == TASK_LANG && !(t->lang = strdup(tname))) {
        task_unref(t);
        goto fail_mem;
    }
    if (!task_status_final(status)) {
        unsigned char *input = NULL;
        size_t input_len = 0;
        char **env = NULL;
        int envc = 0;
        if (copy_blob(st, C_STDIN, &input, &input_len) < 0) {
            task_unref(t);
            goto fail_mem;
        }
        if (sqlite3_column_type(st, C_ENV) != SQLITE_NULL &&
            (rc = split_strings(st, C_ENV, &env, &envc)) < 0) {
            free(input);
            task_unref(t);
            snprintf(err, errsz, "row %lld: %s", row,
                     rc == -EINVAL ? "invalid environment" : "out of memory");
            return rc;
        }
        task_set_input(t, input, input_len, env, envc);
        task_file *files;
        int nfiles;
        rc = request_files_unpack(sqlite3_column_blob(st, C_FILES),
                                  (size_t)sqlite3_column_bytes(st, C_FILES),
                                  task_program_name(t->type), &files, &nfiles);
        if (rc < 0) {
            task_unref(t);
            snprintf(err, errsz, "row %lld: %s", row,
                     rc == -EINVAL ? "invalid files" : "out of memory");
            return rc;
        }
        task_set_files(t, files, nfiles);
        char why[REQUEST_ERR_MAX];
        const char *lim = (const char *)sqlite3_column_text(st, C_LIMITS);
        if (lim && (rc = request_limits_parse_text(lim, (size_t)sqlite3_column_bytes(st, C_LIMITS),
                                                   &t->limits, why, sizeof why)) < 0) {
            task_unref(t);
            snprintf(err, errsz, "row %lld: limits: %.120s", row, why);
            return rc;
        }
    }
    if (sqlite3_column_type(st, C_TESTS) != SQLITE_NULL &&
        (rc = load_tests(st, t, task_status_final(status), err, errsz)) < 0) {
        task_unref(t);
        return rc;
    }
    memcpy(t->id, sqlite3_column_blob(st, C_ID), sizeof t->id);
    uuid_unparse_lower(t->id, t->id_str);
    t->created_us = sqlite3_column_int64(st, C_CREATED);
    t->status = status == TASK_RUNNING ? TASK_WAIT : status;
    t->attempts = sqlite3_column_int(st, C_ATTEMPTS);
    if (task_status_final(status)) {
        t->started_us = sqlite3_column_int64(st, C_STARTED);
        t->finished_us = sqlite3_column_int64(st, C_FINISHED);
        t->out_total = (size_t)sqlite3_column_int64(st, C_OUT_TOTAL);
        t->out_truncated = sqlite3_column_int(st, C_OUT_TRUNC);
        t->err_total = (size_t)sqlite3_column_int64(st, C_ERR_TOTAL);
        t->err_truncated = sqlite3_column_int(st, C_ERR_TRUNC);
        t->exited = sqlite3_column_type(st, C_EXIT) != SQLITE_NULL;
        t->exit_code = sqlite3_column_int(st, C_EXIT);
        t->term_signal = sqlite3_column_int(st, C_SIGNAL);
        t->timed_out = sqlite3_column_int(st, C_TIMED_OUT);
        t->cpu_us = sqlite3_column_int64(st, C_CPU);
        t->cancelled = sqlite3_column_int(st, C_CANCELLED);
        t->mem_peak = sqlite3_column_int64(st, C_MEM_PEAK);
        const char *lim = (const char *)sqlite3_column_text(st, C_LIMIT_HIT);
        t->limit = lim ? task_limit_named(lim) : NULL;
        t->compiled = sqlite3_column_int(st, C_COMPILED);
        t->compile_exited = sqlite3_column_type(st, C_COMPILE_EXIT) != SQLITE_NULL;
        t->compile_exit_code = sqlite3_column_int(st, C_COMPILE_EXIT);
        if (copy_blob(st, C_ERROR, &t->error, NULL) < 0 ||
            copy_blob(st, C_STDOUT, &t->out, &t->out_len) < 0 ||
            copy_blob(st, C_STDERR, &t->err, &t->err_len) < 0 ||
            copy_blob(st, C_COMPILE_OUT, &t->compile_out, &t->compile_out_len) < 0) {
            task_unref(t);
            goto fail_mem;
        }
    }
    *out = t;
    return 0;

fail_mem:
    snprintf(err, errsz, "out of memory loading row %lld", row);
    return -ENOMEM;
}

/* Runs one statement with an optional integer and text parameter and
 * returns the number of rows it changed, or -errno with err set. */
static long run_update(journal *j, const char *sql, int64_t num, const char *text, char *err,
                       size_t errsz)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(j->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return journal_db_fail(j, rc, err, errsz);
    if (sqlite3_bind_parameter_count(st) >= 1)
        sqlite3_bind_int64(st, 1, num);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return journal_db_fail(j, rc, err, errsz);
    return sqlite3_changes(j->db);
}

/* Loads every row of `where_order` into s, and keeps unfinished ones in
 * j->restored. Returns the number loaded or a negative error with err set. */
static long load(journal *j, const char *where_order, store *s, char *err, size_t errsz)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT " ROW_COLUMNS " FROM tasks %s", where_order);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(j->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return journal_db_fail(j, rc, err, errsz);
    long n = 0, res = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        task *t;
        char why[200];
        res = load_row(st, &t, why, sizeof why);
        if (res < 0) {
            snprintf(err, errsz, "journal %s/%s: %s", j->dir, JOURNAL_FILE, why);
            break;
        }
        if (!task_status_final(t->status)) {
            /* Admitted before the restart: counted, never refused. */
            task_hold_restored(t, j->cfg.budget);
            task **v = realloc(j->restored, (size_t)(j->nrestored + 1) * sizeof *v);
            if (!v) {
                task_unref(t);
                res = -ENOMEM;
                snprintf(err, errsz, "out of memory loading the journal");
                break;
            }
            j->restored = v;
            j->restored[j->nrestored++] = task_ref(t);
        }
        store_restore(s, t);
        task_unref(t);
        n++;
    }
    if (res == 0 && rc != SQLITE_DONE)
        res = journal_db_fail(j, rc, err, errsz);
    sqlite3_finalize(st);
    return res < 0 ? res : n;
}

int journal_restore(journal *j, store *s, long max_finished, journal_restored *n, char *err,
                    size_t errsz)
{
    memset(n, 0, sizeof *n);
    long rc = journal_db_exec(j, "BEGIN", err, errsz);
    if (rc < 0)
        return (int)rc;
    /* A running task's fate is decided first so that interrupted ones
     * count as the newest finished tasks. */
    if (j->cfg.fail_running) {
        rc = run_update(j,
                        "UPDATE tasks SET status = 'ERROR', finished_us = ?1, error = ?2,"
                        " started_us = coalesce(started_us, ?1), stdout_total = 0,"
                        " stderr_total = 0, file = NULL WHERE status = 'RUNNING'",
                        time_now_us(), INTERRUPTED, err, errsz);
        n->interrupted = rc;
    } else {
        rc = run_update(j, "UPDATE tasks SET status = 'WAIT' WHERE status = 'RUNNING'", 0, NULL,
                        err, errsz);
        n->requeued = rc;
    }
    if (rc >= 0)
        rc = n->dropped = run_update(j,
                                     "DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks"
                                     " WHERE status IN ('SUCCESS', 'ERROR')"
                                     " ORDER BY finished_us DESC, rowid DESC"
                                     " LIMIT -1 OFFSET ?1)",
                                     max_finished, NULL, err, errsz);
    if (rc >= 0)
        rc = journal_db_exec(j, "COMMIT", err, errsz);
    if (rc >= 0)
        rc = n->finished = load(j,
                                "WHERE status IN ('SUCCESS', 'ERROR')"
                                " ORDER BY finished_us, rowid",
                                s, err, errsz);
    if (rc >= 0)
        rc = n->waiting =
            load(j, "WHERE status = 'WAIT' ORDER BY created_us, rowid", s, err, errsz);
    if (rc < 0) {
        if (!sqlite3_get_autocommit(j->db))
            sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
        return (int)rc;
    }
    return 0;
}

void journal_queue_restored(journal *j, queue *q)
{
    for (long i = 0; i < j->nrestored; i++) {
        queue_push_restored(q, j->restored[i]);
        task_unref(j->restored[i]);
    }
    free(j->restored);
    j->restored = NULL;
    j->nrestored = 0;
}
