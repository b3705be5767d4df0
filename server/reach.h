/* reach: what the command line tells tasks to run must be within their
 * reach in the sandbox.
 *
 * Tasks run as another user (nobody) with a private /tmp and some paths
 * hidden, so a program that the server itself can run may be out of their
 * reach: under /root (mode 0700), under /tmp, next to the server's binary.
 * At start-up, one probe task run through the sandbox tries what the tasks
 * will need: their directories under --work-dir, the --python interpreter,
 * the --calc-command program and the files named in its arguments.
 *
 * A --calc-command program out of reach is read into memory once and each
 * calculation gets its own copy in its directory (as a bin task gets its
 * program), so the documented flow works wherever the program lives.
 * Anything else out of reach stops the start-up with one sentence naming
 * the path, the tasks' user and what to do. */
#ifndef TS_REACH_H
#define TS_REACH_H

#include <stddef.h>

#include "config.h"
#include "sandbox.h"

/* Largest --calc-command program copied for each calculation: it is held
 * in memory and written into every calculation's directory (and counts
 * against --task-disk there). */
#define REACH_MAX_COPY (16 << 20)

typedef struct reach {
    unsigned char *calc_image; /* the --calc-command program, to be copied
                                  into each calculation's directory; NULL:
                                  it runs where it is. Owned */
    size_t calc_len;
    char *calc_name;   /* the copy's file name; owned */
    char note[512];    /* the copy, for the log; "" if none */
    char warning[512]; /* what will not work (python tasks), for the log; "" */
} reach;

/* Checks c's paths against what tasks can reach in sandbox sb. With sb
 * NULL (--sandbox off: tasks run as the server) there is nothing to check.
 * Returns 0 (r filled in), or -1 with one sentence in err (then r needs
 * no destroying). */
int reach_check(reach *r, const sandbox *sb, const config *c, char *err, size_t errsz);

/* Logs the note and the warning, if any. Separate so that the server says
 * it listens first. */
void reach_log(const reach *r);

/* Frees the copy. */
void reach_destroy(reach *r);

#endif
