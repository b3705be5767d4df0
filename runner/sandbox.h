/* sandbox: confines each task run through the exec helper
 * (tasksolver-exec, see tsexec.c), in one of two modes:
 *
 *  - cells (the default where they work): each worker has a cell (cell.h),
 *    namespaces, file system and cgroup built once and reused by its
 *    tasks, emptied of everything a task left between two of them;
 *  - per task: the helper builds the namespaces and file system for each
 *    task anew, with a cgroup of the task's own (about 3 ms of CPU more
 *    per task here), where a cell cannot be built or with
 *    --sandbox-cell off.
 *
 * sandbox_init finds out what the machine allows (root or not, cgroup v1
 * or v2, namespaces, seccomp) by running a trivial program through the
 * helper, dropping whatever fails, then tries a cell, then warm Python in
 * a cell (a python task that must start from the cell's fork server,
 * tsexec_pyhost.h); it keeps a record of what is active and what is
 * missing for the log and GET /info. Then, per run:
 *
 *   sandbox_run_begin  -> runner_opts.cell (or .wrapper) -> runner_run
 *   sandbox_run_end    (reads the cgroup's counters into the result's
 *                       limit; per task: kills stragglers, removes the
 *                       cgroup)
 *
 * Thread-safe after sandbox_init: the sandbox is read-only, and each run
 * works on its own sandbox_run and its worker's cell. */
#ifndef TS_SANDBOX_H
#define TS_SANDBOX_H

#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "cell.h"
#include "cgroup.h"
#include "runner.h"

typedef struct sandbox_config {
    const char *helper;      /* path of tasksolver-exec */
    const char *run_as;      /* user for tasks when the server is root; NULL or "": nobody */
    int network;             /* 1: tasks keep the host's network */
    int64_t memory;          /* bytes; 0: no limit (and likewise below) */
    int64_t cpu;             /* seconds of CPU time per process */
    int64_t procs;           /* processes (and threads) at once per task */
    int64_t fsize;           /* bytes per file */
    int64_t nofile;          /* open files per process */
    int64_t disk;            /* bytes of the task's private tmpfs */
    int workers;             /* tasks run at once */
    const char *work_dir;    /* where task directories are made */
    const char *const *hide; /* NULL-terminated: paths tasks must not see */
    int cells;               /* 1: a cell per worker where the machine allows */
    /* Warm Python (read by sandbox_init only): */
    const char *pyfork;      /* the fork server's script; NULL or "": python
                                tasks start cold */
    const char *python;      /* the interpreter python tasks run */
    char *const *python_env; /* their environment, HOME and TMPDIR aside */
} sandbox_config;

#define SANDBOX_MAX_NOTES 8

typedef struct sandbox {
    /* Set by sandbox_init, read-only afterwards; everything owned. */
    sandbox_config cfg; /* with the strings below */
    char *helper;
    char *work_dir;
    char **hide;
    int root;  /* the server runs as root */
    uid_t uid; /* tasks' identity; (uid_t)-1: the server's own */
    gid_t gid;
    char *user;                     /* name of the tasks' user */
    int ns;                         /* PID, mount, IPC and UTS namespaces */
    int userns;                     /* ...inside a user namespace (server not root) */
    int netns;                      /* a network namespace with loopback only */
    int seccomp;                    /* system call filter */
    cgroup_root cg;                 /* version CGROUP_NONE: no cgroup */
    int cell;                       /* tasks run in per-worker cells */
    int python_warm;                /* python tasks (runner_opts.warm_python)
                                       start from their cell's fork server */
    char *python_why;               /* why not, or NULL */
    char **base;                    /* the helper's arguments common to every run */
    char **cell_argv;               /* base + --cell: a cell's command line */
    char *notes[SANDBOX_MAX_NOTES]; /* what is missing, and why */
    int nnotes;
    double probe_ms; /* how long the last start-up probe run took */
} sandbox;

/* Works out and checks the sandbox. Returns 0 (sb usable, possibly with
 * fewer protections than asked: see notes), or -errno with a sentence in
 * err when the settings cannot be honoured (--run-as without root, an
 * unknown user, a user that is root, no helper); sb is then destroyed. */
int sandbox_init(sandbox *sb, const sandbox_config *cfg, char *err, size_t errsz);

/* Removes the cgroups and frees sb. */
void sandbox_destroy(sandbox *sb);

/* One task's own limits, in sandbox_config's units; 0 in a field: the
 * sandbox's setting. */
typedef struct sandbox_limits {
    int64_t memory;
    int64_t cpu;
    int64_t procs;
    int64_t fsize;
    int64_t disk;
} sandbox_limits;

/* One run's share. */
typedef struct sandbox_run {
    struct cell *cell;  /* cell mode: the worker's cell (borrowed) */
    cgroup_task cg;     /* per-task mode: the task's group */
    char **argv;        /* per-task mode: the wrapper argv (strings borrowed
                           but for opt's) */
    sandbox_limits lim; /* the limits of this run, each filled in */
    char opt[5][48];    /* per-task mode: the helper's options for lim */
} sandbox_run;

/* Prepares the run of o in dir (an existing directory holding the
 * program, under work_dir; dir must outlive the run) and points o at the
 * sandbox: o->cell, or o->wrapper in per-task mode. *cellp is the
 * worker's cell (NULL at first): made here, reused, or made anew when it
 * is damaged or was built for another directory; the worker frees it
 * with cell_free when it stops. A cell that cannot be built is logged and
 * the task runs per task instead. lim: the task's own limits, or NULL;
 * a task whose disk limit is not the sandbox's runs per task (a cell's
 * disk is sized once). Returns 0, or -errno with nothing to clean up. */
int sandbox_run_begin(const sandbox *sb, struct cell **cellp, const char *dir, runner_opts *o,
                      const sandbox_limits *lim, sandbox_run *sr);

/* After runner_run: records in r the run's peak memory, and a memory or
 * process limit the run hit (when it did not succeed). Per task: then kills what is left in the
 * cgroup and removes it. Returns 0, or -errno if the cgroup could not be
 * removed. */
int sandbox_run_end(const sandbox *sb, sandbox_run *sr, runner_result *r);

/* Appends the JSON object describing the sandbox (for GET /info). Returns
 * 0 or -ENOMEM. */
int sandbox_info_json(const sandbox *sb, buf *b);

/* Writes a one-line summary of the active protections and limits. */
void sandbox_summary(const sandbox *sb, char *out, size_t size);

#endif
