/* request_limits: the `limits` object of POST /create_task, checked
 * against the server's caps, and the caps as GET /info shows them.
 *
 * Kept apart from request.c so that each field of the create body stays
 * one function; request_parse_create calls request_parse_limits. */
#ifndef TS_REQUEST_LIMITS_H
#define TS_REQUEST_LIMITS_H

#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "task_limits.h"

struct cJSON;

/* The caps of a server configured by cfg: its own settings for every task
 * (--task-timeout, --task-cpu, --task-memory, --task-procs, --max-output,
 * --task-fsize, --task-disk); 0 where it has none; -1 for those the
 * sandbox applies when it is off. */
void request_limits_caps(const config *cfg, task_limits *caps);

/* Parses `limits` (NULL or null: none asked) into *out (zeroed first):
 * an object with any of timeout, cpu, memory, procs, output, fsize, disk,
 * each a positive number (whole but for timeout), given once, no greater
 * than its cap in caps (a cap of 0: no cap; -1: refused; caps NULL: no
 * caps at all).
 * Returns 0, or -EINVAL with a sentence naming the field (and the cap and
 * its option, when over it) in err. Allocates nothing. */
int request_parse_limits(const struct cJSON *limits, const task_limits *caps, task_limits *out,
                         char *err, size_t errsz);

/* Appends the caps as a JSON object {"timeout": S, "cpu": S, "memory":
 * BYTES, ...}: null where there is no cap, without the limits the server
 * cannot apply. Returns 0 or -ENOMEM. */
int request_limits_caps_json(buf *b, const task_limits *caps);

/* Appends the limits l asked for as a JSON object holding only those
 * given (> 0), "{}" for none: the journal's text form of a waiting task's
 * limits. Returns 0 or -ENOMEM. */
int request_limits_json(buf *b, const task_limits *l);

/* Parses the text request_limits_json wrote (len bytes) into *out, as
 * request_parse_limits without caps: the server that admitted the task
 * checked them. Returns 0 or -EINVAL with err set. */
int request_limits_parse_text(const char *text, size_t len, task_limits *out, char *err,
                              size_t errsz);

#endif
