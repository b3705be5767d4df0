/* sandbox: see sandbox.h. Start-up probing, the helper's arguments, and
 * the per-run cgroup. */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonw.h"
#include "log.h"

#define MAX_ARGS 64
/* How long a cell may take to clean up after a task: emptying a full
 * tmpfs of small files (one inode per 4 KiB of --task-disk) takes tens of
 * milliseconds. */
#define CELL_READY_MS 10000

__attribute__((format(printf, 2, 3))) static void note(sandbox *sb, const char *fmt, ...)
{
    if (sb->nnotes >= SANDBOX_MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&sb->notes[sb->nnotes], fmt, ap) >= 0)
        sb->nnotes++;
    va_end(ap);
}

static void free_vec(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Appends a copy of a formatted argument to the NULL-terminated v. */
__attribute__((format(printf, 2, 3))) static int arg(char **v, const char *fmt, ...)
{
    size_t n = 0;
    while (v[n])
        n++;
    if (n + 1 >= MAX_ARGS)
        return -E2BIG;
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&v[n], fmt, ap);
    va_end(ap);
    if (rc < 0) {
        v[n] = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* The memory limit goes to the cgroup when there is one, else to
 * RLIMIT_AS (which also counts address space that is never used). */
static int memory_by_cgroup(const sandbox *sb)
{
    return sb->cg.mem_dir != NULL;
}

static int procs_by_cgroup(const sandbox *sb)
{
    return sb->cg.pids_dir != NULL;
}

/* cell_argv borrows every string from base but its own options
 * ("--cell", "--pyfork=..."). */
static void free_cell_argv(sandbox *sb)
{
    for (size_t i = 0; sb->cell_argv && sb->cell_argv[i]; i++) {
        int borrowed = 0;
        for (size_t k = 0; sb->base && sb->base[k]; k++)
            borrowed |= sb->cell_argv[i] == sb->base[k];
        if (!borrowed)
            free(sb->cell_argv[i]);
    }
    free(sb->cell_argv);
    sb->cell_argv = NULL;
}

/* How the process limit is enforced, when the pids cgroup is missing.
 * RLIMIT_NPROC counts the processes of a uid within one user namespace
 * (and root ignores it): for tasks of another user than the server, every
 * process of that user on the machine; for tasks in a user namespace of
 * their own (the server is not root), only the task's, with the helper
 * and init (measured: with the limit at 12 in a fresh user namespace, 11
 * forks succeeded while the same uid had 20 processes outside it). */
enum procs_rule { PROCS_CGROUP, PROCS_PER_USER, PROCS_PER_TASK, PROCS_NONE };

static enum procs_rule procs_rule(const sandbox *sb)
{
    if (procs_by_cgroup(sb))
        return PROCS_CGROUP;
    if (sb->uid != (uid_t)-1)
        return PROCS_PER_USER;
    return sb->ns && sb->userns ? PROCS_PER_TASK : PROCS_NONE;
}

/* The helper's arguments that are the same for every run. */
static int build_base(sandbox *sb)
{
    const sandbox_config *c = &sb->cfg;
    char **v = calloc(MAX_ARGS, sizeof *v);
    if (!v)
        return -ENOMEM;
    int rc = arg(v, "%s", sb->helper);
    if (!rc && sb->ns)
        rc = arg(v, "--ns");
    if (!rc && sb->ns && sb->netns)
        rc = arg(v, "--no-network");
    if (!rc && sb->ns && sb->userns)
        rc = arg(v, "--userns");
    if (!rc && sb->seccomp)
        rc = arg(v, "--seccomp");
    if (!rc && sb->uid != (uid_t)-1)
        rc = arg(v, "--uid=%u", (unsigned)sb->uid);
    if (!rc && sb->uid != (uid_t)-1)
        rc = arg(v, "--gid=%u", (unsigned)sb->gid);
    if (!rc && sb->ns && c->disk > 0)
        rc = arg(v, "--disk=%lld", (long long)c->disk);
    if (!rc && c->cpu > 0)
        rc = arg(v, "--cpu=%lld", (long long)c->cpu);
    if (!rc && c->fsize > 0)
        rc = arg(v, "--fsize=%lld", (long long)c->fsize);
    if (!rc && c->nofile > 0)
        rc = arg(v, "--nofile=%lld", (long long)c->nofile);
    if (!rc && c->memory > 0 && !memory_by_cgroup(sb))
        rc = arg(v, "--as=%lld", (long long)c->memory);
    /* RLIMIT_NPROC only where no pids cgroup bounds processes. Behind
     * one, which a task cannot leave, it added nothing but failures: it
     * counts every process and thread of the user on the machine, so any
     * other process of that user (a server running as nobody has ~70
     * threads, another server's fork bomb held at its cgroup limit) made
     * every task fail to execute (EAGAIN). In a user namespace of the
     * task's own it counts the task's processes only, the helper and init
     * among them. */
    if (!rc && c->procs > 0 && procs_rule(sb) == PROCS_PER_USER)
        rc = arg(v, "--nproc=%lld", (long long)c->procs);
    else if (!rc && c->procs > 0 && procs_rule(sb) == PROCS_PER_TASK)
        rc = arg(v, "--nproc=%lld", (long long)(c->procs + 2));
    for (size_t i = 0; !rc && sb->ns && sb->hide[i]; i++)
        rc = arg(v, "--hide=%s", sb->hide[i]);
    if (rc) {
        free_vec(v);
        return rc == -E2BIG ? -E2BIG : -ENOMEM;
    }
    size_t n = 0;
    while (v[n])
        n++;
    /* --cell (and --pyfork) right after the helper's path, the rest
     * borrowed from v. */
    char **cv = calloc(n + 3, sizeof *cv);
    size_t own = 1;
    if (cv && !(cv[1] = strdup("--cell")))
        cv[1] = NULL;
    if (cv && cv[1] && sb->python_warm && asprintf(&cv[++own], "--pyfork=%s", c->pyfork) < 0)
        cv[own--] = NULL;
    if (!cv || !cv[1] || (sb->python_warm && own < 2)) {
        if (cv)
            free(cv[1]);
        free(cv);
        free_vec(v);
        return -ENOMEM;
    }
    cv[0] = v[0];
    memcpy(cv + own + 1, v + 1, (n - 1) * sizeof *cv);
    free_cell_argv(sb);
    free_vec(sb->base);
    sb->base = v;
    sb->cell_argv = cv;
    return 0;
}

/* Gives the task's user what the directory open at fd holds, directories
 * (the request's files, up to depth levels more) included; closes fd. */
static int give_tree(const sandbox *sb, int fd, int depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        if (fchownat(dirfd(d), de->d_name, sb->uid, sb->gid, AT_SYMLINK_NOFOLLOW) < 0)
            rc = -errno;
        if (de->d_type != DT_DIR || depth == 0)
            continue;
        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int r = sub < 0 ? -errno : give_tree(sb, sub, depth - 1);
        if (r < 0)
            rc = r;
    }
    closedir(d);
    return rc;
}

/* Gives the task's user the directory and its files, for runs without a
 * mount namespace (which would otherwise hand the task a private copy). */
static int give_dir(const sandbox *sb, const char *dir)
{
    if (sb->ns || sb->uid == (uid_t)-1)
        return 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fchown(fd, sb->uid, sb->gid) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    /* As deep as a request's file names go (request_files.h). */
    return give_tree(sb, fd, 32);
}

/* Makes a cell for dir. Returns 0 or -errno with why set. */
static int make_cell(const sandbox *sb, const char *dir, cell **out, char *why, size_t whysz)
{
    /* Each cell's group has a name of its own: one that could not be
     * removed does not stand in the way of the next. */
    static atomic_ulong seq;
    char name[64];
    snprintf(name, sizeof name, "cell-%lu", atomic_fetch_add(&seq, 1));
    cell_config cc = {
        .argv = sb->cell_argv,
        .dir = dir,
        .cg = &sb->cg,
        .cg_name = name,
        .memory = sb->cfg.memory,
        /* Only the task's processes are in the group: init is not. */
        .pids = sb->cfg.procs > 0 ? (long)sb->cfg.procs : 0,
    };
    return cell_new(&cc, out, why, whysz);
}

/* The run's limits: the task's own where it asked, the sandbox's else. */
static void fill_limits(const sandbox *sb, const sandbox_limits *lim, sandbox_limits *out)
{
    const sandbox_config *c = &sb->cfg;
    sandbox_limits none = {0};
    if (!lim)
        lim = &none;
    out->memory = lim->memory > 0 ? lim->memory : c->memory;
    out->cpu = lim->cpu > 0 ? lim->cpu : c->cpu;
    out->procs = lim->procs > 0 ? lim->procs : c->procs;
    out->fsize = lim->fsize > 0 ? lim->fsize : c->fsize;
    out->disk = lim->disk > 0 ? lim->disk : c->disk;
}

/* RLIMIT_NPROC for procs processes, as build_base sets it; 0: none. */
static int64_t nproc_of(const sandbox *sb, int64_t procs)
{
    if (procs <= 0)
        return 0;
    enum procs_rule rule = procs_rule(sb);
    return rule == PROCS_PER_USER ? procs : rule == PROCS_PER_TASK ? procs + 2 : 0;
}

/* Gives the cell's next task the run's limits: the cgroup's at once, the
 * rlimits with the RUN (only where they are not the cell's own). */
static int set_cell_limits(const sandbox *sb, cell *c, const sandbox_limits *l)
{
    const sandbox_config *cf = &sb->cfg;
    cell_limits cl = {0};
    if (memory_by_cgroup(sb))
        cl.memory = l->memory;
    else if (l->memory != cf->memory)
        cl.as = l->memory;
    if (procs_by_cgroup(sb))
        cl.pids = (long)l->procs;
    else if (l->procs != cf->procs)
        cl.nproc = nproc_of(sb, l->procs);
    if (l->cpu != cf->cpu)
        cl.cpu = l->cpu;
    if (l->fsize != cf->fsize)
        cl.fsize = l->fsize;
    return cell_set_limits(c, &cl);
}

/* Points o at the worker's cell, made or made anew as needed. Returns 0,
 * or -1 when no cell can be had now (logged). */
static int use_cell(const sandbox *sb, cell **cellp, const char *dir, runner_opts *o,
                    sandbox_run *sr)
{
    cell *c = *cellp;
    if (c && strcmp(cell_dir(c), dir) != 0) {
        cell_free(c);
        *cellp = c = NULL;
    } else if (c && cell_wait_ready(c, CELL_READY_MS) < 0) {
        log_warn("sandbox: the cell of %s was damaged (it died, did not answer, or could not "
                 "clean up): building a new one",
                 dir);
        cell_free(c);
        *cellp = c = NULL;
    }
    if (!c) {
        char why[512];
        int rc = make_cell(sb, dir, &c, why, sizeof why);
        if (rc < 0) {
            log_warn("sandbox: no cell for %s (%s): this task gets a sandbox of its own", dir, why);
            return -1;
        }
        *cellp = c;
    }
    if (set_cell_limits(sb, c, &sr->lim) < 0) {
        log_warn("sandbox: the cgroup of the cell of %s refused a task's limits: this task gets a "
                 "sandbox of its own",
                 dir);
        cell_free(c);
        *cellp = NULL;
        return -1;
    }
    sr->cell = c;
    o->cell = c;
    o->wrapper = NULL;
    return 0;
}

/* Points sr->argv's options at the run's limits where they are not the
 * sandbox's own (the helper takes the last of an option given twice). */
static size_t limit_options(const sandbox *sb, sandbox_run *sr, char **v)
{
    const sandbox_config *c = &sb->cfg;
    const sandbox_limits *l = &sr->lim;
    size_t n = 0;
    if (l->cpu != c->cpu)
        snprintf(sr->opt[n++], sizeof sr->opt[0], "--cpu=%lld", (long long)l->cpu);
    if (l->fsize != c->fsize)
        snprintf(sr->opt[n++], sizeof sr->opt[0], "--fsize=%lld", (long long)l->fsize);
    if (l->memory != c->memory && !memory_by_cgroup(sb))
        snprintf(sr->opt[n++], sizeof sr->opt[0], "--as=%lld", (long long)l->memory);
    if (l->procs != c->procs && !procs_by_cgroup(sb) && nproc_of(sb, l->procs) > 0)
        snprintf(sr->opt[n++], sizeof sr->opt[0], "--nproc=%lld",
                 (long long)nproc_of(sb, l->procs));
    if (l->disk != c->disk && sb->ns)
        snprintf(sr->opt[n++], sizeof sr->opt[0], "--disk=%lld", (long long)l->disk);
    for (size_t i = 0; i < n; i++)
        v[i] = sr->opt[i];
    return n;
}

int sandbox_run_begin(const sandbox *sb, cell **cellp, const char *dir, runner_opts *o,
                      const sandbox_limits *lim, sandbox_run *sr)
{
    memset(sr, 0, sizeof *sr);
    fill_limits(sb, lim, &sr->lim);
    int rc;
    if (sb->cell && sr->lim.disk == sb->cfg.disk && use_cell(sb, cellp, dir, o, sr) == 0)
        return 0;
    if ((rc = give_dir(sb, dir)) < 0)
        return rc;
    if (sb->cg.version != CGROUP_NONE) {
        /* Directories are reused from task to task: the number keeps a
         * group that could not be removed from blocking the next run. */
        static atomic_ulong seq;
        char name[300];
        snprintf(name, sizeof name, "%.200s-%lu", strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir,
                 atomic_fetch_add(&seq, 1));
        /* The helper, and init in a PID namespace, count too. */
        int64_t pids = sr->lim.procs > 0 ? sr->lim.procs + (sb->ns ? 2 : 1) : 0;
        rc = cgroup_task_create(&sb->cg, name, sr->lim.memory, (long)pids, &sr->cg);
        if (rc < 0)
            return rc;
    }
    size_t n = 0;
    while (sb->base[n])
        n++;
    sr->argv = calloc(n + 10 + sizeof sr->opt / sizeof sr->opt[0], sizeof *sr->argv);
    if (!sr->argv) {
        cgroup_task_remove(&sr->cg);
        return -ENOMEM;
    }
    memcpy(sr->argv, sb->base, n * sizeof *sr->argv);
    n += limit_options(sb, sr, sr->argv + n);
    sr->argv[n++] = "--dir";
    sr->argv[n++] = (char *)dir;
    if (sr->cg.mem_dir) {
        sr->argv[n++] = "--cgroup";
        sr->argv[n++] = sr->cg.mem_dir;
    }
    if (sr->cg.pids_dir && (!sr->cg.mem_dir || strcmp(sr->cg.pids_dir, sr->cg.mem_dir) != 0)) {
        sr->argv[n++] = "--cgroup";
        sr->argv[n++] = sr->cg.pids_dir;
    }
    if (o->sh_fallback)
        sr->argv[n++] = "--sh";
    if (o->save_files)
        sr->argv[n++] = "--save";
    sr->argv[n++] = "--";
    o->wrapper = sr->argv;
    o->cell = NULL;
    return 0;
}

/* Records in r the limit the cgroup's counts point at. */
static void limit_from_events(const sandbox_run *sr, const cgroup_events *ev, runner_result *r)
{
    /* The kernel's counts beat a guess from a signal when the task was
     * killed; a task that died of its own error after a refused fork hit
     * the process limit, even if memory ran short too. */
    int killed = r->term_signal == SIGKILL;
    if (ev->oom_kills > 0 && (killed || !ev->pids_max)) {
        r->limit = RUNNER_LIMIT_MEMORY;
        r->limit_value = sr->lim.memory;
    } else if (ev->pids_max > 0 && r->limit == RUNNER_LIMIT_NONE) {
        r->limit = RUNNER_LIMIT_PROCS;
        r->limit_value = sr->lim.procs;
    }
}

int sandbox_run_end(const sandbox *sb, sandbox_run *sr, runner_result *r)
{
    int ok = r->exited && r->exit_code == 0 && !r->spawn_errno && !r->wrapper_error[0];
    cgroup_events ev;
    if (sr->cell) {
        /* Read after every task: the next one's figures are the
         * difference from these. */
        cell_events(sr->cell, &ev);
        r->memory_peak = ev.peak;
        if (!ok)
            limit_from_events(sr, &ev, r);
        return 0;
    }
    if (sb->cg.version != CGROUP_NONE) {
        cgroup_task_events(&sr->cg, &ev);
        r->memory_peak = ev.peak;
        if (!ok)
            limit_from_events(sr, &ev, r);
    }
    free(sr->argv);
    sr->argv = NULL;
    return sb->cg.version != CGROUP_NONE ? cgroup_task_remove(&sr->cg) : 0;
}

/* Runs a trivial program through the helper as a task would be: in the
 * cell c if there is one, else per task. Returns 0, or -1 with the
 * helper's complaint in why. */
static int probe_run(sandbox *sb, const char *dir, cell **c, char *why, size_t whysz)
{
    sandbox_run sr;
    char *argv[] = {"sh", "-c", "exit 0", NULL};
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    runner_opts o = {.path = "/bin/sh",
                     .argv = argv,
                     .envp = env,
                     .cwd = dir,
                     .stdin_fd = -1,
                     .capture_stderr = 1};
    int rc = sandbox_run_begin(sb, c, dir, &o, NULL, &sr);
    if (rc < 0) {
        snprintf(why, whysz, "cgroup for a task: %s", strerror(-rc));
        return -1;
    }
    runner_limits l = {.timeout_us = 10 * 1000000, .cancel_fd = -1};
    runner_result r;
    rc = runner_run(&o, &l, NULL, NULL, &r);
    sb->probe_ms = (double)(r.end_us - r.start_us) / 1e3;
    sandbox_run_end(sb, &sr, &r);
    if (rc == 0 && r.exited && r.exit_code == 0 && !r.wrapper_error[0] && !r.spawn_errno) {
        runner_result_destroy(&r);
        return 0;
    }
    char how[256];
    if (rc < 0)
        snprintf(why, whysz, "probe: %s", strerror(-rc));
    else if (r.wrapper_error[0])
        snprintf(why, whysz, "%s", r.wrapper_error);
    else
        snprintf(why, whysz, "probe %s%s%.*s", runner_describe(&r, &l, how, sizeof how),
                 r.err.len ? ": " : "", (int)(r.err.len > 200 ? 200 : r.err.len),
                 r.err.data ? r.err.data : "");
    runner_result_destroy(&r);
    return -1;
}

/* Probes the per-task mode (cells: 0), or a cell: built, two tasks run in
 * it (the second after a cleanup), freed. Returns 0 or -1 with why set. */
static int probe(sandbox *sb, int cells, char *why, size_t whysz)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/probe-XXXXXX", sb->work_dir);
    if (!mkdtemp(dir)) {
        snprintf(why, whysz, "probe directory in %s: %s", sb->work_dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    cell *c = NULL;
    if (cells && (rc = make_cell(sb, dir, &c, why, whysz)) < 0)
        rc = -1;
    for (int i = 0; rc == 0 && i < (cells ? 2 : 1); i++) {
        if (i > 0 && cell_wait_ready(c, CELL_READY_MS) < 0) {
            snprintf(why, whysz, "the cell could not clean up after a task");
            rc = -1;
            break;
        }
        rc = probe_run(sb, dir, cells ? &c : NULL, why, whysz);
        if (rc == 0 && cells && (!c || !cell_usable(c))) {
            snprintf(why, whysz, "the cell could not be used");
            rc = -1;
        }
    }
    cell_free(c);
    rmdir(dir);
    return rc;
}

/* Runs a python task in a new cell, through its fork server if the cell
 * hosts one. Returns its parent's pid as the task saw it (1: init, a cold
 * start), or -1 with why set. */
static long probe_python_run(sandbox *sb, const char *dir, char *why, size_t whysz)
{
    const sandbox_config *c = &sb->cfg;
    char path[4200], home[4200];
    snprintf(path, sizeof path, "%s/main.py", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs("import os\nprint(os.getppid())\n", f) < 0 || fclose(f) != 0) {
        snprintf(why, whysz, "probe program in %.300s: %s", dir, strerror(errno));
        return -1;
    }
    size_t n = 0;
    while (c->python_env && c->python_env[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env) {
        snprintf(why, whysz, "out of memory");
        return -1;
    }
    if (n)
        memcpy(env, c->python_env, n * sizeof *env);
    snprintf(home, sizeof home, "HOME=%s", dir);
    env[n] = home;
    char *argv[] = {(char *)c->python, "main.py", NULL};
    runner_opts o = {.path = c->python,
                     .argv = argv,
                     .envp = env,
                     .cwd = dir,
                     .stdin_fd = -1,
                     .capture_stdout = 1,
                     .capture_stderr = 1,
                     .warm_python = 1};
    cell *cl = NULL;
    sandbox_run sr;
    long ppid = -1;
    int rc = sandbox_run_begin(sb, &cl, dir, &o, NULL, &sr);
    if (rc < 0 || !o.cell) {
        snprintf(why, whysz, "no cell for the probe");
        if (rc == 0)
            sandbox_run_end(sb, &sr, &(runner_result){0});
        goto out;
    }
    runner_limits l = {.timeout_us = 20 * 1000000, .cancel_fd = -1};
    runner_result r;
    rc = runner_run(&o, &l, NULL, NULL, &r);
    sandbox_run_end(sb, &sr, &r);
    char how[256];
    if (rc < 0)
        snprintf(why, whysz, "probe: %s", strerror(-rc));
    else if (!r.exited || r.exit_code != 0 || r.wrapper_error[0] || r.spawn_errno)
        snprintf(why, whysz, "%s main.py %s%s%.*s", c->python,
                 runner_describe(&r, &l, how, sizeof how), r.err.len ? ": " : "",
                 (int)(r.err.len > 200 ? 200 : r.err.len), r.err.data ? r.err.data : "");
    else if (strncmp(r.note, "warm Python: ", 13) == 0) {
        /* The cell's words ("warm Python: WHAT; what it did about it"),
         * what applies here. */
        const char *what = r.note + 13;
        const char *end = strrchr(what, ';');
        snprintf(why, whysz, "%.*s", (int)(end ? end - what : (int)strlen(what)), what);
    } else if (!r.out.data || (ppid = atol(r.out.data)) <= 0)
        snprintf(why, whysz, "the probe printed no pid");
    if (rc == 0)
        runner_result_destroy(&r);
out:
    cell_free(cl);
    unlink(path);
    free(env);
    return ppid;
}

/* Warm Python where it can work: cells (a fork server is hosted by a
 * cell's init), a root server (its tasks have a user of their own, which
 * the cleanup kills by), a script to run. A python task started in a cell
 * from the fork server has the server for its parent, one started cold has
 * init (pid 1). Keeps python_warm, or drops it with a note. */
static void probe_python(sandbox *sb)
{
    const sandbox_config *c = &sb->cfg;
    char why[512] = "", dir[4096];
    int rc = 0;
    if (!c->pyfork || !c->pyfork[0])
        rc = asprintf(&sb->python_why, "--python-warm off");
    else if (!sb->cell)
        rc = asprintf(&sb->python_why, "no sandbox cells: it runs in a worker's cell");
    else if (sb->uid == (uid_t)-1)
        rc = asprintf(&sb->python_why, "the server is not root: tasks would have the fork "
                                       "server's user");
    else if (access(c->pyfork, R_OK) < 0)
        rc = asprintf(&sb->python_why, "%s: %s", c->pyfork, strerror(errno));
    if (rc < 0)
        sb->python_why = NULL;
    if (rc != 0)
        return;
    snprintf(dir, sizeof dir, "%s/probe-XXXXXX", sb->work_dir);
    if (!mkdtemp(dir)) {
        snprintf(why, sizeof why, "probe directory in %s: %s", sb->work_dir, strerror(errno));
    } else {
        sb->python_warm = 1;
        if (build_base(sb) < 0)
            snprintf(why, sizeof why, "out of memory");
        else if (probe_python_run(sb, dir, why, sizeof why) == 1 && !why[0])
            snprintf(why, sizeof why, "the fork server did not start the probe");
        rmdir(dir);
    }
    if (!why[0])
        return;
    sb->python_warm = 0;
    build_base(sb);
    if (asprintf(&sb->python_why, "%s", why) < 0)
        sb->python_why = NULL;
    note(sb, "warm Python: %s; python tasks start cold", why);
}

/* Whose identity tasks take. Returns 0 or -1 with err set. */
static int pick_user(sandbox *sb, const char *run_as, char *err, size_t errsz)
{
    struct passwd *pw;
    sb->uid = (uid_t)-1;
    sb->gid = (gid_t)-1;
    if (!sb->root) {
        if (run_as && run_as[0]) {
            snprintf(err, errsz, "--run-as %s needs the server to run as root", run_as);
            return -1;
        }
        pw = getpwuid(getuid());
        sb->user = pw ? strdup(pw->pw_name) : NULL;
        if (!sb->user && asprintf(&sb->user, "%u", (unsigned)getuid()) < 0)
            sb->user = NULL;
        return sb->user ? 0 : (snprintf(err, errsz, "out of memory"), -1);
    }
    const char *name = run_as && run_as[0] ? run_as : "nobody";
    if (!(pw = getpwnam(name))) {
        snprintf(err, errsz, "--run-as: no user '%s' on this machine", name);
        return -1;
    }
    if (pw->pw_uid == 0 || pw->pw_gid == 0) {
        snprintf(err, errsz, "--run-as %s: tasks never run as root (uid or gid 0)", name);
        return -1;
    }
    sb->uid = pw->pw_uid;
    sb->gid = pw->pw_gid;
    sb->user = strdup(pw->pw_name);
    return sb->user ? 0 : (snprintf(err, errsz, "out of memory"), -1);
}

/* Copies the strings of cfg into sb. */
static int copy_config(sandbox *sb, const sandbox_config *cfg)
{
    sb->cfg = *cfg;
    size_t n = 0;
    while (cfg->hide && cfg->hide[n])
        n++;
    sb->hide = calloc(n + 1, sizeof *sb->hide);
    sb->helper = strdup(cfg->helper);
    sb->work_dir = strdup(cfg->work_dir);
    if (!sb->hide || !sb->helper || !sb->work_dir)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(sb->hide[i] = strdup(cfg->hide[i])))
            return -ENOMEM;
    sb->cfg.helper = sb->helper;
    sb->cfg.work_dir = sb->work_dir;
    sb->cfg.hide = (const char *const *)sb->hide;
    return 0;
}

/* Drops the mechanism a failed probe points at. Returns 0 if there is one
 * to drop, -1 if the failure is not about an optional mechanism. */
static int drop_failed(sandbox *sb, const char *why)
{
    if (strncmp(why, "cgroup", 6) == 0 && sb->cg.version != CGROUP_NONE) {
        note(sb, "cgroup: %s", why);
        cgroup_root_destroy(&sb->cg);
    } else if (strncmp(why, "seccomp", 7) == 0 && sb->seccomp) {
        note(sb, "seccomp: %s", why);
        sb->seccomp = 0;
    } else if (sb->ns && strncmp(why, "uid", 3) != 0 && strncmp(why, "rlimit", 6) != 0 &&
               strncmp(why, "probe", 5) != 0) {
        note(sb, "namespaces: %s; tasks share the host's processes, network and files", why);
        sb->ns = sb->userns = sb->netns = 0;
    } else {
        return -1;
    }
    return 0;
}

int sandbox_init(sandbox *sb, const sandbox_config *cfg, char *err, size_t errsz)
{
    memset(sb, 0, sizeof *sb);
    if (copy_config(sb, cfg) < 0) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    if (access(sb->helper, X_OK) < 0) {
        snprintf(err, errsz, "exec helper %s: %s", sb->helper, strerror(errno));
        goto fail;
    }
    sb->root = geteuid() == 0;
    if (pick_user(sb, cfg->run_as, err, errsz) < 0)
        goto fail;
    sb->ns = 1;
    sb->userns = !sb->root;
    sb->netns = !cfg->network;
    sb->seccomp = 1;
    char why[512];
    /* The summary line says what limits memory and processes instead. */
    if (cgroup_root_init(&sb->cg, "tasksolver", why, sizeof why) < 0)
        note(sb, "cgroup: %s", why);
    else if (why[0])
        note(sb, "cgroup: %s", why);
    for (int tries = 0;; tries++) {
        /* Without a private copy of the work directory, the task's user
         * must be able to reach its own directory in it (not list it). */
        if (!sb->ns && sb->uid != (uid_t)-1 && chmod(sb->work_dir, 0711) < 0) {
            snprintf(err, errsz, "chmod %s: %s", sb->work_dir, strerror(errno));
            goto fail;
        }
        if (build_base(sb) < 0) {
            snprintf(err, errsz, "too many paths to hide");
            goto fail;
        }
        if (probe(sb, 0, why, sizeof why) == 0)
            break;
        if (tries >= 4 || drop_failed(sb, why) < 0) {
            snprintf(err, errsz, "tasks cannot run in the sandbox: %s", why);
            goto fail;
        }
    }
    /* Cells need the namespaces: a PID 1 of their own that can kill
     * everything a task started, and a file system to empty. */
    if (cfg->cells && sb->ns) {
        sb->cell = 1;
        if (probe(sb, 1, why, sizeof why) < 0) {
            sb->cell = 0;
            note(sb, "cell: %s; each task gets a sandbox of its own (slower)", why);
        }
    }
    probe_python(sb);
    /* Borrowed for the probes only. */
    sb->cfg.pyfork = sb->cfg.python = NULL;
    sb->cfg.python_env = NULL;
    return 0;

fail:
    sandbox_destroy(sb);
    return -EINVAL;
}

void sandbox_destroy(sandbox *sb)
{
    if (sb->cg.version != CGROUP_NONE)
        cgroup_root_destroy(&sb->cg);
    free_cell_argv(sb);
    free_vec(sb->base);
    free_vec(sb->hide);
    for (int i = 0; i < sb->nnotes; i++)
        free(sb->notes[i]);
    free(sb->helper);
    free(sb->work_dir);
    free(sb->user);
    free(sb->python_why);
    memset(sb, 0, sizeof *sb);
}

static const char *cgroup_name(const sandbox *sb)
{
    return sb->cg.version == CGROUP_V1 ? "v1" : sb->cg.version == CGROUP_V2 ? "v2" : NULL;
}

/* procs_rule, for GET /info and for the log. */
static const char *const procs_json[] = {"cgroup", "rlimit_nproc", "rlimit_nproc_per_task", "none"};
static const char *const procs_text[] = {"cgroup", "RLIMIT_NPROC, per user",
                                         "RLIMIT_NPROC, per task", "NOT LIMITED"};

int sandbox_info_json(const sandbox *sb, buf *b)
{
    const sandbox_config *c = &sb->cfg;
    buf_printf(b,
               "{\"enabled\":true,\"namespaces\":%s,\"user_namespace\":%s,\"network\":%s,"
               "\"private_tmp\":%s,\"hidden_paths\":%s,\"seccomp\":%s,\"cgroup\":",
               sb->ns ? "true" : "false", sb->userns ? "true" : "false",
               sb->ns && sb->netns ? "false" : "true", sb->ns ? "true" : "false",
               sb->ns ? "true" : "false", sb->seccomp ? "true" : "false");
    jsonw_cstr(b, cgroup_name(sb));
    buf_printf(b, ",\"mode\":\"%s\"", sb->cell ? "cell" : "per_task");
    buf_puts(b, ",\"run_as\":");
    jsonw_cstr(b, sb->user);
    buf_printf(b, ",\"uid\":%ld", sb->uid == (uid_t)-1 ? (long)getuid() : (long)sb->uid);
    buf_printf(b,
               ",\"limits\":{\"memory\":%lld,\"memory_by\":\"%s\",\"cpu_seconds\":%lld,"
               "\"processes\":%lld,\"processes_by\":\"%s\",\"file_size\":%lld,"
               "\"open_files\":%lld,\"disk\":%lld,\"disk_by\":\"%s\"}",
               (long long)c->memory, memory_by_cgroup(sb) ? "cgroup" : "rlimit_as",
               (long long)c->cpu, (long long)c->procs, procs_json[procs_rule(sb)],
               (long long)c->fsize, (long long)c->nofile, sb->ns ? (long long)c->disk : 0LL,
               sb->ns ? "tmpfs" : "none");
    buf_printf(b, ",\"python_warm\":{\"active\":%s,\"why\":", sb->python_warm ? "true" : "false");
    jsonw_cstr(b, sb->python_warm ? NULL : sb->python_why);
    buf_puts(b, "},\"missing\":[");
    for (int i = 0; i < sb->nnotes; i++) {
        if (i)
            buf_putc(b, ',');
        jsonw_cstr(b, sb->notes[i]);
    }
    buf_puts(b, "]}");
    return buf_failed(b) ? -ENOMEM : 0;
}

/* "256 MiB", "1000 bytes", "none". */
static const char *bytes(char *out, size_t size, int64_t v)
{
    if (v <= 0)
        snprintf(out, size, "none");
    else if (v % (1024 * 1024) == 0)
        snprintf(out, size, "%lld MiB", (long long)(v >> 20));
    else if (v % 1024 == 0)
        snprintf(out, size, "%lld KiB", (long long)(v >> 10));
    else
        snprintf(out, size, "%lld bytes", (long long)v);
    return out;
}

void sandbox_summary(const sandbox *sb, char *out, size_t size)
{
    const sandbox_config *c = &sb->cfg;
    char mem[32], fsz[32], disk[32];
    snprintf(out, size,
             "sandbox: tasks run as %s (uid %ld) in %s; namespaces %s%s%s; network %s; "
             "cgroup %s; "
             "seccomp %s; warm Python %s; limits: memory %s (%s), cpu %lld s, processes %lld (%s), "
             "file size %s, open files %lld, disk %s",
             sb->user, sb->uid == (uid_t)-1 ? (long)getuid() : (long)sb->uid,
             sb->cell ? "a cell per worker, emptied between its tasks" : "a sandbox per task",
             sb->ns ? "pid,mount,ipc,uts" : "NONE", sb->ns && sb->netns ? ",net" : "",
             sb->userns ? ",user" : "", sb->ns && sb->netns ? "off" : "ON",
             cgroup_name(sb) ? cgroup_name(sb) : "NONE", sb->seccomp ? "on" : "OFF",
             sb->python_warm ? "on" : "off", bytes(mem, sizeof mem, c->memory),
             memory_by_cgroup(sb) ? "cgroup" : "RLIMIT_AS", (long long)c->cpu, (long long)c->procs,
             procs_text[procs_rule(sb)], bytes(fsz, sizeof fsz, c->fsize), (long long)c->nofile,
             bytes(disk, sizeof disk, sb->ns ? c->disk : 0));
}
