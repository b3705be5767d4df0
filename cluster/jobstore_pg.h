/* jobstore_pg: the job store (jobstore.h) in the shared PostgreSQL store
 * of --store, next to the task tables (server/tasks_pg.h) but in a
 * versioned table set of its own (job_schema_version): cluster mode and
 * the task store migrate apart, and neither needs the other's numbering.
 *
 * Each master keeps its jobs under its node name (--name, else
 * HOST:PORT): every node of a shared store is a master, and each answers
 * /job/ID for the jobs it took, with ids counted per master (a counter
 * row per name, raised in the insert's transaction and only upwards, so
 * an id is never handed out twice, even once rows are gone). A second
 * master under a name already in use is refused at start (a session
 * advisory lock on the name, held as long as the connection is).
 *
 * Locking: the writer's (jobstore_writer.h). The connection is used by
 * load (before any record) and then by the writer thread alone. */
#ifndef TS_JOBSTORE_PG_H
#define TS_JOBSTORE_PG_H

#include <stddef.h>

#include "jobstore.h"

/* The newest version of the job tables this build knows. */
#define JOBSTORE_PG_VERSION 1

typedef struct jobstore_pg_config {
    const char *url;    /* libpq URI or conninfo */
    const char *master; /* this master's node name: whose jobs are loaded and written */
} jobstore_pg_config;

/* Connects, creates or migrates the job tables, takes cfg->master's lock
 * and starts the writer thread. Returns 0 and fills *out (close it through
 * out->ops->close), or -errno with a sentence in err: the database cannot
 * be reached (-EIO), its job tables are newer than known (-EPROTO),
 * another running master has the same name (-EBUSY). */
int jobstore_pg_open(jobstore *out, const jobstore_pg_config *cfg, char *err, size_t errsz);

#endif
