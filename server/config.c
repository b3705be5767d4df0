/* config: see config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "membudget.h"
#include "shsplit.h"
#include "url.h"

/* OPT_BOOL: an int set to 0 or 1 from yes/no, true/false, on/off, 1/0. On
 * the command line a row whose meta is "" is a flag (--flag means yes,
 * --flag=no); one with a meta takes the word as its argument (--sandbox off).
 * OPT_MEMORY: a size_t like OPT_SIZE, or "auto" for the share of this
 * machine's memory that membudget_default_max gives.
 * OPT_WORD, OPT_ENUM, OPT_INTSET: one of the words of the row's meta
 * ("a|b|c"), matched exactly (case included, as before); kept as the
 * word (a char *), as its index (an int), or as the number it spells (an
 * int). --help shows the words as they are checked.
 * OPT_URL: a char *, "" (none) or a node's base URL as url_check has it,
 * so that a node that can never be reached is refused at start-up.
 * OPT_COMMAND: a char *, "" (none) or a command line shsplit splits into
 * a program and its arguments. */
enum opt_type {
    OPT_INT,
    OPT_LONG,
    OPT_SIZE,
    OPT_MEMORY,
    OPT_SECONDS,
    OPT_STR,
    OPT_BOOL,
    OPT_WORD,
    OPT_ENUM,
    OPT_INTSET,
    OPT_URL,
    OPT_COMMAND
};

struct opt {
    const char *name;
    enum opt_type type;
    size_t offset;
    const char *def;  /* default, as text; parsed like user input */
    const char *meta; /* placeholder in --help; the words of a word row */
    const char *help;
    double min, max; /* numeric bounds */
};

/* --log-level's words are indexed in the order of log.h's levels. */
_Static_assert(LOG_ERROR == 0 && LOG_WARN == 1 && LOG_INFO == 2 && LOG_DEBUG == 3,
               "log-level's words follow enum log_level");

/* Room for the end of "'VALUE' is ...": the longest is a list of words. */
#define WHY_MAX 256

#define F(field) offsetof(config, field)

static const struct opt opts[] = {
    {"workers", OPT_INT, F(workers), "1", "N", "worker threads running tasks", 1, 4096},
    {"address", OPT_STR, F(address), "127.0.0.1", "ADDR", "IPv4 address to listen on", 0, 0},
    {"port", OPT_INT, F(port), "8080", "PORT", "TCP port (0: any free port, logged)", 0, 65535},
    {"task-timeout", OPT_SECONDS, F(task_timeout), "60", "SECONDS",
     "wall-clock limit per task (0: none)", 0, 1e7},
    {"max-output", OPT_SIZE, F(max_output), "1048576", "BYTES",
     "stdout/stderr bytes kept per task and stream", 0, 1e12},
    {"max-tests", OPT_INT, F(max_tests), "100", "N",
     "entries a create_task's 'tests' list may hold (each is one run of the program)", 1, 10000},
    {"max-body", OPT_SIZE, F(max_body), "67108864", "BYTES", "largest request body accepted", 1,
     1e12},
    {"work-dir", OPT_STR, F(work_dir), "", "DIR",
     "where task directories go (default: $TMPDIR or /tmp, in tasksolver.PID)", 0, 0},
    {"python", OPT_STR, F(python), "python3", "PROGRAM", "interpreter for python tasks", 0, 0},
    {"python-warm", OPT_BOOL, F(python_warm), "on", "on|off",
     "start python tasks from a warm interpreter, a fork server in each worker's sandbox cell "
     "(off: a cold start each time)",
     0, 1},
    {"max-finished", OPT_LONG, F(max_finished), "100000", "N",
     "finished tasks kept; older ones are evicted (their ids then answer 404)", 1, 1e9},
    {"max-queue", OPT_LONG, F(max_queue), "-1", "N",
     "tasks allowed to wait; more are refused (-1: unbounded, 0: none wait)", -1, 1e9},
    {"max-queue-bytes", OPT_MEMORY, F(max_queue_bytes), "auto", "BYTES",
     "memory for waiting tasks and request bodies being read; more are refused (auto: a "
     "quarter of RAM, at most 1G; 0: unbounded)",
     0, 1e15},
    {"reject-status", OPT_INTSET, F(reject_status), "429", "429|403",
     "status for a refused create_task: 429 (with Retry-After) or 403", 0, 0},
    {"calc-command", OPT_COMMAND, F(calc_command), "", "'PROGRAM ARGS'",
     "serve the calculation API (POST / {\"data\": N}, GET /?request_id=ID) by running "
     "PROGRAM ARGS N",
     0, 0},
    {"http-threads", OPT_INT, F(http_threads), "1024", "N",
     "HTTP connection threads (each open connection holds one)", 4, 4096},
    {"request-timeout", OPT_SECONDS, F(request_timeout), "10", "SECONDS",
     "time a new connection gets to send its request's headers; also the longest wait for "
     "the client in any one read or write",
     0.1, 3600},
    {"body-timeout", OPT_SECONDS, F(body_timeout), "10", "SECONDS",
     "time a client gets to send a request body, plus a second per --body-min-rate bytes "
     "received",
     0.1, 86400},
    {"body-min-rate", OPT_SIZE, F(body_min_rate), "16K", "BYTES",
     "request body bytes that earn one more second (0: --body-timeout is the whole limit)", 0,
     1e12},
    {"keep-alive-timeout", OPT_SECONDS, F(keep_alive_timeout), "5", "SECONDS",
     "an idle keep-alive connection is closed after this", 0.1, 3600},
    {"max-conns-per-address", OPT_INT, F(max_conns_per_address), "512", "N",
     "connections one client address may hold at once; more are closed at once (0: no limit)", 0,
     65536},
    {"max-wait", OPT_SECONDS, F(max_wait), "60", "SECONDS", "longest get_status long poll", 0,
     3600},
    {"shutdown-grace", OPT_SECONDS, F(shutdown_grace), "10", "SECONDS",
     "on SIGTERM, time running tasks get to finish before they are killed", 0, 3600},
    {"join", OPT_URL, F(join), "", "URL",
     "announce this node to the master at URL (e.g. http://10.0.0.1:8080)", 0, 0},
    {"name", OPT_STR, F(name), "", "NAME", "node name given to the master (default HOST:PORT)", 0,
     0},
    {"advertise", OPT_URL, F(advertise), "", "URL",
     "URL the master calls this node on (default http://ADDRESS:PORT)", 0, 0},
    {"slots", OPT_INT, F(slots), "1", "N", "operations this node takes at once (announced)", 1,
     1024},
    {"announce-interval", OPT_SECONDS, F(announce_interval), "10", "SECONDS",
     "how often a joined node announces itself again", 0.05, 3600},
    {"compute-local", OPT_BOOL, F(compute_local), "no", "",
     "compute arithmetic jobs in this process while no worker node is registered", 0, 1},
    {"op-timeout", OPT_SECONDS, F(op_timeout), "10", "SECONDS",
     "time a worker node gets for one operation", 0.01, 3600},
    {"op-attempts", OPT_INT, F(op_attempts), "10", "N",
     "failed worker requests an operation survives before its job fails", 1, 1000},
    {"forget-after", OPT_SECONDS, F(forget_after), "300", "SECONDS",
     "forget a worker node that has been unhealthy and silent this long (0: never)", 0, 1e7},
    {"max-jobs", OPT_LONG, F(max_jobs), "10000", "N",
     "arithmetic jobs kept; the oldest finished ones are dropped", 100, 1e9},
    {"compute-delay-ms", OPT_INT, F(compute_delay_ms), "0", "MS",
     "for demos and tests: delay every /compute answer by MS milliseconds", 0, 600000},
    {"data-dir", OPT_STR, F(data_dir), "", "DIR",
     "keep tasks, and cluster jobs, in DIR so they survive a restart (default: memory only)", 0, 0},
    {"on-restart", OPT_WORD, F(on_restart), "requeue", "requeue|fail",
     "tasks the journal shows running at start-up: requeue (run again) or fail", 0, 0},
    {"data-sync", OPT_WORD, F(data_sync), "full", "full|normal",
     "journal commits: full (fsync, survives power loss) or normal (survives a crash)", 0, 0},
    {"log-level", OPT_ENUM, F(log_level), "info", "error|warn|info|debug",
     "the most detailed messages logged (info: a line per finished task)", 0, 0},
    {"auth-token-file", OPT_STR, F(auth_token_file), "", "FILE",
     "require 'Authorization: Bearer TOKEN' on every request, TOKEN read from FILE", 0, 0},
    {"sandbox", OPT_BOOL, F(sandbox), "on", "on|off",
     "confine tasks (namespaces, cgroup, limits, seccomp, unprivileged user)", 0, 1},
    {"sandbox-cell", OPT_BOOL, F(sandbox_cell), "on", "on|off",
     "run each worker's tasks in one sandbox cell, emptied between tasks (off: one per task)", 0,
     1},
    {"run-as", OPT_STR, F(run_as), "", "USER",
     "user tasks run as when the server is root (default: nobody)", 0, 0},
    {"task-network", OPT_BOOL, F(task_network), "off", "", "let tasks use the network", 0, 1},
    {"task-memory", OPT_SIZE, F(task_memory), "256M", "BYTES",
     "memory per task, files in its directory and /tmp included (0: none)", 0, 1e15},
    {"task-cpu", OPT_LONG, F(task_cpu), "30", "SECONDS", "CPU time per task process (0: none)", 0,
     1e7},
    {"task-procs", OPT_LONG, F(task_procs), "64", "N",
     "processes and threads at once per task (0: none)", 0, 1e6},
    {"task-fsize", OPT_SIZE, F(task_fsize), "64M", "BYTES",
     "largest file a task may write (0: none)", 0, 1e15},
    {"task-nofile", OPT_LONG, F(task_nofile), "256", "N", "open files per task process (0: none)",
     0, 1e6},
    {"task-disk", OPT_SIZE, F(task_disk), "128M", "BYTES",
     "private disk per task: its directory and /tmp (0: no separate limit)", 0, 1e15},
    {"exec-helper", OPT_STR, F(exec_helper), "", "PATH",
     "the sandbox's tasksolver-exec (default: next to the server binary)", 0, 0},
};

#define N_OPTS (sizeof opts / sizeof opts[0])

static const struct opt *opt_find(const char *name)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

/* Parses a size with an optional K/M/G suffix (binary multiples). */
static int parse_size(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno)
        return -EINVAL;
    /* clang-format off */
    switch (toupper((unsigned char)*end)) {
    case 'K': v *= 1024; end++; break;
    case 'M': v *= 1024 * 1024; end++; break;
    case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
    default: break;
    }
    /* clang-format on */
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || v != floor(v))
        return -EINVAL;
    *out = v;
    return 0;
}

/* Returns the index of val among the words of meta ("a|b|c"), or -1. */
static int meta_word(const char *meta, const char *val)
{
    size_t n = strlen(val);
    int i = 0;
    for (const char *w = meta;; i++) {
        size_t wl = strcspn(w, "|");
        if (wl == n && strncmp(w, val, n) == 0)
            return i;
        if (!w[wl])
            return -1;
        w += wl + 1;
    }
}

/* Writes the words of meta as the end of "not a, b or c". */
static void meta_words_list(const char *meta, char *out, size_t outsz)
{
    const char *last = strrchr(meta, '|');
    size_t len = 0;
    out[0] = '\0';
    for (const char *w = meta; len < outsz;) {
        size_t wl = strcspn(w, "|");
        len += (size_t)snprintf(out + len, outsz - len, "%s%.*s",
                                w == meta       ? ""
                                : w == last + 1 ? " or "
                                                : ", ",
                                (int)wl, w);
        if (!w[wl])
            break;
        w += wl + 1;
    }
}

/* Writes a bound as the user would type it: whole numbers without an
 * exponent (1e12 is a byte count people read as 1000000000000). */
static void bound_str(double v, char *out, size_t outsz)
{
    if (v == floor(v) && fabs(v) < 1e18)
        snprintf(out, outsz, "%.0f", v);
    else
        snprintf(out, outsz, "%g", v);
}

/* Whether a row's field is a char * (owned by the config). */
static int opt_is_text(const struct opt *o)
{
    return o->type == OPT_STR || o->type == OPT_WORD || o->type == OPT_URL ||
           o->type == OPT_COMMAND;
}

/* Sets a field of a row kept as text to a copy of s. */
static int opt_set_str(char *field, const char *s, char *why, size_t whysz)
{
    char *dup = strdup(s);
    if (!dup) {
        snprintf(why, whysz, "out of memory");
        return -ENOMEM;
    }
    free(*(char **)field);
    *(char **)field = dup;
    return 0;
}

/* Refuses a value that is none of the words of o. Returns -EINVAL. */
static int opt_not_a_word(const struct opt *o, char *why, size_t whysz)
{
    char list[256];
    meta_words_list(o->meta, list, sizeof list);
    snprintf(why, whysz, "not %s", list);
    return -EINVAL;
}

/* Checks the value of a row kept as text. Returns 0, or -EINVAL / -ENOMEM
 * with why as opt_set has it. */
static int opt_check_text(const struct opt *o, const char *val, char *why, size_t whysz)
{
    const char *bad = NULL;
    int rc = 0;
    switch (o->type) {
    case OPT_WORD:
        return meta_word(o->meta, val) < 0 ? opt_not_a_word(o, why, whysz) : 0;
    case OPT_URL:
        if (val[0] && url_check(val, 0, NULL, &bad) < 0) {
            snprintf(why, whysz, "%s", bad);
            return -EINVAL;
        }
        return 0;
    case OPT_COMMAND:
        if (val[0]) {
            char **argv = NULL;
            int argc = 0;
            rc = shsplit(val, strlen(val), &argv, &argc, &bad);
            shsplit_free(argv);
            if (rc == 0 && argc == 0) {
                rc = -EINVAL;
                bad = "no program";
            }
        }
        if (rc < 0)
            snprintf(why, whysz, rc == -ENOMEM ? "%s" : "not a command line (%s)", bad);
        return rc;
    default:
        return 0;
    }
}

/* Sets one option from text. Returns 0, or -EINVAL / -ENOMEM with why
 * completing "'VALUE' is ..." (what is allowed instead). */
static int opt_set(config *c, const struct opt *o, const char *val, char *why, size_t whysz)
{
    char *field = (char *)c + o->offset;
    double v = 0;
    char *end;
    if (opt_is_text(o)) {
        int rc = opt_check_text(o, val, why, whysz);
        return rc < 0 ? rc : opt_set_str(field, val, why, whysz);
    }
    if (o->type == OPT_ENUM || o->type == OPT_INTSET) {
        int i = meta_word(o->meta, val);
        if (i < 0)
            return opt_not_a_word(o, why, whysz);
        *(int *)field = o->type == OPT_ENUM ? i : atoi(val);
        return 0;
    }
    if (o->type == OPT_BOOL) {
        static const char *const yes[] = {"yes", "true", "on", "1"};
        static const char *const no[] = {"no", "false", "off", "0"};
        for (size_t i = 0; i < 4; i++) {
            if (strcasecmp(val, yes[i]) == 0 || strcasecmp(val, no[i]) == 0) {
                *(int *)field = strcasecmp(val, yes[i]) == 0;
                return 0;
            }
        }
        snprintf(why, whysz, "not yes or no (nor on/off, true/false, 1/0)");
        return -EINVAL;
    }
    if (o->type == OPT_MEMORY && strcasecmp(val, "auto") == 0) {
        v = (double)membudget_default_max();
    } else if (o->type == OPT_SIZE || o->type == OPT_MEMORY) {
        if (parse_size(val, &v) < 0)
            goto fail_number;
    } else {
        errno = 0;
        v = strtod(val, &end);
        if (end == val || *end || errno || !isfinite(v))
            goto fail_number;
        if (o->type != OPT_SECONDS && v != floor(v))
            goto fail_number;
    }
    if (v < o->min || v > o->max) {
        char lo[32], hi[32];
        bound_str(o->min, lo, sizeof lo);
        bound_str(o->max, hi, sizeof hi);
        snprintf(why, whysz, "out of range (%s to %s)", lo, hi);
        return -EINVAL;
    }
    /* clang-format off */
    switch (o->type) {
    case OPT_INT: *(int *)field = (int)v; break;
    case OPT_LONG: *(long *)field = (long)v; break;
    case OPT_SIZE:
    case OPT_MEMORY: *(size_t *)field = (size_t)v; break;
    case OPT_SECONDS: *(double *)field = v; break;
    case OPT_STR:
    case OPT_BOOL:
    case OPT_WORD:
    case OPT_ENUM:
    case OPT_INTSET:
    case OPT_URL:
    case OPT_COMMAND: break;
    }
    /* clang-format on */
    return 0;

fail_number:
    snprintf(why, whysz, "%s",
             o->type == OPT_MEMORY    ? "not a byte count (e.g. 1048576 or 1M) or auto"
             : o->type == OPT_SIZE    ? "not a byte count (e.g. 1048576 or 1M)"
             : o->type == OPT_SECONDS ? "not a number of seconds"
                                      : "not an integer");
    return -EINVAL;
}

int config_set(config *c, const char *name, const char *val, char *why, size_t whysz)
{
    const struct opt *o = opt_find(name);
    if (!o) {
        snprintf(why, whysz, "unknown setting");
        return -ENOENT;
    }
    return opt_set(c, o, val, why, whysz);
}

int config_init(config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_OPTS; i++) {
        char why[WHY_MAX];
        if (opt_set(c, &opts[i], opts[i].def, why, sizeof why) < 0) {
            config_destroy(c);
            return -ENOMEM;
        }
    }
    return 0;
}

void config_destroy(config *c)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (opt_is_text(&opts[i])) {
            char **p = (char **)((char *)c + opts[i].offset);
            free(*p);
            *p = NULL;
        }
    free(c->config_file);
    c->config_file = NULL;
}

void config_check(const config *c)
{
    if (c->max_queue_bytes && c->max_body > c->max_queue_bytes / 3)
        log_warn("--max-body %zu is more than a third of --max-queue-bytes %zu: a body takes "
                 "three times its size while it is read, so bodies over %zu bytes are refused",
                 c->max_body, c->max_queue_bytes, c->max_queue_bytes / 3);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int config_load_file(config *c, const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        fprintf(stderr, "tasksolver: cannot read config %s: %s\n", path, strerror(e));
        return -e;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            fprintf(stderr, "tasksolver: %s:%d: expected 'key = value'\n", path, lineno);
            rc = -EINVAL;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        char why[WHY_MAX];
        rc = config_set(c, key, val, why, sizeof why);
        if (rc == -ENOENT) {
            fprintf(stderr, "tasksolver: %s:%d: unknown setting '%s'\n", path, lineno, key);
            rc = -EINVAL;
            break;
        }
        if (rc < 0) {
            fprintf(stderr, "tasksolver: %s:%d: %s: '%s' is %s\n", path, lineno, key, val, why);
            break;
        }
    }
    fclose(f);
    return rc;
}

void config_usage(FILE *f)
{
    fprintf(f, "usage: tasksolver [OPTIONS]\n\n"
               "Runs programs sent over HTTP on a fixed pool of worker threads.\n\n"
               "options:\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        char left[160];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->meta[0] ? " " : "", o->meta);
        fprintf(f, "  %-26s %s", left, o->help);
        if (o->def[0])
            fprintf(f, " [%s]", o->def);
        fputc('\n', f);
    }
    fprintf(f, "  %-26s %s\n", "--config FILE", "read settings from FILE (key = value lines)");
    fprintf(f, "  %-26s %s\n", "--help", "show this text");
    fprintf(f, "  %-26s %s\n", "--version", "show the version");
}

int config_parse_args(config *c, int argc, char **argv)
{
    /* --config is applied first so that the command line overrides it. */
    for (int i = 1; i < argc; i++) {
        const char *file = NULL;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            file = argv[i] + 9;
        if (file && config_load_file(c, file) < 0)
            return 2;
        if (file) {
            /* Kept (absolute) so that tasks can be kept from reading it. */
            free(c->config_file);
            if (!(c->config_file = realpath(file, NULL))) {
                fprintf(stderr, "tasksolver: config %s: %s\n", file, strerror(errno));
                return 2;
            }
        }
    }
    struct option lo[N_OPTS + 4];
    for (size_t i = 0; i < N_OPTS; i++)
        lo[i] = (struct option){opts[i].name,
                                opts[i].type != OPT_BOOL ? required_argument
                                : opts[i].meta[0]        ? required_argument
                                                         : optional_argument,
                                NULL, (int)(256 + i)};
    lo[N_OPTS] = (struct option){"config", required_argument, NULL, 'c'};
    lo[N_OPTS + 1] = (struct option){"help", no_argument, NULL, 'h'};
    lo[N_OPTS + 2] = (struct option){"version", no_argument, NULL, 'V'};
    lo[N_OPTS + 3] = (struct option){NULL, 0, NULL, 0};
    /* 0, not 1: glibc then also resets its state within a word, so a
     * second parse (the unit tests) starts clean. */
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":hV", lo, NULL)) != -1) {
        if (ch == 'h') {
            config_usage(stdout);
            return 1;
        }
        if (ch == 'V') {
            printf("tasksolver %s\n", TS_VERSION);
            return 1;
        }
        if (ch == 'c')
            continue;
        if (ch == '?' || ch == ':') {
            const char *arg = argv[optind - 1];
            fprintf(stderr, "tasksolver: %s option '%s'\n",
                    ch == ':' ? "missing value for" : "unknown", arg);
            goto fail_usage;
        }
        const struct opt *o = &opts[ch - 256];
        char why[WHY_MAX];
        const char *val = optarg ? optarg : "yes"; /* a bare boolean flag */
        if (opt_set(c, o, val, why, sizeof why) < 0) {
            fprintf(stderr, "tasksolver: --%s: '%s' is %s\n", o->name, val, why);
            goto fail_usage;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tasksolver: unexpected argument '%s'\n", argv[optind]);
        goto fail_usage;
    }
    return 0;

fail_usage:
    config_usage(stderr);
    return 2;
}
