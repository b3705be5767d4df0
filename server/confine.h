/* confine: turns the server's settings into the task sandbox
 * (runner/sandbox.h): which helper, which limits, which of the server's
 * paths tasks must not see; logs what is active and what is missing, and
 * keeps the JSON shown under "sandbox" in GET /info. */
#ifndef TS_CONFINE_H
#define TS_CONFINE_H

#include "config.h"
#include "sandbox.h"

typedef struct confine {
    sandbox sb;
    int enabled;     /* 0: --sandbox off, tasks run unconfined */
    char *info_json; /* the "sandbox" object of GET /info; owned */
    char **hidden;   /* paths hidden from tasks, for the log; owned */
    char *refusal;   /* why program tasks are refused, or NULL; owned */
} confine;

/* Sets up the sandbox for c (whose work_dir must exist). Returns 0, or -1
 * after printing why to stderr (the settings cannot be honoured).
 *
 * Fails closed: when the sandbox cannot separate tasks from the server
 * (it is not root, so tasks would keep its uid, and no namespace hides
 * its processes and files from them), cf->refusal is the sentence with
 * which every program task is refused, naming what is missing and how to
 * grant it; the server still starts and serves everything else. */
int confine_start(confine *cf, const config *c);

/* Logs which protections are active and which are missing. Separate from
 * confine_start so that the server can say it listens first (and print
 * nothing else when it cannot). */
void confine_log(const confine *cf);

/* The sandbox for the worker pool: NULL when disabled. */
const sandbox *confine_sandbox(const confine *cf);

/* Removes the sandbox's cgroups and frees cf. Call after the workers are
 * joined. */
void confine_stop(confine *cf);

#endif
