/* pgconn: connections to the shared PostgreSQL store, its versioned table
 * sets (migrations), and the few conversions its rows need (hex bytea,
 * string vectors, id lists).
 *
 * A pool hands a connection to one thread at a time (libpq connections are
 * not for sharing); a broken connection is reset when it is next taken, so
 * a node reconnects by itself once the database is back.
 *
 * Locking: pgconn_pool.lock protects idle, nidle, opened and closing; it
 * is never held while connecting or talking to the database. */
#ifndef TS_PGCONN_H
#define TS_PGCONN_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>

typedef struct pgconn_pool {
    pthread_mutex_t lock; /* protects idle, nidle, opened */
    pthread_cond_t freed; /* takers wait for a connection given back */
    PGconn **idle;        /* size slots */
    int nidle;
    int opened; /* connections made, idle or taken */
    int size;
    char *url; /* owned */
} pgconn_pool;

/* Connects to url (a libpq URI or conninfo) with a connect timeout of a
 * few seconds unless url sets one. Returns the connection (PQfinish it),
 * possibly broken: check PQstatus. NULL only when out of memory. */
PGconn *pgconn_open(const char *url);

/* Resets *c when it is broken or has something to read while idle (the
 * server closing it; not for a connection that LISTENs), NULL: opens it. Returns 0 when it is
 * connected, else -EIO. */
int pgconn_ensure(PGconn **c, const char *url);

/* Runs sql, one statement, with n parameters (text unless fmts[i] is 1:
 * binary with lens[i] bytes; NULL vals[i] is SQL NULL; lens and fmts may
 * be NULL for all text) and text results. sql is prepared on c the first
 * time c runs it (one more round trip), then reused: pass fixed texts,
 * the values as parameters. Returns 0 and *out (PQclear it; out may be
 * NULL) when the statement succeeded, else -EIO after logging why (at
 * debug when the connection is down, which the caller reports itself). */
int pgconn_exec(PGconn *c, PGresult **out, const char *sql, int n, const char *const *vals,
                const int *lens, const int *fmts);

/* One statement of pgconn_exec_batch: sql, n, vals, lens and fmts as for
 * pgconn_exec; *out (may be NULL) gets its result when the batch
 * succeeds. */
typedef struct pgconn_query {
    const char *sql;
    int n;
    const char *const *vals;
    const int *lens, *fmts;
    PGresult **out;
} pgconn_query;

/* Runs the count (at most 8) statements of q in order, in one round trip
 * (libpq's pipeline mode), each prepared as pgconn_exec does; each is its
 * own transaction unless q opens one (BEGIN ... COMMIT). Statements after
 * one that fails are skipped. Returns 0 with every *out set (PQclear
 * them), else -EIO after logging why (no *out then; a transaction q left
 * failed is rolled back) or -EINVAL (too many). */
int pgconn_exec_batch(PGconn *c, const pgconn_query *q, int count);

/* Starts a pool of at most size connections to url (opened on demand).
 * Returns 0 or -ENOMEM (nothing to destroy). */
int pgconn_pool_init(pgconn_pool *p, const char *url, int size);

/* Closes every connection. Call once none is taken. */
void pgconn_pool_destroy(pgconn_pool *p);

/* A connection for the caller alone, reset first if it was broken; blocks
 * while all are taken. May be broken (the database is down): pgconn_exec
 * then fails. Give it back with pgconn_give. */
PGconn *pgconn_take(pgconn_pool *p);

/* Gives back a connection from pgconn_take. */
void pgconn_give(pgconn_pool *p, PGconn *c);

/* Decodes a bytea in PostgreSQL's text output ("\x" and hex digits) into a
 * malloc'd buffer with a NUL after its n bytes (so never NULL for an empty
 * value). Returns 0, -EINVAL for text that is not that, or -ENOMEM. */
int pgconn_unhex(const char *s, size_t len, unsigned char **out, size_t *n);

/* The n strings of v as one blob of NUL-terminated strings, malloc'd, in
 * *out (NULL when n is 0). Returns 0 or -ENOMEM. */
int pgconn_pack_strings(char *const *v, int n, char **out, size_t *len);

/* Splits a blob of NUL-terminated strings into a NULL-terminated vector
 * (task_args_free it) of *count strings; an empty blob gives NULL. Returns
 * 0, -EINVAL when the blob does not end a string, or -ENOMEM. */
int pgconn_unpack_strings(const unsigned char *p, size_t len, char ***out, int *count);

/* Calls fn(arg, id) for each canonical UUID in a comma-separated list (a
 * NOTIFY payload), skipping what is not one. Returns how many it passed. */
int pgconn_each_id(const char *list, void (*fn)(void *arg, const char *id), void *arg);

/* A versioned set of tables: migrations[v - 1] brings it from version
 * v - 1 to v; table holds the version applied last. Several sets may share
 * one database, each with its own table, so that their owners migrate
 * them apart. */
typedef struct pgconn_schema {
    const char *what;  /* for messages: "store schema" */
    const char *table; /* its version table: "schema_version" */
    const char *lock;  /* advisory lock key (a bigint, as text) serialising migrations */
    const char *const *migrations;
    long version; /* how many migrations: the newest version known */
} pgconn_schema;

/* Brings the set of s in the database of c to s->version, each migration
 * in a transaction of its own, under the advisory lock s->lock so that
 * nodes starting together do not race. Returns 0, or -EIO / -EPROTO (the
 * database is at a newer version than s knows) with a sentence in err. */
int pgconn_migrate(PGconn *c, const pgconn_schema *s, char *err, size_t errsz);

/* The sentence for a set at version found when this build knows up to
 * known, into err; returns 0 when found is usable (found <= known), else
 * -EPROTO. */
int pgconn_schema_check(const char *what, long found, long known, char *err, size_t errsz);

#endif
