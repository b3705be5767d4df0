/* task: see task.h. */
#include "task.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uuid/uuid.h>

#include "membudget.h"
#include "runner.h"
#include "testset.h"
#include "timefmt.h"

/* What malloc adds to every block (glibc, 64-bit: a size word, rounded
 * up to 16 bytes). */
#define TASK_MALLOC_OVERHEAD 16

void task_args_free(char **args)
{
    if (!args)
        return;
    for (char **a = args; *a; a++)
        free(*a);
    free(args);
}

/* A random (version 4) UUID from one getrandom call. libuuid's
 * uuid_generate_random also stirs a generator of its own with getpid,
 * getppid, getuid and gettid, five system calls per id, and takes
 * random()'s lock: 1.6 % of the server's CPU on trivial tasks (perf,
 * --sandbox off). libuuid stays the fallback. */
static void task_make_id(unsigned char id[16])
{
    if (getrandom(id, 16, 0) != 16) {
        uuid_generate_random(id);
        return;
    }
    id[6] = (unsigned char)((id[6] & 0x0f) | 0x40); /* version 4 */
    id[8] = (unsigned char)((id[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

task *task_new(enum task_type type, unsigned char *file, size_t file_len, char **args, int argc)
{
    task *t = calloc(1, sizeof *t);
    if (!t) {
        free(file);
        task_args_free(args);
        return NULL;
    }
    task_make_id(t->id);
    uuid_unparse_lower(t->id, t->id_str);
    t->type = type;
    t->file = file;
    t->file_len = file_len;
    t->args = args;
    t->argc = argc;
    t->created_us = time_now_us();
    t->status = TASK_WAIT;
    t->cancel_fd = -1;
    atomic_init(&t->refs, 1);
    return t;
}

void task_set_input(task *t, unsigned char *input, size_t input_len, char **env, int envc)
{
    t->input = input;
    t->input_len = input_len;
    t->env = env;
    t->envc = envc;
}

void task_set_files(task *t, task_file *files, int n)
{
    t->files = files;
    t->nfiles = files ? n : 0;
}

void task_files_free(task_file *files, int n)
{
    if (!files)
        return;
    for (int i = 0; i < n; i++) {
        free(files[i].name);
        free(files[i].data);
    }
    free(files);
}

void task_set_tests(task *t, struct testset *tests)
{
    t->tests = tests;
}

/* Bytes of a NULL-terminated vector of n strings and its blocks. */
static size_t vec_bytes(char *const *v, int n)
{
    size_t b = ((size_t)n + 1) * sizeof *v + TASK_MALLOC_OVERHEAD;
    for (int i = 0; i < n; i++)
        b += strlen(v[i]) + 1 + TASK_MALLOC_OVERHEAD;
    return b;
}

void task_set_lang(task *t, char *name)
{
    free(t->lang);
    t->lang = name;
}

size_t task_bytes(const task *t)
{
    size_t n = sizeof *t + TASK_MALLOC_OVERHEAD;
    if (t->lang)
        n += strlen(t->lang) + 1 + TASK_MALLOC_OVERHEAD;
    if (t->file)
        n += t->file_len + TASK_MALLOC_OVERHEAD;
    if (t->input)
        n += t->input_len + TASK_MALLOC_OVERHEAD;
    if (t->args)
        n += vec_bytes(t->args, t->argc);
    if (t->env)
        n += vec_bytes(t->env, t->envc);
    if (t->files)
        n += (size_t)t->nfiles * sizeof *t->files + TASK_MALLOC_OVERHEAD;
    for (int i = 0; i < t->nfiles; i++)
        n += strlen(t->files[i].name) + 1 + t->files[i].len + 2 * TASK_MALLOC_OVERHEAD;
    return n + testset_bytes(t->tests);
}

int task_hold(task *t, struct membudget *budget, size_t *held)
{
    t->budget = budget;
    t->held = *held;
    *held = 0;
    return membudget_adjust(budget, &t->held, task_bytes(t));
}

void task_hold_restored(task *t, struct membudget *budget)
{
    t->budget = budget;
    t->held = task_bytes(t);
    membudget_charge(budget, t->held);
}

void task_drop_program(task *t)
{
    free(t->file);
    t->file = NULL;
    free(t->input);
    t->input = NULL;
    task_files_free(t->files, t->nfiles);
    t->files = NULL;
    t->nfiles = 0;
    membudget_release(t->budget, t->held);
    t->held = 0;
}

void task_drop_args(task *t)
{
    task_args_free(t->args);
    t->args = NULL;
    t->argc = 0;
    task_args_free(t->env);
    t->env = NULL;
    t->envc = 0;
    testset_drop_cases(t->tests);
}

task *task_ref(task *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void task_unref(task *t)
{
    if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    task_drop_program(t);
    task_drop_args(t);
    testset_free(t->tests);
    free(t->out);
    free(t->err);
    free(t->error);
    free(t->lang);
    free(t->compile_out);
    free(t);
}

const char *task_status_name(enum task_status s)
{
    static const char *const names[] = {"WAIT", "RUNNING", "SUCCESS", "ERROR"};
    return names[s];
}

const char *task_program_name(enum task_type type)
{
    return type == TASK_PYTHON ? "main.py" : type == TASK_BIN ? "program" : NULL;
}

const char *task_type_name(enum task_type t)
{
    static const char *const names[] = {"python", "bin", "calc", "lang"};
    return names[t];
}

const char *task_type_label(const task *t)
{
    return t->type == TASK_LANG && t->lang ? t->lang : task_type_name(t->type);
}

const char *task_limit_named(const char *name)
{
    if (strcmp(name, "timeout") == 0)
        return "timeout"; /* pool.c's name for the wall-clock limit */
    for (int i = RUNNER_LIMIT_MEMORY; i <= RUNNER_LIMIT_DISK; i++)
        if (strcmp(name, runner_limit_name((enum runner_limit)i)) == 0)
            return runner_limit_name((enum runner_limit)i);
    return NULL;
}
