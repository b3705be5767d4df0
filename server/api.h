/* api: the HTTP routes of tasksolver, registered with civetweb.
 *
 * Routes: POST /create_task, GET /get_status, GET /get_task_count,
 * GET /stream, GET /info; anything else is a JSON 404 (or 405 for a known
 * path with the wrong method). Handlers never block on a task except in an
 * explicit long poll (get_status?wait=SECONDS, or create_task?wait=SECONDS,
 * which answers the status document once the task ends) or a stream (which follows
 * a task's stdout until it ends); together they are capped so that they
 * cannot take every connection thread. */
#ifndef TS_API_H
#define TS_API_H

#include <civetweb.h>
#include <stdatomic.h>

#include "buf.h"
#include "config.h"
#include "http.h"
#include "http_routes.h"
#include "membudget.h"
#include "tasks.h"

typedef struct api {
    const config *cfg;
    membudget *budget;  /* set before api_register, or NULL: nothing counted */
    tasks *tk;          /* the lifecycle every route goes through */
    atomic_int waiters; /* long polls in progress */
    int max_waiters;
    atomic_int accepting;     /* 0 once shutting down: create_task answers 503 */
    const char *sandbox_json; /* "sandbox" object for GET /info, or NULL; set by
                                 the caller before api_register, which keeps it */
    const char *refusal;      /* non-NULL: tasks are refused for good with this
                                 sentence (503); set like sandbox_json */
    /* the languages tasks may name, or NULL; set like sandbox_json */
    const struct lang_table *langs;
} api;

/* Prepares a and adds its routes to routes (before the 404 fallback).
 * Returns 0. */
int api_register(api *a, http_routes *routes, const config *cfg, tasks *tk);

/* Makes create_task refuse new work (503) from now on. */
void api_stop_accepting(api *a);

/* Answers 503 with a->refusal and "permanent": true (no Retry-After: asking
 * again will not help) if this server refuses tasks for good, for every
 * route that would run a program. Returns the status sent, or 0 if tasks
 * are accepted (nothing sent). */
int api_refuse_tasks(struct mg_connection *c, const api *a);

/* Submits t, made from a request whose body reservation is in body, to
 * the lifecycle (tasks_submit); t NULL means task_new failed. On a refusal
 * answers it: 503 for no memory, the memory budget's answer, 503 while
 * shutting down or when the task could not be recorded, --reject-status at
 * capacity; the sentences name the noun ("task"), the busy workers
 * ("workers busy") and the waiting ones ("tasks waiting"). Returns 0 with
 * t admitted and the caller's reference kept, or the status sent (t
 * unreferenced, the reservation released). */
int api_submit(struct mg_connection *c, const api *a, task *t, http_body *body, const char *noun,
               const char *busy, const char *waiting);

/* Writes the get_status JSON document of t (as seen in v) into b. Exposed
 * for unit tests. Returns 0 or -ENOMEM. */
int api_status_json(buf *b, const task *t, const task_view *v);

#endif
