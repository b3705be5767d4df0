/* lang: the languages a task may be written in, beyond python and bin.
 *
 * They come from the languages file (--languages, configs/languages.conf),
 * one line per language: name, source file name, optional compile
 * command, run command, version command. At start-up lang_table_probe_start runs
 * each version command once and keeps the languages whose tools answered;
 * GET /languages lists those. A task of such a language is prepared
 * (compiled, when the language has a compile command) and then run by the
 * pool (pool.c), both in the task's directory and sandbox.
 *
 * The table is loaded before the HTTP server and the workers start. The
 * version commands then run on a thread of their own (lang_table_probe_start)
 * so that they do not delay the start (the shipped file's tools took
 * 0.5 s here, javac most of it); every reader below waits for them to be
 * over, after which the table never changes and needs no lock. */
#ifndef TS_LANG_H
#define TS_LANG_H

#include <pthread.h>
#include <stddef.h>

#include "buf.h"
#include "http_routes.h"
#include "request.h"
#include "task.h"

typedef struct lang {
    char *name;
    char *source;       /* the source's file name in the task directory */
    char **compile;     /* argument vector, or NULL: nothing to compile */
    char **run;         /* argument vector; the task's arguments follow */
    char **version_cmd; /* argument vector */
    char *version;      /* first line the version command printed, or NULL */
} lang;

typedef struct lang_table {
    lang *v; /* the languages offered, once probed */
    int n;
    char *known; /* "python, bin, c, ..." for errors */
    char *json;  /* the body of GET /languages */
    size_t json_len;
    char *report; /* lines for lang_log: what was left out and why */
    /* The probing thread and its end. Everything above is the thread's
     * until `done`, then read-only. */
    pthread_mutex_t lock; /* protects done */
    pthread_cond_t cond;  /* broadcast when done becomes 1 */
    int done;
    int started; /* a probing thread was started (set before readers exist) */
    pthread_t thread;
    double timeout;
} lang_table;

/* Fills t from the languages file at path: lines
 * "NAME | SOURCE | COMPILE | RUN | VERSION" (COMPILE may be empty; each
 * command split as shsplit does; '#' starts a comment line). Returns 0,
 * -errno when the file cannot be read, or -EINVAL with the file, line and
 * reason in err; then t needs no destroying. */
int lang_table_load(lang_table *t, const char *path, char *err, size_t errsz);

/* Starts a thread that runs every language's version command at once
 * (unconfined, in "/", the tasks' environment, at most timeout seconds
 * each), drops the languages whose command failed or printed nothing,
 * logs them, and builds the GET /languages body. Call once on a loaded
 * table, before the workers and the HTTP server start. Returns 0 or
 * -errno (then nothing was started and t is left to destroy). */
int lang_table_probe_start(lang_table *t, double timeout);

/* Logs what the probes found (each language left out and why, and a
 * summary), waiting for them if they still run: from main, once the
 * server is up, so that a server that fails to start prints only why. */
void lang_log(const lang_table *t);

/* Frees what t holds, after waiting for its probes; t may be zeroed
 * (memset 0: no languages) or loaded. */
void lang_table_destroy(lang_table *t);

/* The language called name, or NULL; waits for the probes if they still
 * run. t may be NULL (none). */
const lang *lang_find(const lang_table *t, const char *name);

/* The languages file to read when --languages is not given, into out: the
 * first readable of languages.conf next to the executable (the build
 * tree), EXEDIR/../etc/tasksolver/, TS_SYSCONFDIR/tasksolver/ (the
 * configured install) and /etc/tasksolver/. Returns 0, or -ENOENT when
 * there is none. */
int lang_default_path(char *out, size_t size);

/* For POST /create_task: a TASK_LANG request must name a language of t,
 * and none of its `files` may take the language's source name. Returns 0,
 * or -EINVAL with the known types or the file named in err (then r is
 * destroyed). Other types pass. */
int lang_check_create(const lang_table *t, create_req *r, char *err, size_t errsz);

/* Appends the compile step's result fields (",\"compile_output\":..,
 * \"compile_exit_code\":..") for a task that compiled; nothing otherwise. */
void lang_result_json(buf *b, const task *t);

/* Registers GET /languages, answered from t (kept, not copied). Returns 0
 * or -ENOMEM. */
int lang_register(const lang_table *t, http_routes *routes);

#endif
