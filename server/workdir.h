/* workdir: the directory the per-task directories go in, and the clean-up
 * of those that killed servers left behind.
 *
 * By default each server makes $TMPDIR/tasksolver.PID (or /tmp/...) and
 * removes it at exit; one killed with -9 cannot, and its directory stayed
 * forever. At start a server now removes the tasksolver.PID directories of
 * servers that no longer run, as it does their cgroups.
 *
 * A live server is told from a dead one by a lock, not by its PID: each
 * server holds an flock on its directory for as long as it runs, and the
 * kernel drops it when the process ends, however it ends. A PID can be
 * reused by any process (or be another namespace's), a lock cannot
 * outlive its holder. Two cases the lock does not cover keep a directory
 * too: the moment between making a directory and locking it, and servers
 * of earlier versions, which take no lock; both have a live process of
 * this program's name at the directory's PID. */
#ifndef TS_WORKDIR_H
#define TS_WORKDIR_H

#include "config.h"

typedef struct workdir {
    const char *path;  /* c->work_dir of workdir_prepare's config */
    int lock_fd;       /* open on the directory and flock'ed; -1: none */
    int created;       /* made by this server: removed by workdir_release */
    int stale_removed; /* directories of dead servers removed at start */
} workdir;

/* Prepares c->work_dir: without --work-dir, removes the directories of
 * dead servers next to it, then makes $TMPDIR/tasksolver.PID (or /tmp)
 * and locks it, setting c->work_dir; with --work-dir, makes the directory
 * if it is missing and uses it as it is otherwise (nothing is locked or
 * cleaned there: several servers may share it). Returns 0, -EBUSY if the
 * default directory is locked by another live server (one in another PID
 * namespace with the same PID), or -errno. On error nothing is left to
 * release. */
int workdir_prepare(workdir *wd, config *c);

/* Removes the directory if this server made it, then drops the lock.
 * Call after the workers are joined. */
void workdir_release(workdir *wd);

/* Removes every directory "tasksolver.PID" in parent that belongs to no
 * live server (see above) and is owned by this user; PID == self counts
 * as dead unless locked, since this process has not made its own yet.
 * Returns how many were removed. Exposed for unit tests. */
int workdir_remove_stale(const char *parent, long self);

#endif
