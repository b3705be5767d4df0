/* pgschema: the tables of the shared PostgreSQL store, created and
 * migrated by whichever node starts first.
 *
 * Versioned: schema_version holds the version of the last migration
 * applied; a node applies the ones after it, under an advisory lock so
 * that nodes starting together do not race, and refuses a database whose
 * schema is newer than the ones it knows (a newer tasksolver migrated it).
 *
 * Locking: none of its own (the database's advisory lock). */
#ifndef TS_PGSCHEMA_H
#define TS_PGSCHEMA_H

#include <libpq-fe.h>
#include <stddef.h>

/* The newest schema version this build knows. */
#define PGSCHEMA_VERSION 3

/* Brings the database of c to PGSCHEMA_VERSION. Returns 0, or -EIO /
 * -EPROTO (schema newer than known) with a sentence in err. */
int pgschema_migrate(PGconn *c, char *err, size_t errsz);

/* The sentence for a database at version found when this build knows up
 * to known, into err; returns 0 when found is usable (found <= known), else
 * -EPROTO. */
int pgschema_check(long found, long known, char *err, size_t errsz);

#endif
