/* jobstore_sqlite: the job store (jobstore.h) in an SQLite database,
 * DIR/jobs.db, in WAL mode, next to the task journal of the same
 * --data-dir (server/journal.h), which it follows: one connection taken
 * for this process alone, a format version, and the writer thread of
 * jobstore_writer.h (group commit).
 *
 * Locking: the writer's (jobstore_writer.h). The connection is used by
 * load (before any record) and then by the writer thread alone. */
#ifndef TS_JOBSTORE_SQLITE_H
#define TS_JOBSTORE_SQLITE_H

#include <stddef.h>

#include "jobstore.h"

/* File name of the store inside its directory. */
#define JOBSTORE_SQLITE_FILE "jobs.db"

typedef struct jobstore_sqlite_config {
    const char *dir; /* holds jobs.db; created (mode 0700) if missing */
    int sync_full;   /* fsync every commit (survives power loss); else the
                      * WAL is synced at checkpoints (survives a crash of
                      * the process only) */
} jobstore_sqlite_config;

/* Opens or creates DIR/jobs.db, takes it for this process alone and starts
 * its writer thread. Returns 0 and fills *out (close it through
 * out->ops->close), or -errno with a sentence in err: a directory that
 * cannot be made or written, a file that is not a job store or has another
 * format, a store in use by another process. */
int jobstore_sqlite_open(jobstore *out, const jobstore_sqlite_config *cfg, char *err, size_t errsz);

#endif
