/* task: see task.h. */
#include "task.h"

#include <stdlib.h>
#include <uuid/uuid.h>

#include "timefmt.h"

void task_args_free(char **args)
{
    if (!args)
        return;
    for (char **a = args; *a; a++)
        free(*a);
    free(args);
}

task *task_new(enum task_type type, unsigned char *file, size_t file_len, char **args, int argc)
{
    task *t = calloc(1, sizeof *t);
    if (!t) {
        free(file);
        task_args_free(args);
        return NULL;
    }
    uuid_generate_random(t->id);
    uuid_unparse_lower(t->id, t->id_str);
    t->type = type;
    t->file = file;
    t->file_len = file_len;
    t->args = args;
    t->argc = argc;
    t->created_us = time_now_us();
    t->status = TASK_WAIT;
    atomic_init(&t->refs, 1);
    return t;
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
    free(t->file);
    task_args_free(t->args);
    free(t->out);
    free(t->err);
    free(t->error);
    free(t);
}

const char *task_status_name(enum task_status s)
{
    static const char *const names[] = {"WAIT", "RUNNING", "SUCCESS", "ERROR"};
    return names[s];
}

const char *task_type_name(enum task_type t)
{
    static const char *const names[] = {"python", "bin", "calc"};
    return names[t];
}
