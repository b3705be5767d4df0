/* tasks_pg: the shared store, a tasks backend over PostgreSQL that lets
 * many nodes serve one service.
 *
 * Every node admits tasks into the database (admission and insert in one
 * transaction), claims waiting ones for its idle workers (one claimer
 * thread: SELECT ... FOR UPDATE SKIP LOCKED, then RUNNING with this node's
 * name and a fresh lease token), runs them in its own pool and records the
 * result only while the lease token still matches (a fence: a node that
 * was given up for dead cannot overwrite the run that replaced its own).
 * A keeper thread heartbeats the nodes table every second and sends the
 * NOTIFY ts_done of finished tasks in batches, outside their
 * transactions; a listener thread LISTENs, wakes the claimer on ts_new and
 * updates the copies that long polls wait on (store_update_copy). Times are
 * the database's clock (now()).
 *
 * A node silent for --lease seconds is dead: a live node's claimer puts
 * its RUNNING tasks back in the queue (ERROR "node lost" after
 * --max-attempts starts, or at once with --on-restart fail). A node that
 * cannot reach the database stops claiming and, once its own lease has run
 * out, kills its running tasks (the cancel hook) and drops their results.
 *
 * Any node cancels any task (POST /cancel_task): it ends the row itself
 * (ERROR "cancelled", which also takes a waiting row out of the queue and
 * fences off the run's result) and sends NOTIFY ts_cancel; the node that
 * runs the task kills the run as a local cancel does and adds its output
 * so far under the lease the cancel kept. A node that missed the NOTIFY
 * finds the row ended at its keeper's next check. GET /stream of a task
 * running elsewhere is redirected to that node's URL.
 *
 * Locking: tasks_pg.lock protects claims, watches, the pending NOTIFY
 * payload, stop and the kicks; it is a leaf, never held across a database
 * call, and taken with no store or queue lock held. The connection pool has
 * its own (pgconn.h). */
#ifndef TS_TASKS_PG_H
#define TS_TASKS_PG_H

#include <stddef.h>

#include "buf.h"
#include "tasks.h"

typedef struct tasks_pg tasks_pg;

typedef struct tasks_pg_config {
    const char *url; /* libpq URI or conninfo; copied */
    int workers;
    double lease;      /* seconds */
    int max_attempts;  /* starts before a lost node's task ends in ERROR */
    int fail_running;  /* --on-restart fail: a lost node's tasks end at once */
    long max_queue;    /* service-wide waiting room beyond idle workers; -1: none */
    long max_finished; /* service-wide retention of finished tasks */
    membudget *budget; /* counts what claimed tasks hold; may be NULL */
} tasks_pg_config;

/* Connects to cfg->url and creates or migrates the schema. Returns 0 and
 * *out (hand it to tasks_open with tasks_pg_ops, which owns it then), or
 * -errno with one sentence in err (cannot connect, schema newer than
 * known). */
int tasks_pg_new(tasks_pg **out, const tasks_pg_config *cfg, char *err, size_t errsz);

/* Names this node (unique in the service) and the URL it is reached at
 * (listed by GET /nodes); both copied. Call once, before
 * tasks_admit_restored, which starts the node: it first requeues what a
 * node of this name left RUNNING before a restart. Returns 0 or -ENOMEM. */
int tasks_pg_set_node(tasks_pg *g, const char *name, const char *advertise);

/* Hooks to kill this node's running tasks when its lease runs out without
 * the database, and to let tasks run again once it is back (the pool's
 * pool_cancel and pool_cancel_reset). Set before tasks_admit_restored. */
void tasks_pg_set_cancel(tasks_pg *g, void (*kill)(void *arg), void (*resume)(void *arg),
                         void *arg);

/* Appends {"nodes":[...]} to b: every live node (heartbeat within the
 * lease) with name, url, workers, running and last_heartbeat. Returns 0, or
 * -EIO (database unreachable) / -ENOMEM. */
int tasks_pg_nodes_json(tasks_pg *g, buf *b);

/* The backend; impl is a tasks_pg from tasks_pg_new. */
extern const tasks_backend_ops tasks_pg_ops;

#endif
