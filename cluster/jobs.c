/* jobs: see jobs.h. */
#include "jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "log.h"
#include "timefmt.h"

#define JOBS_ROOT UINT32_MAX /* parent of the root node */
#define JOBS_DONE 0xFF       /* missing[] of an operation whose result is in */

struct job {
    int64_t id;
    char *text; /* owned, NUL-terminated */
    size_t text_len;
    expr_plan *plan; /* owned */
    num *val;        /* per node: literal value or result once known */
    uint32_t *parent;
    uint8_t *missing; /* per operation: operands still unknown, or JOBS_DONE */
    size_t ops, ops_done;
    unsigned depth;
    int recording; /* its record is not yet durable: not shown, not dispatched */
    int finished;
    int failed;
    num answer;                          /* once finished without error */
    char *error;                         /* owned; once failed (NULL if it could not be copied) */
    int64_t created_us, finished_us;     /* wall clock */
    int64_t created_mono, finished_mono; /* for the elapsed time */
    struct job *fin_next;                /* finished list */
};

struct jobs_ready_ent {
    int64_t job_id;
    uint32_t node;
    int attempts;
};

/* A circular FIFO that can also push at the head (for retries). */
struct jobs_ready {
    struct jobs_ready_ent *e;
    size_t cap, head, len;
};

/* Evicted ids a note carries to the store; more (only when many jobs
 * were submitted while none finished) leave rows that the next start
 * trims. */
#define JOBS_NOTE_EVICTED 8

/* What to do once the lock is released: a line to log and, with a store,
 * the finish of a job and the jobs retention dropped. */
struct jobs_note {
    char text[384];
    int warn;
    int64_t fin_id; /* 0: nothing finished */
    int64_t finished_us;
    size_t ops_done;
    char answer[NUM_FMT_SIZE]; /* "" for a failed job */
    char *error;               /* owned copy; NULL without error */
    int64_t evicted[JOBS_NOTE_EVICTED];
    int nevicted;
};

static void job_free(struct job *jb)
{
    if (!jb)
        return;
    free(jb->text);
    expr_plan_free(jb->plan);
    free(jb->val);
    free(jb->parent);
    free(jb->missing);
    free(jb->error);
    free(jb);
}

int jobs_init(jobs *j, long max_kept)
{
    memset(j, 0, sizeof *j);
    j->ready = calloc(1, sizeof *j->ready);
    if (!j->ready)
        return -ENOMEM;
    int rc = pthread_mutex_init(&j->lock, NULL);
    if (rc) {
        free(j->ready);
        return -rc;
    }
    j->base_id = j->next_id = 1;
    j->max_kept = max_kept < 1 ? 1 : max_kept;
    return 0;
}

/* Moves the start of the table past dropped jobs. */
static void jobs_trim_head(jobs *j)
{
    while (j->span > 0 && !j->slots[j->head]) {
        j->head = (j->head + 1) % j->cap;
        j->base_id++;
        j->span--;
    }
}

/* Drops the oldest finished job (there must be one) and returns its id. */
static int64_t jobs_drop_oldest(jobs *j)
{
    struct job *jb = j->fin_first;
    int64_t id = jb->id;
    j->fin_first = jb->fin_next;
    if (!j->fin_first)
        j->fin_last = NULL;
    j->slots[(j->head + (size_t)(id - j->base_id)) % j->cap] = NULL;
    job_free(jb);
    j->kept--;
    return id;
}

void jobs_destroy(jobs *j)
{
    for (size_t k = 0; k < j->span; k++)
        job_free(j->slots[(j->head + k) % j->cap]);
    free(j->slots);
    free(j->ready->e);
    free(j->ready);
    pthread_mutex_destroy(&j->lock);
    memset(j, 0, sizeof *j);
}

static int ready_reserve(struct jobs_ready *r, size_t extra)
{
    if (r->len + extra <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 64;
    while (cap < r->len + extra)
        cap *= 2;
    struct jobs_ready_ent *e = reallocarray(NULL, cap, sizeof *e);
    if (!e)
        return -ENOMEM;
    for (size_t k = 0; k < r->len; k++)
        e[k] = r->e[(r->head + k) % r->cap];
    free(r->e);
    r->e = e;
    r->cap = cap;
    r->head = 0;
    return 0;
}

static int ready_push(struct jobs_ready *r, struct jobs_ready_ent ent, int at_head)
{
    if (ready_reserve(r, 1) < 0)
        return -ENOMEM;
    if (at_head) {
        r->head = (r->head + r->cap - 1) % r->cap;
        r->e[r->head] = ent;
    } else {
        r->e[(r->head + r->len) % r->cap] = ent;
    }
    r->len++;
    return 0;
}

static struct job *jobs_find(jobs *j, int64_t id)
{
    if (id < j->base_id || id >= j->base_id + (int64_t)j->span)
        return NULL;
    return j->slots[(j->head + (size_t)(id - j->base_id)) % j->cap];
}

/* Drops the oldest finished jobs beyond max_kept; with a store, note
 * carries their ids to it. */
static void jobs_evict(jobs *j, struct jobs_note *note)
{
    while (j->kept > j->max_kept && j->fin_first) {
        int64_t id = jobs_drop_oldest(j);
        if (j->store && note->nevicted < JOBS_NOTE_EVICTED)
            note->evicted[note->nevicted++] = id;
    }
    jobs_trim_head(j);
}

/* Finishes jb with answer (error NULL) or with error. Fills note. */
static void jobs_finish(jobs *j, struct job *jb, num answer, const char *error,
                        struct jobs_note *note)
{
    jb->finished = 1;
    jb->finished_us = time_now_us();
    jb->finished_mono = time_mono_us();
    double ms = (jb->finished_mono - jb->created_mono) / 1e3;
    if (error) {
        jb->failed = 1;
        jb->error = strdup(error);
        snprintf(note->text, sizeof note->text, "job %lld failed after %.1f ms: %s",
                 (long long)jb->id, ms, error);
        note->warn = 1;
    } else {
        jb->answer = answer;
        num_fmt(answer, note->answer, sizeof note->answer);
        snprintf(note->text, sizeof note->text, "job %lld finished in %.1f ms: %s",
                 (long long)jb->id, ms, note->answer);
    }
    if (j->store) {
        note->fin_id = jb->id;
        note->finished_us = jb->finished_us;
        note->ops_done = jb->ops_done;
        if (error)
            note->error = strdup(error);
    }
    j->unfinished--;
    if (j->fin_last)
        j->fin_last->fin_next = jb;
    else
        j->fin_first = jb;
    j->fin_last = jb;
    jobs_evict(j, note);
}

/* Carries out a note, with the lock released: logs its line and hands the
 * finish and the evictions to the store. */
static void jobs_note_flush(jobs *j, struct jobs_note *note)
{
    if (note->text[0] && note->warn)
        log_warn("%s", note->text);
    else if (note->text[0])
        log_info("%s", note->text);
    if (j->store && note->fin_id) {
        jobstore_row row = {.id = note->fin_id,
                            .finished = 1,
                            .finished_us = note->finished_us,
                            .ops_done = note->ops_done,
                            .answer = note->error || !note->answer[0] ? NULL : note->answer,
                            .error = note->error};
        /* A copy that failed stores the error job_json shows for it. */
        if (!row.answer && !row.error)
            row.error = "out of memory";
        j->store->ops->finish(j->store->impl, &row);
    }
    for (int k = 0; j->store && k < note->nevicted; k++)
        j->store->ops->forget(j->store->impl, note->evicted[k]);
    free(note->error);
}

/* Builds the job record outside the lock. Returns NULL on ENOMEM. */
static struct job *job_new(const char *text, size_t len, expr_plan *plan, size_t *nready)
{
    struct job *jb = calloc(1, sizeof *jb);
    if (!jb)
        return NULL;
    size_t n = expr_plan_count(plan);
    jb->text = strndup(text, len);
    jb->val = calloc(n, sizeof *jb->val);
    jb->parent = calloc(n, sizeof *jb->parent);
    jb->missing = calloc(n, sizeof *jb->missing);
    if (!jb->text || !jb->val || !jb->parent || !jb->missing) {
        job_free(jb);
        return NULL;
    }
    jb->text_len = len;
    jb->ops = expr_plan_ops(plan);
    jb->depth = expr_plan_depth(plan);
    jb->created_us = time_now_us();
    jb->created_mono = time_mono_us();
    *nready = 0;
    for (size_t i = 0; i < n; i++) {
        const expr_node *nd = expr_plan_node(plan, i);
        jb->parent[i] = JOBS_ROOT;
        if (nd->kind == EXPR_LIT) {
            jb->val[i] = nd->value;
            continue;
        }
        jb->parent[nd->lhs] = (uint32_t)i;
        jb->parent[nd->rhs] = (uint32_t)i;
        jb->missing[i] = (uint8_t)((expr_plan_node(plan, nd->lhs)->kind == EXPR_OP) +
                                   (expr_plan_node(plan, nd->rhs)->kind == EXPR_OP));
        if (jb->missing[i] == 0)
            (*nready)++;
    }
    jb->plan = plan;
    return jb;
}

static int jobs_grow(jobs *j)
{
    size_t cap = j->cap ? j->cap * 2 : 64;
    struct job **slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t k = 0; k < j->span; k++)
        slots[k] = j->slots[(j->head + k) % j->cap];
    free(j->slots);
    j->slots = slots;
    j->cap = cap;
    j->head = 0;
    return 0;
}

/* Makes a job that is in the table dispatchable: its first operations
 * become ready, or a job without operations finishes. Under the lock. */
static void jobs_activate(jobs *j, struct job *jb, struct jobs_note *note)
{
    size_t n = expr_plan_count(jb->plan);
    for (size_t i = 0; i < n; i++) {
        if (expr_plan_node(jb->plan, i)->kind != EXPR_OP || jb->missing[i] != 0)
            continue;
        if (ready_push(j->ready, (struct jobs_ready_ent){jb->id, (uint32_t)i, 0}, 0) < 0) {
            jobs_finish(j, jb, num_int(0), "out of memory", note);
            return;
        }
    }
    if (jb->ops == 0)
        jobs_finish(j, jb, jb->val[expr_plan_root(jb->plan)], NULL, note);
}

/* Puts jb in the table under the next id. Under the lock; returns 0 or
 * -ENOMEM. */
static int jobs_place(jobs *j, struct job *jb, size_t nready)
{
    if ((j->span == j->cap && jobs_grow(j) < 0) || ready_reserve(j->ready, nready) < 0)
        return -ENOMEM;
    jb->id = j->next_id++;
    if (j->span == 0)
        j->base_id = jb->id;
    j->slots[(j->head + j->span) % j->cap] = jb;
    j->span++;
    j->kept++;
    j->unfinished++;
    return 0;
}

/* With a store: records the job placed as id and activates it once that
 * is durable, or takes it out of the table again. Returns 0 or the
 * store's error (then the plan is the caller's again). */
static int jobs_record(jobs *j, int64_t id, const char *text, size_t len, int64_t created_us,
                       struct jobs_note *note)
{
    int rc = j->store->ops->record(j->store->impl, id, text, len, created_us);
    struct job *gone = NULL;
    pthread_mutex_lock(&j->lock);
    /* Still there: a recording job is unfinished, so never dropped. */
    struct job *jb = jobs_find(j, id);
    if (rc == 0) {
        jb->recording = 0;
        jobs_activate(j, jb, note);
    } else {
        j->slots[(j->head + (size_t)(id - j->base_id)) % j->cap] = NULL;
        j->kept--;
        j->unfinished--;
        jobs_trim_head(j);
        jb->plan = NULL;
        gone = jb;
    }
    pthread_mutex_unlock(&j->lock);
    job_free(gone);
    return rc;
}

int jobs_submit(jobs *j, const char *text, size_t len, expr_plan *plan, int64_t *id, int *finished)
{
    size_t nready;
    struct job *jb = job_new(text, len, plan, &nready);
    if (!jb)
        return -ENOMEM;
    struct jobs_note note = {0};
    pthread_mutex_lock(&j->lock);
    if (jobs_place(j, jb, nready) < 0) {
        pthread_mutex_unlock(&j->lock);
        jb->plan = NULL; /* stays the caller's */
        job_free(jb);
        return -ENOMEM;
    }
    *id = jb->id;
    int64_t created_us = jb->created_us;
    jb->recording = j->store != NULL;
    if (!jb->recording)
        jobs_activate(j, jb, &note);
    /* jb may be evicted by now if max_kept is tiny: read nothing from it. */
    pthread_mutex_unlock(&j->lock);
    if (j->store) {
        int rc = jobs_record(j, *id, text, len, created_us, &note);
        if (rc < 0) {
            log_error("job %lld refused: it could not be stored: %s", (long long)*id,
                      strerror(-rc));
            return rc;
        }
    }
    *finished = note.text[0] != '\0';
    log_debug("job %lld submitted", (long long)*id);
    jobs_note_flush(j, &note);
    return 0;
}

int jobs_has_ready(jobs *j)
{
    pthread_mutex_lock(&j->lock);
    int r = j->ready->len > 0;
    pthread_mutex_unlock(&j->lock);
    return r;
}

int jobs_take_ready(jobs *j, jobs_op *out)
{
    int got = 0;
    pthread_mutex_lock(&j->lock);
    struct jobs_ready *r = j->ready;
    while (r->len > 0 && !got) {
        struct jobs_ready_ent ent = r->e[r->head];
        r->head = (r->head + 1) % r->cap;
        r->len--;
        struct job *jb = jobs_find(j, ent.job_id);
        if (!jb || jb->finished)
            continue;
        const expr_node *nd = expr_plan_node(jb->plan, ent.node);
        *out = (jobs_op){.job_id = ent.job_id,
                         .node = ent.node,
                         .op = nd->op,
                         .a = jb->val[nd->lhs],
                         .b = jb->val[nd->rhs],
                         .offset = nd->offset,
                         .attempts = ent.attempts};
        got = 1;
    }
    pthread_mutex_unlock(&j->lock);
    return got;
}

int jobs_requeue(jobs *j, const jobs_op *op)
{
    struct jobs_note note = {0};
    int rc = 0;
    pthread_mutex_lock(&j->lock);
    struct job *jb = jobs_find(j, op->job_id);
    if (jb && !jb->finished) {
        rc = ready_push(j->ready, (struct jobs_ready_ent){op->job_id, op->node, op->attempts}, 1);
        if (rc < 0)
            jobs_finish(j, jb, num_int(0), "out of memory", &note);
    }
    pthread_mutex_unlock(&j->lock);
    jobs_note_flush(j, &note);
    return rc;
}

void jobs_op_done(jobs *j, const jobs_op *op, num result)
{
    struct jobs_note note = {0};
    pthread_mutex_lock(&j->lock);
    struct job *jb = jobs_find(j, op->job_id);
    if (!jb || jb->finished || op->node >= expr_plan_count(jb->plan) ||
        jb->missing[op->node] == JOBS_DONE)
        goto out;
    jb->val[op->node] = result;
    jb->missing[op->node] = JOBS_DONE;
    jb->ops_done++;
    uint32_t p = jb->parent[op->node];
    if (p == JOBS_ROOT) {
        jobs_finish(j, jb, result, NULL, &note);
    } else if (--jb->missing[p] == 0 &&
               ready_push(j->ready, (struct jobs_ready_ent){jb->id, p, 0}, 0) < 0) {
        jobs_finish(j, jb, num_int(0), "out of memory", &note);
    }
out:
    pthread_mutex_unlock(&j->lock);
    jobs_note_flush(j, &note);
}

void jobs_op_failed(jobs *j, const jobs_op *op, const char *error)
{
    struct jobs_note note = {0};
    pthread_mutex_lock(&j->lock);
    struct job *jb = jobs_find(j, op->job_id);
    if (jb && !jb->finished)
        jobs_finish(j, jb, num_int(0), error, &note);
    pthread_mutex_unlock(&j->lock);
    jobs_note_flush(j, &note);
}

static void job_json(const struct job *jb, buf *b)
{
    char ts[TIMEFMT_LEN], ans[NUM_FMT_SIZE];
    buf_printf(b, "{\"job_id\":%lld,\"finished\":%s,\"answer\":", (long long)jb->id,
               jb->finished ? "true" : "false");
    if (jb->finished && !jb->failed && num_fmt(jb->answer, ans, sizeof ans) > 0)
        buf_puts(b, ans);
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"task\":");
    jsonw_str(b, jb->text, jb->text_len);
    buf_printf(b, ",\"operations\":%zu,\"operations_done\":%zu,\"depth\":%u", jb->ops, jb->ops_done,
               jb->depth);
    buf_printf(b, ",\"created_at\":\"%s\"", time_fmt_utc(jb->created_us, ts));
    if (jb->finished) {
        buf_printf(b, ",\"finished_at\":\"%s\",\"elapsed_ms\":%.3f",
                   time_fmt_utc(jb->finished_us, ts), (jb->finished_mono - jb->created_mono) / 1e3);
    }
    if (jb->failed) {
        buf_puts(b, ",\"error\":");
        jsonw_cstr(b, jb->error ? jb->error : "out of memory");
    }
    buf_putc(b, '}');
}

int jobs_json(jobs *j, int64_t id, buf *b)
{
    pthread_mutex_lock(&j->lock);
    const struct job *jb = jobs_find(j, id);
    if (jb && jb->recording)
        jb = NULL; /* its id has not been answered yet */
    if (jb)
        job_json(jb, b);
    pthread_mutex_unlock(&j->lock);
    if (!jb)
        return -ENOENT;
    buf_putc(b, '\n');
    return buf_failed(b) ? -ENOMEM : 0;
}

int jobs_list_json(jobs *j, size_t max, buf *b)
{
    buf_putc(b, '[');
    size_t n = 0;
    pthread_mutex_lock(&j->lock);
    for (size_t k = j->span; k > 0 && n < max; k--) {
        const struct job *jb = j->slots[(j->head + k - 1) % j->cap];
        if (!jb || jb->recording)
            continue;
        if (n++)
            buf_putc(b, ',');
        job_json(jb, b);
    }
    pthread_mutex_unlock(&j->lock);
    buf_puts(b, "]\n");
    return buf_failed(b) ? -ENOMEM : 0;
}

long jobs_kept(jobs *j)
{
    pthread_mutex_lock(&j->lock);
    long n = j->kept;
    pthread_mutex_unlock(&j->lock);
    return n;
}

long jobs_unfinished(jobs *j)
{
    pthread_mutex_lock(&j->lock);
    long n = j->unfinished;
    pthread_mutex_unlock(&j->lock);
    return n;
}

/* What jobs_restore carries between the rows of the store. */
struct jobs_loader {
    jobs *j;
    struct job **fin; /* finished jobs, to be ordered by finish time */
    size_t nfin, capfin;
    jobs_restored *n;
};

/* Sets a restored job's clocks from the stored wall times, so that
 * elapsed_ms spans the restart. */
static void jobs_restore_times(struct job *jb, const jobstore_row *row)
{
    int64_t skew = time_now_us() - time_mono_us();
    jb->created_us = row->created_us;
    jb->created_mono = row->created_us - skew;
    if (row->finished) {
        jb->finished_us = row->finished_us;
        jb->finished_mono = row->finished_us - skew;
    }
}

/* Marks a restored job finished as the store says. Returns 0 or -ENOMEM. */
static int jobs_restore_finished(struct job *jb, const jobstore_row *row)
{
    jb->finished = 1;
    jb->ops_done = row->ops_done;
    if (row->answer && num_from_text(row->answer, strlen(row->answer), &jb->answer) == 0)
        return 0;
    jb->failed = 1;
    jb->error = strdup(row->error ? row->error : "the stored answer could not be read");
    return jb->error ? 0 : -ENOMEM;
}

/* Places one stored job in the table (rows come in increasing id order). */
static int jobs_restore_row(void *arg, const jobstore_row *row)
{
    struct jobs_loader *ld = arg;
    jobs *j = ld->j;
    if (row->id < j->base_id + (int64_t)j->span || row->id < 1)
        return -EINVAL;
    expr_plan *plan;
    int rc = expr_parse(row->text, row->text_len, &plan, NULL);
    if (rc < 0)
        return rc;
    size_t nready; /* jobs_activate pushes them once all are loaded */
    struct job *jb = job_new(row->text, row->text_len, plan, &nready);
    if (!jb) {
        expr_plan_free(plan);
        return -ENOMEM;
    }
    jb->id = row->id;
    jobs_restore_times(jb, row);
    if (j->span == 0)
        j->base_id = j->next_id = row->id;
    size_t at = (size_t)(row->id - j->base_id);
    while (at >= j->cap)
        if (jobs_grow(j) < 0)
            goto nomem;
    if (row->finished) {
        if (ld->nfin == ld->capfin) {
            size_t cap = ld->capfin ? 2 * ld->capfin : 256;
            struct job **fin = reallocarray(ld->fin, cap, sizeof *fin);
            if (!fin)
                goto nomem;
            ld->fin = fin;
            ld->capfin = cap;
        }
        if (jobs_restore_finished(jb, row) < 0)
            goto nomem;
        ld->fin[ld->nfin++] = jb;
        ld->n->finished++;
    } else {
        j->unfinished++;
        ld->n->unfinished++;
    }
    j->slots[(j->head + at) % j->cap] = jb;
    j->span = at + 1;
    j->kept++;
    j->next_id = row->id + 1;
    return 0;

nomem:
    job_free(jb);
    return -ENOMEM;
}

/* Orders finished jobs as they finished (ties: by id). */
static int jobs_fin_cmp(const void *pa, const void *pb)
{
    const struct job *a = *(struct job *const *)pa, *b = *(struct job *const *)pb;
    if (a->finished_us != b->finished_us)
        return a->finished_us < b->finished_us ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

int jobs_restore(jobs *j, jobstore *st, jobs_restored *n, char *err, size_t errsz)
{
    memset(n, 0, sizeof *n);
    j->store = st;
    if (!st)
        return 0;
    struct jobs_loader ld = {.j = j, .n = n};
    int64_t next_id = 1;
    int rc = st->ops->load(st->impl, jobs_restore_row, &ld, &next_id, err, errsz);
    if (rc == 0) {
        if (ld.nfin)
            qsort(ld.fin, ld.nfin, sizeof *ld.fin, jobs_fin_cmp);
        for (size_t k = 0; k < ld.nfin; k++) {
            if (j->fin_last)
                j->fin_last->fin_next = ld.fin[k];
            else
                j->fin_first = ld.fin[k];
            j->fin_last = ld.fin[k];
        }
        /* Retention as if they had finished in this run; rows go too. */
        while (j->kept > j->max_kept && j->fin_first) {
            st->ops->forget(st->impl, jobs_drop_oldest(j));
            n->finished--;
            n->dropped++;
        }
        jobs_trim_head(j);
        /* Unfinished jobs start again from their expression: operations
         * are pure, so what was computed before is simply computed again. */
        /* By id: a job without operations finishes here, and retention
         * may then move the start of the table. */
        for (int64_t id = j->base_id, end = j->next_id; id < end; id++) {
            struct job *jb = jobs_find(j, id);
            if (!jb || jb->finished)
                continue;
            struct jobs_note note = {0};
            jobs_activate(j, jb, &note);
            jobs_note_flush(j, &note);
        }
        if (next_id > j->next_id)
            j->next_id = next_id;
        if (j->span == 0)
            j->base_id = j->next_id;
        n->next_id = j->next_id;
    }
    free(ld.fin);
    return rc;
}
