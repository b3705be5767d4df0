/* tasks: see tasks.h. The lifecycle, then the two backends: memory and
 * the journal, wrapped as it is. */
#include "tasks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "log.h"

/* Retention dropped t from the store: the backend forgets it too. Runs
 * after the store lock is released (see store_set_evict_hook). */
static void on_evict(void *arg, task *t)
{
    tasks *tk = arg;
    tk->ops->evict(tk->impl, t);
}

int tasks_open(tasks *tk, const tasks_config *cfg, const tasks_backend_ops *ops, void *impl,
               tasks_restored *n, char *err, size_t errsz)
{
    tasks_restored none;
    memset(tk, 0, sizeof *tk);
    tk->budget = cfg->budget;
    tk->ops = ops;
    tk->impl = impl;
    int rc = store_init(&tk->s, cfg->max_finished);
    if (rc < 0) {
        snprintf(err, errsz, "%s", strerror(-rc));
        goto fail_store;
    }
    if ((rc = queue_init(&tk->q, cfg->max_waiting)) < 0) {
        snprintf(err, errsz, "%s", strerror(-rc));
        goto fail_queue;
    }
    memset(n ? n : &none, 0, sizeof none);
    if ((rc = ops->open(impl, &tk->s, cfg->max_finished, n ? n : &none, err, errsz)) < 0)
        goto fail_open;
    /* After the load: what open drops is the backend's own business. */
    store_set_evict_hook(&tk->s, on_evict, tk);
    return 0;

fail_open:
    queue_destroy(&tk->q);
fail_queue:
    store_destroy(&tk->s);
fail_store:
    ops->close(impl);
    return rc;
}

void tasks_admit_restored(tasks *tk)
{
    tk->ops->admit_restored(tk->impl, &tk->q);
}

int tasks_durable(const tasks *tk)
{
    return tk->ops->durable;
}

int tasks_submit(tasks *tk, task *t, size_t *held)
{
    /* Refused like a full queue: what waits is bounded in bytes too. */
    int rc = task_hold(t, tk->budget, held);
    if (rc < 0) {
        log_info("task refused: memory budget (--max-queue-bytes) exhausted");
        return rc;
    }
    /* Kept before anyone can see it, let alone get its id. */
    if ((rc = tk->ops->add(tk->impl, t)) < 0)
        return rc;
    if (tk->ops->shared_queue)
        return 0; /* admitted with the insert; whichever node claims it runs it */
    store_add(&tk->s, t);
    /* At debug: with the start and the end, three lines per task cost 6 %
     * of the server's CPU on trivial tasks (perf, --sandbox off); the end
     * line, logged at info, names the task, its type and result. */
    log_debug("task %s %s WAIT", t->id_str, task_type_label(t));
    rc = queue_push(&tk->q, t);
    if (rc < 0) {
        log_info("task %s refused: %s", t->id_str,
                 rc == -ESHUTDOWN ? "shutting down" : "at capacity");
        store_remove(&tk->s, t);
        tk->ops->forget(tk->impl, t);
    }
    return rc;
}

task *tasks_next(tasks *tk)
{
    return queue_pop(&tk->q);
}

void tasks_started(tasks *tk, task *t, struct live *lv)
{
    store_mark_running(&tk->s, t, lv);
    /* With --on-restart fail, durable before the program runs, so that a
     * crash never runs the task twice; with requeue recorded without
     * waiting (a crash within the commit re-runs the task without
     * counting the attempt). */
    tk->ops->started(tk->impl, t);
}

void tasks_finished(tasks *tk, task *t, enum task_status final)
{
    tk->ops->finished(tk->impl, &tk->s, t, final);
}

void tasks_end_cancelled(tasks *tk, task *t)
{
    /* Written before the final status is published, like any result. */
    t->cancelled = 1;
    if (!t->error)
        t->error = strdup("cancelled");
    /* What its client sent goes now, not at its last reference. */
    task_drop_program(t);
    task_drop_args(t);
    log_info("task %s %s ERROR: cancelled before it started", t->id_str, task_type_name(t->type));
    tk->ops->finished(tk->impl, &tk->s, t, TASK_ERROR);
}

/* Non-zero for a copy of a task held by a shared store, not by this
 * node's store. */
static int is_copy(tasks *tk, task *t)
{
    if (!tk->ops->watch)
        return 0;
    task *mine = store_lookup(&tk->s, t->id_str);
    task_unref(mine);
    return mine != t;
}

int tasks_cancel(tasks *tk, task *t)
{
    /* Held elsewhere, or waiting in the shared queue: the backend ends the
     * row and reaches the node that runs it. */
    if (tk->ops->cancel && is_copy(tk, t))
        return tk->ops->cancel(tk->impl, t);
    /* Out of the queue: no worker will ever see it. */
    if (queue_remove(&tk->q, t)) {
        tasks_end_cancelled(tk, t);
        task_unref(t); /* the queue's */
        return 0;
    }
    /* A worker has it, or it is final already. */
    return store_cancel(&tk->s, t);
}

int tasks_arm_cancel(tasks *tk, task *t, int fd)
{
    return store_arm_cancel(&tk->s, t, fd);
}

task *tasks_lookup(tasks *tk, const char *id)
{
    task *t = store_lookup(&tk->s, id);
    if (!tk->ops->lookup)
        return t;
    /* A shared store: this node's copy serves while the task runs here
     * (it has the live output); once it is final, or held elsewhere, the
     * database is the truth (a result dropped here by a lease fence may
     * have been written by another node). */
    if (t && !task_status_final(store_view(&tk->s, t, 0).status))
        return t;
    task *row = tk->ops->lookup(tk->impl, id);
    if (!row)
        return t;
    task_unref(t);
    return row;
}

task_view tasks_view(tasks *tk, task *t, int64_t deadline_mono_us)
{
    if (deadline_mono_us <= 0 || !is_copy(tk, t))
        return store_view(&tk->s, t, deadline_mono_us);
    tk->ops->watch(tk->impl, t);
    task_view v = store_view(&tk->s, t, deadline_mono_us);
    tk->ops->unwatch(tk->impl, t);
    return v;
}

void tasks_wait_started(tasks *tk, task *t, int64_t deadline_mono_us)
{
    /* A copy has no live output here: its stream waits for the end and
     * sends the stdout the result holds. */
    if (is_copy(tk, t))
        tasks_view(tk, t, deadline_mono_us);
    else
        store_wait_started(&tk->s, t, deadline_mono_us);
}

int tasks_runs_elsewhere(tasks *tk, task *t, char *url, size_t n)
{
    if (!tk->ops->runner_url || !is_copy(tk, t) || store_view(&tk->s, t, 0).status != TASK_RUNNING)
        return 0;
    return tk->ops->runner_url(tk->impl, t, url, n) == 0;
}

struct live *tasks_live(tasks *tk, task *t)
{
    return store_live_get(&tk->s, t);
}

tasks_counts tasks_get_counts(tasks *tk)
{
    store_counts c = store_get_counts(&tk->s);
    return (tasks_counts){.queued = queue_len(&tk->q),
                          .waiting = c.waiting,
                          .running = c.running,
                          .finished = c.finished,
                          .total = c.total,
                          .evicted = c.evicted};
}

tasks_counts tasks_service_counts(tasks *tk)
{
    tasks_counts c;
    if (tk->ops->counts && tk->ops->counts(tk->impl, &c) == 0)
        return c;
    return tasks_get_counts(tk);
}

long tasks_stop_queue(tasks *tk)
{
    return queue_close(&tk->q);
}

void tasks_close(tasks *tk)
{
    store_close(&tk->s);
}

int tasks_closing(tasks *tk)
{
    return store_is_closing(&tk->s);
}

void tasks_destroy(tasks *tk)
{
    /* The backend may publish (and so evict) until its last write: the
     * hook stays until it is closed. */
    tk->ops->close(tk->impl);
    store_set_evict_hook(&tk->s, NULL, NULL);
    queue_destroy(&tk->q);
    store_destroy(&tk->s);
}

/* Memory: the store is all there is. */

static int mem_open(void *impl, store *s, long max_finished, tasks_restored *n, char *err,
                    size_t errsz)
{
    (void)impl, (void)s, (void)max_finished, (void)n, (void)err, (void)errsz;
    return 0;
}

static void mem_admit_restored(void *impl, queue *q)
{
    (void)impl, (void)q;
}

static int mem_add(void *impl, task *t)
{
    (void)impl, (void)t;
    return 0;
}

static void mem_forget(void *impl, task *t)
{
    (void)impl, (void)t;
}

static int mem_started(void *impl, task *t)
{
    (void)impl, (void)t;
    return 0;
}

static void mem_finished(void *impl, store *s, task *t, enum task_status final)
{
    (void)impl;
    store_mark_finished(s, t, final);
}

static void mem_close(void *impl)
{
    (void)impl;
}

const tasks_backend_ops tasks_memory_ops = {
    .name = "memory",
    .durable = 0,
    .open = mem_open,
    .admit_restored = mem_admit_restored,
    .add = mem_add,
    .forget = mem_forget,
    .started = mem_started,
    .finished = mem_finished,
    .evict = mem_forget,
    .close = mem_close,
};

/* Journal: the writer thread publishes results in the store it was
 * started on once they are committed. */

static int jr_open(void *impl, store *s, long max_finished, tasks_restored *n, char *err,
                   size_t errsz)
{
    journal_restored jn = {0};
    int rc = journal_restore(impl, s, max_finished, &jn, err, errsz);
    if (rc < 0)
        return rc;
    *n = (tasks_restored){.finished = jn.finished,
                          .waiting = jn.waiting,
                          .requeued = jn.requeued,
                          .interrupted = jn.interrupted,
                          .dropped = jn.dropped};
    if ((rc = journal_start(impl, s)) < 0)
        snprintf(err, errsz, "cannot start the journal: %s", strerror(-rc));
    return rc;
}

static void jr_admit_restored(void *impl, queue *q)
{
    journal_queue_restored(impl, q);
}

static int jr_add(void *impl, task *t)
{
    return journal_add(impl, t);
}

static void jr_forget(void *impl, task *t)
{
    journal_forget(impl, t);
}

static int jr_started(void *impl, task *t)
{
    return journal_started(impl, t);
}

static void jr_finished(void *impl, store *s, task *t, enum task_status final)
{
    (void)s; /* the journal's own: the one jr_open started it on */
    journal_finished(impl, t, final);
}

static void jr_close(void *impl)
{
    journal_close(impl);
}

const tasks_backend_ops tasks_journal_ops = {
    .name = "journal",
    .durable = 1,
    .open = jr_open,
    .admit_restored = jr_admit_restored,
    .add = jr_add,
    .forget = jr_forget,
    .started = jr_started,
    .finished = jr_finished,
    .evict = jr_forget,
    .close = jr_close,
};
