/* config: the server's settings, from defaults, a config file and the
 * command line (in that order; later wins).
 *
 * Every option is one row of a table in config.c, which also generates
 * --help, so adding a setting is one struct field plus one row. The config
 * file uses the long option names without dashes: "workers = 4", '#'
 * starts a comment; configs/tasksolver.conf documents every key. */
#ifndef TS_CONFIG_H
#define TS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct config {
    /* listening */
    char *address;
    int port;
    int http_threads;
    double request_timeout;    /* seconds for a request's headers, and per read or write */
    double body_timeout;       /* seconds for a request body ... */
    size_t body_min_rate;      /* ... plus one per this many bytes received; 0: none */
    double keep_alive_timeout; /* seconds an idle keep-alive connection is kept */
    int max_conns_per_address; /* 0: no limit */
    size_t max_body;
    double max_wait; /* longest long poll, seconds */
    /* execution */
    int workers;
    double task_timeout; /* seconds */
    size_t max_output;   /* bytes kept per stream */
    int max_tests;       /* entries in a create_task's `tests` */
    char *work_dir;
    char *python;
    int python_warm;       /* python tasks start from a fork server in their cell */
    double shutdown_grace; /* seconds */
    long max_finished;     /* finished tasks kept before the oldest are evicted */
    long max_queue;        /* -1: unbounded */
    int reject_status;     /* 429 or 403 when the queue is full */
    char *calc_command;    /* "PROGRAM ARGS" serving POST / and GET /?request_id=; "": off */
    /* bytes of waiting tasks and bodies being read; 0: unbounded */
    size_t max_queue_bytes;
    /* cluster: arithmetic jobs, worker nodes */
    char *join;               /* master URL to announce to (url_check); "" for none */
    char *name;               /* node name; "": HOSTNAME:PORT */
    char *advertise;          /* URL the master calls back (url_check); "": derived */
    int slots;                /* operations taken at once, as announced */
    double announce_interval; /* seconds */
    int compute_local;        /* compute jobs here while no node is registered */
    double op_timeout;        /* seconds per operation request */
    int op_attempts;          /* node failures an operation survives */
    double forget_after;      /* seconds an unhealthy node stays listed; 0: forever */
    long max_jobs;            /* jobs kept */
    int compute_delay_ms;     /* demos and tests: slow down /compute */
    /* durability */
    char *data_dir;   /* journal directory; empty: tasks live in memory only */
    char *on_restart; /* "requeue" or "fail": tasks found RUNNING at start-up */
    char *data_sync;  /* "full" (fsync each commit) or "normal" */
    /* misc */
    int log_level;         /* enum log_level (log.h) */
    char *auth_token_file; /* empty: no authentication */
    /* task sandbox (runner/sandbox.h) */
    int sandbox;        /* 0: tasks run unconfined (development) */
    int sandbox_cell;   /* 1: a cell per worker where the machine allows */
    char *run_as;       /* empty: nobody when root */
    int task_network;   /* 1: tasks keep the host's network */
    size_t task_memory; /* bytes; 0: no limit (and below) */
    long task_cpu;      /* seconds of CPU time per process */
    long task_procs;    /* processes at once per task */
    size_t task_fsize;  /* bytes per file */
    long task_nofile;   /* open files per process */
    size_t task_disk;   /* bytes of private disk (task directory + /tmp) */
    char *exec_helper;  /* empty: tasksolver-exec next to the server */
    char *config_file;  /* the --config file, or NULL (not an option row) */
} config;

/* Fills c with the defaults. Returns 0 or -ENOMEM (then c is destroyed). */
int config_init(config *c);

/* Frees the strings of c. */
void config_destroy(config *c);

/* Applies the command line (argv[1..]) on top of c, loading --config FILE
 * first if given. Returns 0 to go on, 1 if --help or --version was printed
 * (exit 0), or 2 after printing a usage error to stderr (exit 2). */
int config_parse_args(config *c, int argc, char **argv);

/* Sets the option called name (the long option without dashes) from the
 * text val, checked by its row: range, words, URL form. Returns 0;
 * -ENOENT for no such option; -EINVAL when val is not allowed, then why
 * (whysz bytes) completes "'VAL' is ..." with what is allowed instead; or
 * -ENOMEM. c keeps its previous value on error. */
int config_set(config *c, const char *name, const char *val, char *why, size_t whysz);

/* The rules between options, applied once all of them are set (each
 * alone is checked as it is set). None refuses a combination today;
 * settings that work together otherwise than one would expect are logged
 * with log_warn, so call it after log_set_level. */
void config_check(const config *c);

/* Loads a config file on top of c. Returns 0, or -errno / -EINVAL after
 * logging the offending line to stderr. */
int config_load_file(config *c, const char *path);

/* Prints the usage text. */
void config_usage(FILE *f);

#endif
