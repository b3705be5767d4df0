/* lang: the languages a task may be written in, beyond python and bin.
 *
 * They come from the languages file (--languages, configs/languages.conf),
 * one line per language: name, source file name, optional compile
 * command, run command, version command. At start-up lang_table_probe runs
 * each version command once and keeps the languages whose tools answered;
 * GET /languages lists those. A task of such a language is prepared
 * (compiled, when the language has a compile command) and then run by the
 * pool (pool.c), both in the task's directory and sandbox.
 *
 * The table is filled before the HTTP server and the workers start and
 * never changes afterwards: readers need no lock. */
#ifndef TS_LANG_H
#define TS_LANG_H

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
    lang *v; /* the languages offered (after lang_table_probe) */
    int n;
    char *known; /* "python, bin, c, ..." for errors */
    char *json;  /* the body of GET /languages */
    size_t json_len;
} lang_table;

/* Fills t from the languages file at path: lines
 * "NAME | SOURCE | COMPILE | RUN | VERSION" (COMPILE may be empty; each
 * command split as shsplit does; '#' starts a comment line). Returns 0,
 * -errno when the file cannot be read, or -EINVAL with the file, line and
 * reason in err; then t needs no destroying. */
int lang_table_load(lang_table *t, const char *path, char *err, size_t errsz);

/* Runs every language's version command (unconfined, in "/", the tasks'
 * environment, at most timeout seconds each), drops the languages whose
 * command failed or printed nothing, and builds the GET /languages body.
 * Call once, before the workers start. Logs what it dropped. Returns 0 or
 * -ENOMEM. */
int lang_table_probe(lang_table *t, double timeout);

/* Frees what t holds; t may be zeroed or loaded. */
void lang_table_destroy(lang_table *t);

/* The language called name, or NULL. t may be NULL (none). */
const lang *lang_find(const lang_table *t, const char *name);

/* The languages file to read when --languages is not given: the one next
 * to the executable (the build tree), else the installed one
 * (TS_SYSCONFDIR/tasksolver/languages.conf), into out. Returns 0, or
 * -ENOENT when neither exists. */
int lang_default_path(char *out, size_t size);

/* For POST /create_task: a TASK_LANG request must name a language of t.
 * Returns 0, or -EINVAL with the known types listed in err (then r is
 * destroyed). Other types pass. */
int lang_check_create(const lang_table *t, create_req *r, char *err, size_t errsz);

/* Appends the compile step's result fields (",\"compile_output\":..,
 * \"compile_exit_code\":..") for a task that compiled; nothing otherwise. */
void lang_result_json(buf *b, const task *t);

/* Registers GET /languages, answered from t (kept, not copied). Returns 0
 * or -ENOMEM. */
int lang_register(const lang_table *t, http_routes *routes);

#endif
