/* calc_api: the calculation API of a limited-capacity server, so that
 * tasksolver can stand in for one (see README, "Limited capacity and the
 * batch client").
 *
 *   POST /  {"data": <number>}   -> 200 {"request_id": ID}
 *                                   403/429 when every worker is busy and
 *                                   the queue is full (--max-queue)
 *   GET /?request_id=ID          -> 200 {"result": <number>}
 *                                   400 {"error", "status": "WAIT"|"RUNNING"}
 *                                       while not ready
 *                                   400 {"error", "status": "NOTEXIST"} for
 *                                       an unknown or evicted id
 *                                   500 {"error", "status": "ERROR"} when the
 *                                       calculation failed
 *
 * Each request is a task of type "calc": the configured command with the
 * number's text appended as its last argument; the result is its trimmed
 * stdout, which must be a JSON number. Numbers are passed on as text, never
 * through a double, so big integers and long decimals stay exact. */
#ifndef TS_CALC_API_H
#define TS_CALC_API_H

#include <civetweb.h>
#include <stddef.h>

#include "api.h"
#include "buf.h"
#include "task.h"

/* Longest number text accepted in "data". */
#define CALC_MAX_NUMBER 1024

/* Registers "/$" (the exact root) for the calculation API; a serves the
 * config, the task lifecycle and the shutdown flag. Call between api_register and
 * http_routes_fallback, and only when a calc command is configured. */
void calc_api_register(http_routes *routes, api *a);

/* Reads the number of a POST / body {"data": N} into out (size bytes) as
 * the exact text it has in the body. N is a JSON number, or a string
 * holding exactly one ("17"), since clients that read numbers from a file
 * often send them quoted. Returns 0, or -EINVAL with a sentence in err
 * (missing or mistyped "data", not JSON, too long), or -ENOMEM. */
int calc_api_parse_data(const char *body, size_t len, char *out, size_t size, char *err,
                        size_t errsz);

/* Writes the GET answer for the calc task t, whose final status st the
 * caller saw under the store lock, into b: {"result": N} with the task's
 * stdout (trimmed of whitespace) when that is one JSON number, else
 * {"error": ..., "status": "ERROR"}. Returns the HTTP status (200 or 500),
 * or -ENOMEM. */
int calc_api_result_json(buf *b, const task *t, enum task_status st);

#endif
