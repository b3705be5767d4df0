/* task: one submitted program and what became of it.
 *
 * A task is shared by the HTTP threads and the worker that runs it, so it
 * is reference counted: whoever holds a pointer holds a reference
 * (task_ref / task_unref), and the last unref frees it.
 *
 * Field rules:
 *  - the "immutable" fields are set before the task is published (store_add)
 *    and never change;
 *  - `status`, `started_us`, `finished_us`, `attempts` are protected by the
 *    store lock;
 *  - the result fields are written by the worker once, before it sets a
 *    final status under the store lock, and never change afterwards: a
 *    reader that saw SUCCESS/ERROR under the lock may read them unlocked;
 *  - `file`, `input`, `files`, `args`, `env` and the budget share (`budget`,
 *    `held`) belong to the worker once the task is popped from the queue:
 *    it drops the program and the input (and the share) as soon as they
 *    are where the run reads them, the arguments and environment once the
 *    run is over, so that neither a running task nor a finished one holds
 *    what its client sent. */
#ifndef TS_TASK_H
#define TS_TASK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include "task_limits.h"

struct live;
struct membudget;
struct testset;

/* One entry of a request's `files`: written into the task's directory
 * before the run. */
typedef struct task_file {
    char *name;          /* relative path, checked (request_files.h); owned */
    unsigned char *data; /* owned; may be NULL when len is 0 */
    size_t len;
} task_file;

enum task_status { TASK_WAIT, TASK_RUNNING, TASK_SUCCESS, TASK_ERROR };
/* TASK_LANG: a language of the languages file (lang.h), named by `lang`. */
enum task_type { TASK_PYTHON, TASK_BIN, TASK_CALC, TASK_LANG };

typedef struct task {
    /* immutable */
    unsigned char id[16];
    char id_str[37];
    enum task_type type;
    char *lang; /* TASK_LANG: the language's name; owned */
    int64_t created_us;
    task_limits limits; /* what the request asked for; 0: the server's */
    /* owned by the worker after the pop: file until it is written to
     * disk, args until the run is over */
    unsigned char *file;
    size_t file_len;
    char **args; /* NULL-terminated, without argv[0]; owned */
    int argc;
    /* owned by the worker after the pop, like file and args */
    unsigned char *input; /* the task's stdin, or NULL: /dev/null; owned */
    size_t input_len;
    char **env; /* NULL-terminated extra "NAME=VALUE" entries, or NULL */
    int envc;
    task_file *files; /* extra files for the task's directory, or NULL */
    int nfiles;
    /* `tests`, or NULL: its cases are the worker's after the pop, like
     * args; its rendered results are result fields (testset.h) */
    struct testset *tests;
    struct membudget *budget; /* where `held` is counted, or NULL */
    size_t held;              /* bytes of budget held while the task waits */
    /* protected by the store lock */
    enum task_status status;
    int64_t started_us;
    int64_t finished_us;
    int attempts; /* times started, counting runs before a restart */
    /* The worker's monotonic clock when it started the task, for the
     * log's duration: started_us may be another clock's (the shared
     * store's). Its worker's alone. */
    int64_t began_mono_us;
    /* result: written once before the final status is published */
    char *out;
    size_t out_len;
    size_t out_total;
    int out_truncated;
    char *err;
    size_t err_len;
    size_t err_total;
    int err_truncated;
    int exited; /* exit_code valid */
    int exit_code;
    int term_signal; /* 0: none */
    int timed_out;
    char *error; /* human sentence for an ERROR, or NULL */
    int64_t cpu_us;
    int cancelled; /* ended by POST /cancel_task */
    /* Cancelling: store lock. cancel_asked is set by tasks_cancel;
     * cancel_fd is the running worker's eventfd (-1: none), written by
     * tasks_cancel to kill the run. */
    int cancel_asked;
    int cancel_fd;
    int64_t mem_peak;  /* bytes, peak of the whole process tree; 0: unknown */
    const char *limit; /* the limit that ended it ("memory"...), or NULL; static */
    int compiled;      /* a compile step ran: the compile_* fields are valid */
    char *compile_out; /* the compiler's stdout then stderr, each capped */
    size_t compile_out_len;
    int compile_exited; /* compile_exit_code valid */
    int compile_exit_code;
    /* stdout while RUNNING, for streaming readers; store lock */
    struct live *live;
    /* bookkeeping */
    atomic_int refs;
    RB_ENTRY(task) by_id;       /* store index; store lock */
    TAILQ_ENTRY(task) finished; /* eviction order; store lock */
    /* Singly linked list link: the queue's, under the queue lock, from
     * queue_push to queue_pop; then, once t is final (so never queued
     * again), the store's, under the store lock, to chain the tasks one
     * store_mark_finished evicts until it has unlocked. */
    struct task *queue_next;
} task;

/* Allocates a task in WAIT with a fresh random id, created now, one
 * reference held by the caller. Takes ownership of file and args (also on
 * failure). Returns NULL on allocation failure. */
task *task_new(enum task_type type, unsigned char *file, size_t file_len, char **args, int argc);

/* Gives t its stdin (NULL: none) and extra environment (NULL-terminated
 * "NAME=VALUE" entries, NULL: none), taking ownership of both; call before
 * task_hold so that the budget counts them. */
void task_set_input(task *t, unsigned char *input, size_t input_len, char **env, int envc);

/* Gives t the files of its request (an array of n, NULL: none), taking
 * ownership; call before task_hold so that the budget counts them. */
void task_set_files(task *t, task_file *files, int n);

/* Frees an array of n task files. NULL is fine. */
void task_files_free(task_file *files, int n);

/* Gives t its tests (NULL: none), taking ownership; call before
 * task_hold so that the budget counts them. */
void task_set_tests(task *t, struct testset *tests);
/* Names t's language (TASK_LANG), taking ownership of name; call before
 * publishing t. */
void task_set_lang(task *t, char *name);

/* Bytes t holds while it waits: the task, its program, stdin, files,
 * arguments, environment and tests. */
size_t task_bytes(const task *t);

/* Makes t the holder of the *held bytes reserved in budget (*held becomes
 * 0), then moves that reservation to task_bytes(t). Call before
 * publishing t. Returns 0, or -ENOBUFS / -E2BIG as membudget_reserve
 * (t then keeps what it took over). t's last reference releases what it
 * still holds. */
int task_hold(task *t, struct membudget *budget, size_t *held);

/* Counts task_bytes(t) in budget even past its limit: for a task read
 * back from the journal, admitted before a restart. */
void task_hold_restored(task *t, struct membudget *budget);

/* Frees the program, the stdin and the files of t and releases t's share of the
 * budget: the worker calls it once both are where the run reads them. */
void task_drop_program(task *t);

/* Frees the arguments, the environment and the test cases of t: the
 * worker calls it once the runs are over. */
void task_drop_args(task *t);

/* Takes another reference. Returns t. */
task *task_ref(task *t);

/* Drops a reference; frees the task with the last one. NULL is fine. */
void task_unref(task *t);

/* "WAIT", "RUNNING", "SUCCESS", "ERROR". */
const char *task_status_name(enum task_status s);

/* "python", "bin", "calc", "lang". */
const char *task_type_name(enum task_type t);

/* The type as clients name it: the language's name for TASK_LANG, else
 * task_type_name. */
const char *task_type_label(const task *t);
/* The static name of a limit that ends a task ("timeout", "memory"...:
 * what t->limit holds) for the same name read back from storage, or
 * NULL for a name this server does not know (one a newer server wrote). */
const char *task_limit_named(const char *name);

/* The name of t's program in its directory: "main.py", "program", or
 * NULL for calc (the server's --calc-command names its own). */
const char *task_program_name(enum task_type type);

/* Non-zero for SUCCESS and ERROR. */
static inline int task_status_final(enum task_status s)
{
    return s == TASK_SUCCESS || s == TASK_ERROR;
}

/* Frees a NULL-terminated vector of strings. */
void task_args_free(char **args);

#endif
