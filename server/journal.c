/* journal: see journal.h. This side writes (records, the writer thread);
 * opening the file and reading it back at start-up are in journal_load.c. */
#include "journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal_db.h"
#include "log.h"
#include "request_files.h"
#include "request_limits.h"
#include "testset.h"
#include "timefmt.h"

/* One pending write. A waited record lives on its caller's stack until
 * `done`; the writer frees the others. */
typedef struct rec {
    groupcommit_rec link; /* first: the writer's queue */
    enum rec_kind kind;
    unsigned char id[16];
    task *t;                /* ADD: the waiter's; FINISH: a reference */
    enum task_status final; /* FINISH */
    int64_t started_us;     /* START, FINISH */
    int64_t finished_us;    /* FINISH */
    int attempts;           /* START */
} rec;

static const char *const rec_sql[REC_KINDS] = {
    [REC_ADD] = "INSERT INTO tasks(id, type, status, created_us, attempts, args, file, stdin, env,"
                " tests, files, limits) VALUES(?1, ?2, 'WAIT', ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9,"
                " ?10)",
    [REC_FORGET] = "DELETE FROM tasks WHERE id = ?1",
    [REC_START] = "UPDATE tasks SET status = 'RUNNING', started_us = ?2, attempts = ?3"
                  " WHERE id = ?1",
    [REC_FINISH] = "UPDATE tasks SET status = ?2, started_us = ?3, finished_us = ?4,"
                   " stdout_total = ?5, stdout_truncated = ?6, stderr_total = ?7,"
                   " stderr_truncated = ?8, exit_code = ?9, signal = ?10, timed_out = ?11,"
                   " cpu_us = ?12, error = ?13, stdout = ?14, stderr = ?15, file = NULL,"
                   " stdin = NULL, env = NULL, tests = ?16, files = NULL, cancelled = ?17,"
                   " limits = NULL, mem_peak = ?18, limit_hit = ?19, compiled = ?20,"
                   " compile_out = ?21, compile_exit = ?22"
                   " WHERE id = ?1",
};

/* The n strings of v as one blob of NUL-terminated strings. Returns a
 * malloc'd blob (NULL for none) or sets *failed. */
static char *vec_blob(char *const *v, int n_str, size_t *len, int *failed)
{
    size_t n = 0;
    for (int i = 0; i < n_str; i++)
        n += strlen(v[i]) + 1;
    *len = n;
    if (!n)
        return NULL;
    char *b = malloc(n), *p = b;
    if (!b) {
        *failed = 1;
        return NULL;
    }
    for (int i = 0; i < n_str; i++) {
        size_t l = strlen(v[i]) + 1;
        memcpy(p, v[i], l);
        p += l;
    }
    return b;
}

/* Binds an optional blob: NULL stays NULL, anything else (even empty) is
 * a blob. */
static void bind_blob(sqlite3_stmt *st, int i, const void *p, size_t len)
{
    if (p)
        sqlite3_bind_blob64(st, i, p, len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Writes one record inside the writer's transaction. Returns an SQLite
 * code. */
static int write_rec(journal *j, rec *r)
{
    sqlite3_stmt *st = j->st[r->kind];
    const task *t = r->t;
    char *args = NULL, *env = NULL;
    unsigned char *files = NULL;
    size_t flen = 0;
    buf tests = BUF_INIT, limits = BUF_INIT;
    int failed = 0;
    sqlite3_bind_blob(st, 1, r->id, sizeof r->id, SQLITE_STATIC);
    switch (r->kind) {
    case REC_ADD: {
        size_t alen, elen;
        args = vec_blob(t->args, t->argc, &alen, &failed);
        env = vec_blob(t->env, t->envc, &elen, &failed);
        if (failed)
            break;
        /* A language's task is kept under the language's name. */
        sqlite3_bind_text(st, 2, task_type_label(t), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, t->created_us);
        bind_blob(st, 4, args, alen);
        bind_blob(st, 5, t->file ? (const void *)t->file : "", t->file_len);
        bind_blob(st, 6, t->input, t->input_len);
        bind_blob(st, 7, env, elen);
        if ((t->tests && testset_write_cases(&tests, t->tests) < 0) ||
            request_files_pack(t->files, t->nfiles, &files, &flen) < 0 ||
            (task_limits_asked(&t->limits) && request_limits_json(&limits, &t->limits) < 0)) {
            failed = 1;
            break;
        }
        if (t->tests)
            bind_blob(st, 8, tests.data, tests.len);
        bind_blob(st, 9, files, flen);
        if (limits.len)
            sqlite3_bind_text(st, 10, limits.data, (int)limits.len, SQLITE_STATIC);
        break;
    }
    case REC_FORGET:
        break;
    case REC_START:
        sqlite3_bind_int64(st, 2, r->started_us);
        sqlite3_bind_int(st, 3, r->attempts);
        break;
    case REC_FINISH:
        sqlite3_bind_text(st, 2, task_status_name(r->final), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, r->started_us);
        sqlite3_bind_int64(st, 4, r->finished_us);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)t->out_total);
        sqlite3_bind_int(st, 6, t->out_truncated);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)t->err_total);
        sqlite3_bind_int(st, 8, t->err_truncated);
        if (t->exited)
            sqlite3_bind_int(st, 9, t->exit_code);
        if (t->term_signal)
            sqlite3_bind_int(st, 10, t->term_signal);
        sqlite3_bind_int(st, 11, t->timed_out);
        sqlite3_bind_int64(st, 12, t->cpu_us);
        if (t->error)
            sqlite3_bind_text(st, 13, t->error, -1, SQLITE_STATIC);
        bind_blob(st, 14, t->out, t->out_len);
        bind_blob(st, 15, t->err, t->err_len);
        if (t->tests && t->tests->ended)
            bind_blob(st, 16, t->tests->rendered.data, t->tests->rendered.len);
        sqlite3_bind_int(st, 17, t->cancelled);
        if (t->mem_peak)
            sqlite3_bind_int64(st, 18, t->mem_peak);
        if (t->limit)
            sqlite3_bind_text(st, 19, t->limit, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 20, t->compiled);
        bind_blob(st, 21, t->compile_out, t->compile_out_len);
        if (t->compile_exited)
            sqlite3_bind_int(st, 22, t->compile_exit_code);
        break;
    case REC_KINDS:
        break;
    }
    /* A record that could not be put together is not written half. */
    int rc = failed ? SQLITE_NOMEM : sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    free(args);
    free(env);
    free(files);
    buf_destroy(&tests);
    buf_destroy(&limits);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Writes a batch in one transaction (groupcommit_write_fn). Returns 0 or
 * a negative error (then nothing of the batch is written). */
static int write_batch(void *owner, groupcommit_rec *batch)
{
    journal *j = owner;
    long count = 0;
    int rc = sqlite3_exec(j->db, "BEGIN", NULL, NULL, NULL);
    for (groupcommit_rec *r = batch; r && rc == SQLITE_OK; r = r->next) {
        rc = write_rec(j, (rec *)r);
        count++;
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return 0;
    log_error("journal %s/%s: could not write %ld records: %s", j->dir, JOURNAL_FILE, count,
              sqlite3_errmsg(j->db));
    if (!sqlite3_get_autocommit(j->db))
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    return journal_db_errno(rc);
}

/* Takes back a record nobody waited for (groupcommit_release_fn):
 * publishes a finished task. */
static void release(void *owner, groupcommit_rec *link, int rc)
{
    journal *j = owner;
    rec *r = (rec *)link;
    (void)rc;
    if (r->kind == REC_FINISH) {
        /* Published even when the write failed: the run happened, and the
         * failure is logged. */
        store_mark_finished_at(j->s, r->t, r->final, r->finished_us);
        task_unref(r->t);
    }
    free(r);
}

/* Queues r and, for a waited record, returns once it is written. Returns
 * 0, the write's error, or -ESHUTDOWN (r not queued) before
 * journal_start or once the writer is gone. */
static int submit(journal *j, rec *r)
{
    if (!atomic_load(&j->started))
        return -ESHUTDOWN;
    return groupcommit_submit(&j->gc, &r->link);
}

/* Queues the deletion of a task's record. */
static void forget(journal *j, const task *t)
{
    rec *r = calloc(1, sizeof *r);
    if (!r) {
        /* The row stays; restore trims finished rows beyond the limit. */
        log_error("task %s: out of memory deleting it from the journal", t->id_str);
        return;
    }
    r->kind = REC_FORGET;
    memcpy(r->id, t->id, sizeof r->id);
    if (submit(j, r) < 0)
        free(r);
}

int journal_start(journal *j, store *s)
{
    for (int k = 0; k < REC_KINDS; k++) {
        int rc =
            sqlite3_prepare_v3(j->db, rec_sql[k], -1, SQLITE_PREPARE_PERSISTENT, &j->st[k], NULL);
        if (rc != SQLITE_OK) {
            log_error("journal %s/%s: %s", j->dir, JOURNAL_FILE, sqlite3_errmsg(j->db));
            return journal_db_errno(rc);
        }
    }
    j->s = s;
    int rc = groupcommit_init(&j->gc, write_batch, release, j);
    if (rc < 0)
        return rc;
    atomic_store(&j->started, 1);
    return 0;
}

int journal_add(journal *j, task *t)
{
    rec r = {.link.waited = 1, .kind = REC_ADD, .t = t};
    memcpy(r.id, t->id, sizeof r.id);
    return submit(j, &r);
}

void journal_forget(journal *j, task *t)
{
    forget(j, t);
}

int journal_started(journal *j, task *t)
{
    task_view v = store_view(j->s, t, 0);
    rec onstack = {.kind = REC_START, .started_us = v.started_us, .attempts = v.attempts};
    rec *r = &onstack;
    /* Only fail needs the start on disk before the program runs: that is
     * what makes a crash never run a task twice. requeue runs it again
     * anyway, so the worker does not wait for the commit (a crash within
     * it re-runs the task without counting the attempt). */
    if (j->cfg.fail_running)
        r->link.waited = 1;
    else if (!(r = malloc(sizeof *r)))
        return -ENOMEM;
    else
        *r = onstack;
    memcpy(r->id, t->id, sizeof r->id);
    int rc = submit(j, r);
    if (rc < 0) {
        log_error("task %s: could not record its start: %s", t->id_str, strerror(-rc));
        if (!r->link.waited && rc == -ESHUTDOWN)
            free(r);
    }
    return rc;
}

void journal_finished(journal *j, task *t, enum task_status final)
{
    int64_t now = time_now_us();
    task_view v = store_view(j->s, t, 0);
    rec *r = calloc(1, sizeof *r);
    const char *why = r ? "journal stopped" : "out of memory";
    if (r) {
        r->kind = REC_FINISH;
        memcpy(r->id, t->id, sizeof r->id);
        r->t = task_ref(t);
        r->final = final;
        r->finished_us = now;
        /* A task that ends without starting starts when it ends. */
        r->started_us = v.status == TASK_WAIT ? now : v.started_us;
        if (submit(j, r) == 0)
            return;
        task_unref(t);
        free(r);
    }
    log_error("task %s: its result is not in the journal (%s)", t->id_str, why);
    store_mark_finished_at(j->s, t, final, now);
}

void journal_close(journal *j)
{
    if (!j)
        return;
    if (atomic_load(&j->started))
        groupcommit_destroy(&j->gc);
    for (long i = 0; i < j->nrestored; i++)
        task_unref(j->restored[i]);
    free(j->restored);
    for (int k = 0; k < REC_KINDS; k++)
        sqlite3_finalize(j->st[k]);
    /* The last close checkpoints the WAL into the database and removes it. */
    if (sqlite3_close(j->db) != SQLITE_OK)
        log_error("journal %s/%s: %s", j->dir, JOURNAL_FILE, sqlite3_errmsg(j->db));
    free(j->dir);
    free(j);
}
