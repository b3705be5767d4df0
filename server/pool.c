/* pool: see pool.h. */
#include "pool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cell.h"
#include "lang.h"
#include "live.h"
#include "log.h"
#include "rmtree.h"
#include "runner.h"
#include "sandbox.h"
#include "request.h"
#include "request_files.h"
#include "shsplit.h"
#include "testset.h"
#include "timefmt.h"

/* The tests of one task keep at most this many times --max-output of
 * each stream in all (see run_tests). */
#define POOL_TESTS_OUTPUT_SHARE 4

/* Tasks get a small, predictable environment: nothing of the server's
 * (tokens, paths) leaks into code sent by strangers. */
/* clang-format off */
char *const pool_env_base[] = {
    "PATH=" POOL_TASK_PATH,
    "LANG=C.UTF-8",
    "PYTHONDONTWRITEBYTECODE=1",
    "PYTHONUNBUFFERED=1",
    NULL,
};
/* clang-format on */

/* Entries in a task's environment at most: the base, a request's own,
 * HOME and TMPDIR. */
#define POOL_ENV_MAX (sizeof pool_env_base / sizeof *pool_env_base - 1 + REQUEST_MAX_ENV + 2)

/* A worker's task directory. Each worker makes one and reuses it, emptied,
 * task after task: creating and removing a directory for every task cost
 * more than all the rest of the task's file work (on ext4 each new
 * directory allocates a block that rmdir frees and, with the discard mount
 * option, discards: ~200 us of CPU per task against ~30 us for writing and
 * removing the program). A directory that cannot be emptied, or that is no
 * longer the one made (a task renamed or replaced it), is removed and the
 * next task gets a fresh one. */
typedef struct taskdir {
    char path[4096];
    DIR *dh; /* open on path; NULL: none yet */
    dev_t dev;
    ino_t ino;
    cell *cell;    /* the sandbox's cell built for this directory, or NULL */
    int cancel_fd; /* the worker's eventfd (pool.cancel_fds) */
    char kept[16]; /* the last task's program file, left to be overwritten
                      by the next one of the same name; "" if none */
} taskdir;

/* Makes d's directory if it has none. Returns 0 or -errno. */
static int taskdir_ready(const pool *p, taskdir *d)
{
    if (d->dh)
        return 0;
    snprintf(d->path, sizeof d->path, "%s/task-XXXXXX", p->cfg.work_dir);
    if (!mkdtemp(d->path))
        return -errno;
    int fd = open(d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !(d->dh = fdopendir(fd))) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        rmdir(d->path);
        return -e;
    }
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    return 0;
}

/* Removes d's directory and everything in it. */
static void taskdir_drop(taskdir *d)
{
    cell_free(d->cell);
    d->cell = NULL;
    if (!d->dh)
        return;
    closedir(d->dh);
    d->dh = NULL;
    d->kept[0] = '\0';
    int rc = rmtree_path(d->path);
    if (rc < 0)
        log_warn("could not remove %s: %s", d->path, strerror(-rc));
}

/* Empties d's directory for the next task, or drops it; the program file
 * `prog`, if still a regular file, stays for taskdir_program to overwrite. */
static void taskdir_recycle(taskdir *d, const char *prog)
{
    if (!d->dh)
        return;
    int fd = dirfd(d->dh);
    d->kept[0] = '\0';
    for (int pass = 0; pass < 3; pass++) {
        int left = 0;
        struct dirent *de;
        rewinddir(d->dh);
        errno = 0;
        while ((de = readdir(d->dh))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            if (prog && de->d_type == DT_REG && strcmp(de->d_name, prog) == 0 &&
                strlen(prog) < sizeof d->kept) {
                strcpy(d->kept, prog);
                continue;
            }
            left++;
            if (rmtree_at(fd, de->d_name) == -EACCES)
                fchmod(fd, 0700);
        }
        if (errno)
            break;
        if (left)
            continue; /* check that removing left nothing behind */
        struct stat st;
        if (fstatat(AT_FDCWD, d->path, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != d->dev ||
            st.st_ino != d->ino)
            break;
        if ((st.st_mode & 07777) == 0700 || fchmod(fd, 0700) == 0)
            return;
        break;
    }
    taskdir_drop(d);
}

/* Puts the task's program into d as `name` (NULL: the task has none) and
 * nothing else. The previous task's file of the same name is overwritten
 * in place: a new file per task, created and unlinked, was the costliest
 * file work of a task on ext4 (an inode and a block allocated, freed and,
 * with the discard mount option, discarded): with --sandbox off, perf put
 * open(O_CREAT) at 9.8 % and unlinkat at 5.7 % of the server's samples. A
 * file that is no longer a plain one of ours (a task made it a link, or
 * still runs it: ETXTBSY) is replaced. Returns 0 or -errno. */
static int taskdir_program(taskdir *d, const char *name, const unsigned char *data, size_t len,
                           mode_t mode)
{
    int dfd = dirfd(d->dh), fd = -1, rc = 0;
    int reuse = d->kept[0] && name && strcmp(d->kept, name) == 0;
    if (d->kept[0] && !reuse && unlinkat(dfd, d->kept, 0) < 0 && errno != ENOENT)
        return -errno;
    d->kept[0] = '\0';
    if (!name)
        return 0;
    struct stat st = {.st_size = 0};
    if (reuse) {
        /* O_NONBLOCK: a FIFO put in its place must not block the worker. */
        fd = openat(dfd, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
                        ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0))) {
            close(fd);
            fd = -1;
        }
        if (fd < 0 && unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
            return -errno;
    }
    if (fd < 0) {
        fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
            return -errno;
        st.st_size = 0;
    }
    for (size_t off = 0; off < len && !rc;) {
        ssize_t n = pwrite(fd, data + off, len - off, (off_t)off);
        if (n < 0 && errno != EINTR)
            rc = -errno;
        else if (n > 0)
            off += (size_t)n;
    }
    if (!rc && st.st_size > (off_t)len && ftruncate(fd, (off_t)len) < 0)
        rc = -errno;
    if (close(fd) < 0 && !rc)
        rc = -errno;
    if (!rc)
        snprintf(d->kept, sizeof d->kept, "%s", name);
    return rc;
}

/* The task's stdin as a sealed memfd positioned at 0, or -1 for none
 * (/dev/null). An fd rather than a pipe the worker feeds: every way a task
 * starts already takes an fd for stdin (runner_opts.stdin_fd, the cell's
 * RUN, the fork server's request, all by SCM_RIGHTS or inheritance), so
 * nothing in runner/ changes, and the worker need not stay in the loop
 * while a task reads slowly or never. A memfd rather than a file in the
 * task directory: no name the task can see or replace, no disk, and the
 * seals make it read-only for the task, which can reopen it through
 * /dev/stdin like a file. Returns the fd or -errno. */
static int input_fd(const unsigned char *data, size_t len)
{
    if (!data || len == 0)
        return -1;
    int fd = memfd_create("stdin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (size_t off = 0; off < len && !rc;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno != EINTR)
            rc = -errno;
        else if (n > 0)
            off += (size_t)n;
    }
    if (!rc &&
        (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 ||
         lseek(fd, 0, SEEK_SET) < 0))
        rc = -errno;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* The task's environment into env (room for POOL_ENV_MAX entries and the
 * NULL): the base, where the task's own entries do not replace it, then
 * the task's, then HOME and TMPDIR (which requests cannot set). Pointers
 * are borrowed. */
static void make_env(char **env, const task *t, char *home, char *tmpdir)
{
    int n = 0;
    for (char *const *b = pool_env_base; *b; b++) {
        size_t klen = strcspn(*b, "=") + 1;
        int replaced = 0;
        for (int i = 0; i < t->envc && !replaced; i++)
            replaced = strncmp(t->env[i], *b, klen) == 0;
        if (!replaced)
            env[n++] = *b;
    }
    for (int i = 0; i < t->envc && i < REQUEST_MAX_ENV; i++)
        env[n++] = t->env[i];
    env[n++] = home;
    env[n++] = tmpdir;
    env[n] = NULL;
}

/* Builds "PROGRAM [PREFIX...] ARGS..." into a new vector (pointers borrowed). */
static char **make_argv(char *const *prefix, char *const *args, int argc)
{
    int np = 0;
    while (prefix[np])
        np++;
    char **v = calloc((size_t)(np + argc + 1), sizeof *v);
    if (!v)
        return NULL;
    memcpy(v, prefix, (size_t)np * sizeof *v);
    if (argc)
        memcpy(v + np, args, (size_t)argc * sizeof *v);
    return v;
}

/* Fills the result fields of t from r, taking r's buffers. */
static enum task_status take_result(task *t, runner_result *r, const runner_limits *l)
{
    t->out = buf_steal(&r->out, &t->out_len);
    t->err = buf_steal(&r->err, &t->err_len);
    t->out_total = r->out_total;
    t->err_total = r->err_total;
    t->out_truncated = r->out_truncated;
    t->err_truncated = r->err_truncated;
    t->exited = r->exited;
    t->exit_code = r->exit_code;
    t->term_signal = r->term_signal;
    t->timed_out = r->timed_out;
    t->cpu_us = r->cpu_us;
    t->mem_peak = r->memory_peak;
    if (r->exited && r->exit_code == 0 && !r->spawn_errno)
        return TASK_SUCCESS;
    t->limit = r->cancelled                    ? NULL
               : r->timed_out                  ? "timeout"
               : r->limit != RUNNER_LIMIT_NONE ? runner_limit_name(r->limit)
                                               : NULL;
    char why[256];
    runner_describe(r, l, why, sizeof why);
    t->error = strdup(why);
    return TASK_ERROR;
}

/* Publishes the end of t (durable first, when tasks are kept). */
static void finish(pool *p, task *t, enum task_status st)
{
    if (log_enabled(LOG_INFO)) {
        /* A task that ended before it started took no time. */
        int64_t ms = t->began_mono_us ? (time_mono_us() - t->began_mono_us) / 1000 : 0;
        log_info("task %s %s %s %lld ms%s%s", t->id_str, task_type_label(t), task_status_name(st),
                 (long long)ms, t->error ? ": " : "", t->error ? t->error : "");
    }
    tasks_finished(p->tk, t, st);
}

/* Ends t as ERROR with "WHAT: strerror(err)". */
static void fail_task(pool *p, task *t, const char *what, int err)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
    t->error = strdup(msg);
    finish(p, t, TASK_ERROR);
}

/* Runner callback: stdout goes to the task's live buffer as it is read. */
static void on_output(void *arg, int stream, const char *data, size_t len)
{
    if (stream == 1)
        live_append(arg, data, len);
}

/* One run of o in d, through the sandbox when there is one. Returns as
 * runner_run (r to be destroyed in every case), or -errno when the
 * sandbox could not be prepared. */
static int run_once(pool *p, runner_opts *o, const runner_limits *l, const sandbox_limits *sl,
                    taskdir *d, live *lv, runner_result *r)
{
    const sandbox *sb = p->cfg.sandbox;
    sandbox_run sr;
    int rc;
    for (int tries = 0;; tries++) {
        /* A run tried again (the task never started) reads from the start. */
        if (o->stdin_fd >= 0 && lseek(o->stdin_fd, 0, SEEK_SET) < 0) {
            memset(r, 0, sizeof *r);
            return -errno;
        }
        if (sb && (rc = sandbox_run_begin(sb, &d->cell, d->path, o, sl, &sr)) < 0) {
            memset(r, 0, sizeof *r);
            return rc;
        }
        rc = runner_run(o, l, lv ? on_output : NULL, lv, r);
        o->wrapper = NULL;
        o->cell = NULL;
        int e = sb ? sandbox_run_end(sb, &sr, r) : 0;
        if (e < 0)
            log_warn("could not remove the cgroup of %s: %s", d->path, strerror(-e));
        /* A cell that died before it could start the task (a run that
         * started ends in a result instead) is replaced once. */
        if (rc < 0 && sr.cell && !cell_usable(sr.cell) && tries == 0) {
            runner_result_destroy(r);
            continue;
        }
        return rc;
    }
}

/* run_once, tried again while the kernel refuses the program as busy:
 * another thread may still hold our freshly written file open for
 * writing in a child it is spawning (the fd is inherited until that child
 * execs). Returns as run_once. */
static int run_step(pool *p, runner_opts *o, const runner_limits *l, const sandbox_limits *sl,
                    taskdir *d, live *lv, runner_result *r)
{
    int rc = run_once(p, o, l, sl, d, lv, r);
    for (int tries = 0; rc == 0 && r->spawn_errno == ETXTBSY && tries < 50; tries++) {
        runner_result_destroy(r);
        nanosleep(&(struct timespec){0, 2000000}, NULL);
        rc = run_once(p, o, l, sl, d, lv, r);
    }
    return rc;
}

/* Empties the worker's cancel eventfd of what a cancel of its previous
 * task left; a shutdown's cancel stays. */
static void cancel_reset(pool *p, int fd)
{
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
        log_warn("cancel eventfd: %s", strerror(errno));
    /* pool_cancel sets the flag before it writes: either its write comes
     * after the read, or the flag is seen here. */
    if (atomic_load(&p->stopping)) {
        n = 1;
        if (write(fd, &n, sizeof n) < 0)
            log_warn("cancel eventfd: %s", strerror(errno));
    }
}

/* What every run of a prepared task shares: the program is written and
 * its environment built; what changes from run to run (a test's stdin and
 * arguments) is passed to run_program. */
typedef struct run_ctx {
    pool *p;
    taskdir *d;
    task *t;
    live *lv;
    const char *prog;     /* the program's path in d */
    char *const *prefix;  /* argv before the arguments */
    char **envp;          /* the task's environment */
    int stdin_fd;         /* the task's stdin, or -1 */
    runner_limits limits; /* the task's */
    sandbox_limits sl;    /* the task's, for the sandbox */
} run_ctx;

/* Runs the prepared program once with stdin in_fd (-1: none), arguments
 * args and limits l. Returns as runner_run (r to be destroyed in every
 * case), or -errno when the run could not be set up. */
static int run_program(const run_ctx *c, int in_fd, char **args, int argc, const runner_limits *l,
                       runner_result *r)
{
    task *t = c->t;
    char **argv = make_argv(c->prefix, args, argc);
    if (!argv) {
        memset(r, 0, sizeof *r);
        return -ENOMEM;
    }
    if (t->type == TASK_CALC && c->p->cfg.calc_image)
        argv[0] = (char *)c->prog;
    runner_opts o = {
        .path = argv[0],
        .argv = argv,
        .envp = c->envp,
        .cwd = c->d->path,
        .stdin_fd = in_fd,
        .sh_fallback = t->type == TASK_BIN,
        .capture_stdout = 1,
        .capture_stderr = 1,
        .warm_python =
            t->type == TASK_PYTHON && c->p->cfg.sandbox && c->p->cfg.sandbox->python_warm,
    };
    int rc = run_step(c->p, &o, l, &c->sl, c->d, c->lv, r);
    free(argv);
    if (r->note[0])
        log_warn("task %s: %s", t->id_str, r->note);
    return rc;
}

/* Runs t's program once per test, each a fresh run with the task's
 * limits, a test's own stdin and arguments (else the task's), and
 * publishes the end of t: SUCCESS when no test failed. */
static void run_tests(run_ctx *c)
{
    task *t = c->t;
    testset *ts = t->tests;
    /* 100 tests keeping --max-output each of stdout and stderr would make
     * a status document of 200 MiB by default: the tests of a task share
     * POOL_TESTS_OUTPUT_SHARE times --max-output per stream. */
    size_t max = c->limits.max_output;
    size_t room[2] = {max ? max * POOL_TESTS_OUTPUT_SHARE : SIZE_MAX,
                      max ? max * POOL_TESTS_OUTPUT_SHARE : SIZE_MAX};
    int rc = 0, stop = 0, timed_out = 0;
    int64_t cpu_us = 0;
    const char *why = NULL;
    for (int i = 0; i < ts->n && rc >= 0; i++) {
        if (stop) {
            rc = testset_add_skipped(ts, i);
            continue;
        }
        const testset_case *tc = &ts->cases[i];
        int own_fd = input_fd(tc->input, tc->input_len);
        if (own_fd < -1) {
            rc = own_fd;
            break;
        }
        runner_limits l = c->limits;
        /* Each stream is cut to its own share below; 0 is no limit to the
         * runner, so a spent share asks for one byte. */
        size_t want = room[0] > room[1] ? room[0] : room[1];
        if (max)
            l.max_output = want < max ? (want ? want : 1) : max;
        runner_result r;
        int64_t t0 = time_mono_us();
        rc = run_program(c, tc->input ? own_fd : c->stdin_fd, tc->args ? tc->args : t->args,
                         tc->args ? tc->argc : t->argc, &l, &r);
        int64_t run_us = time_mono_us() - t0;
        if (own_fd >= 0)
            close(own_fd);
        if (rc < 0) {
            runner_result_destroy(&r);
            break;
        }
        for (int s = 0; s < 2; s++) {
            buf *b = s ? &r.err : &r.out;
            if (b->len > room[s]) {
                b->len = room[s];
                *(s ? &r.err_truncated : &r.out_truncated) = 1;
            }
            room[s] -= b->len;
        }
        testset_outcome o = {
            .out = r.out.data,
            .err = r.err.data,
            .out_len = r.out.len,
            .err_len = r.err.len,
            .out_total = r.out_total,
            .err_total = r.err_total,
            .out_truncated = r.out_truncated,
            .err_truncated = r.err_truncated,
            .exited = r.exited && !r.spawn_errno,
            .exit_code = r.exit_code,
            .term_signal = r.term_signal,
            .timed_out = r.timed_out,
            .limit = r.limit != RUNNER_LIMIT_NONE ? runner_limit_name(r.limit) : NULL,
            .run_us = run_us,
            .cpu_us = r.cpu_us,
            .memory_peak = r.memory_peak > 0 ? r.memory_peak : -1,
        };
        int failed = testset_add_result(ts, i, &o);
        cpu_us += r.cpu_us;
        timed_out |= r.timed_out;
        if (r.cancelled)
            why = "cancelled";
        runner_result_destroy(&r);
        rc = failed < 0 ? failed : 0;
        stop = why || (failed > 0 && ts->stop_on_failure);
    }
    if (rc == 0)
        rc = testset_end(ts);
    if (rc < 0) {
        ts->ended = 0; /* half a document is none */
        fail_task(c->p, t, "could not run the tests", -rc);
        return;
    }
    t->cpu_us = cpu_us;
    t->timed_out = timed_out;
    /* As a single run: a cancel that came as the last test ended, or a
     * shutdown's, is no cancel of the task. */
    int asked = tasks_arm_cancel(c->p->tk, t, -1);
    if (asked && why) {
        t->cancelled = 1;
        t->error = strdup("cancelled");
        finish(c->p, t, TASK_ERROR);
        return;
    }
    if (ts->failed == 0 && !why) {
        finish(c->p, t, TASK_SUCCESS);
        return;
    }
    char msg[160];
    int skipped = ts->n - ts->ran;
    if (why)
        snprintf(msg, sizeof msg, "%s after %d of %d tests", why, ts->ran, ts->n);
    else if (skipped)
        snprintf(msg, sizeof msg, "%d of %d tests failed, %d skipped", ts->failed, ts->n, skipped);
    else
        snprintf(msg, sizeof msg, "%d of %d tests failed", ts->failed, ts->n);
    t->error = strdup(msg);
    finish(c->p, t, TASK_ERROR);
}

/* The line of what a compiler said that goes into the task's error: the
 * first that names an error (gcc starts with "In function 'main':"),
 * else the first that is not empty. */
static void first_line(const char *s, size_t len, char *out, size_t size)
{
    const char *pick = NULL;
    size_t pick_len = 0;
    for (size_t i = 0; i < len;) {
        size_t n = 0;
        while (i + n < len && s[i + n] != '\n' && s[i + n] != '\r')
            n++;
        if (n && !pick) {
            pick = s + i;
            pick_len = n;
        }
        if (n && memmem(s + i, n, "error", 5)) {
            pick = s + i;
            pick_len = n;
            break;
        }
        i += n + 1;
    }
    snprintf(out, size, "%.*s", (int)(pick_len < 200 ? pick_len : 200), pick ? pick : "");
}

/* Prepares t for its run: the compile step of its language, in d and the
 * task's sandbox, with the task's environment, no stdin and the limit of
 * --compile-timeout; the files it makes stay for the run. Fills t's
 * compile_* fields. The task's own sandbox limits (memory, processes...)
 * hold for the compile too. Returns 0 when the program may run, else -1
 * with t's error set (the caller ends it as ERROR), or -ECANCELED when the
 * compile was cut by a cancel (t's error "cancelled"). */
static int prepare_task(pool *p, taskdir *d, task *t, const lang *lg, char **env,
                        const sandbox_limits *sl)
{
    if (!lg->compile)
        return 0;
    runner_opts o = {
        .path = lg->compile[0],
        .argv = lg->compile,
        .envp = env,
        .cwd = d->path,
        .stdin_fd = -1,
        .capture_stdout = 1,
        .capture_stderr = 1,
        .save_files = 1,
    };
    runner_limits l = {
        .timeout_us = (int64_t)(p->cfg.compile_timeout * 1e6),
        .max_output = p->cfg.max_output,
        .cancel_fd = d->cancel_fd,
    };
    runner_result r;
    int rc = run_step(p, &o, &l, sl, d, NULL, &r);
    if (r.note[0])
        log_warn("task %s: compile: %s", t->id_str, r.note);
    char why[320];
    if (rc < 0) {
        snprintf(why, sizeof why, "could not compile: %s", strerror(-rc));
        runner_result_destroy(&r);
        t->error = strdup(why);
        return -1;
    }
    t->compiled = 1;
    t->compile_exited = r.exited;
    t->compile_exit_code = r.exit_code;
    /* Compilers write their diagnostics to stderr, build tools to stdout:
     * one text, in that order. */
    if (buf_append(&r.out, r.err.data ? r.err.data : "", r.err.len) == 0)
        t->compile_out = buf_steal(&r.out, &t->compile_out_len);
    int ok = r.exited && r.exit_code == 0 && !r.spawn_errno;
    if (!ok && r.cancelled) {
        t->error = strdup("cancelled");
        runner_result_destroy(&r);
        return -ECANCELED;
    }
    if (!ok) {
        char line[256];
        if (r.exited && !r.spawn_errno && t->compile_out_len)
            first_line(t->compile_out, t->compile_out_len, line, sizeof line);
        else
            runner_describe(&r, &l, line, sizeof line);
        snprintf(why, sizeof why, "compilation failed: %s", line);
        t->error = strdup(why);
    }
    runner_result_destroy(&r);
    return ok ? 0 : -1;
}

static void run_task(pool *p, taskdir *d, task *t)
{
    char prog[4200];
    const char *dir = d->path;
    /* Nothing stale is left once the previous task was disarmed. */
    cancel_reset(p, d->cancel_fd);
    if (tasks_arm_cancel(p->tk, t, d->cancel_fd)) {
        tasks_arm_cancel(p->tk, t, -1);
        tasks_end_cancelled(p->tk, t);
        return;
    }
    /* The task's own limits where it asked (request_limits.h). */
    const task_limits *tl = &t->limits;
    size_t max_output = (size_t)task_limit_pick(tl->output, (int64_t)p->cfg.max_output);
    live *lv = live_new(max_output);
    t->began_mono_us = time_mono_us();
    tasks_started(p->tk, t, lv);
    /* At debug, as the queueing line: the end line at info is the one
     * per task that operators keep (see tasks_submit). */
    log_debug("task %s %s RUNNING", t->id_str, task_type_label(t));
    /* Tasks accepted before (restored from the journal) fail closed too. */
    if (p->cfg.refuse) {
        t->error = strdup(p->cfg.refuse);
        finish(p, t, TASK_ERROR);
        goto done;
    }

    const lang *lg = NULL;
    if (t->type == TASK_LANG && !(lg = lang_find(p->cfg.langs, t->lang))) {
        /* Restored from the journal by a server without the language. */
        fail_task(p, t, "the language is not offered by this server", ENOENT);
        goto done;
    }
    int rc = taskdir_ready(p, d);
    if (rc < 0) {
        fail_task(p, t, "could not create the task directory", -rc);
        goto done;
    }
    const char *fname = t->type == TASK_PYTHON ? "main.py"
                        : t->type == TASK_BIN  ? "program"
                        : lg                   ? lg->source
                                               : p->cfg.calc_name;
    snprintf(prog, sizeof prog, "%s/%s", dir, fname ? fname : "");
    if (t->type != TASK_CALC)
        rc = taskdir_program(d, fname, t->file, t->file_len, t->type == TASK_BIN ? 0700 : 0600);
    else
        rc = taskdir_program(d, fname, p->cfg.calc_image, p->cfg.calc_len, 0700);
    int frc = rc < 0 ? 0 : request_files_write(dirfd(d->dh), t->files, t->nfiles);
    int in_fd = rc < 0 || frc < 0 ? -1 : input_fd(t->input, t->input_len);
    task_drop_program(t);
    if (rc < 0 || frc < 0) {
        fail_task(p, t, rc < 0 ? "could not write the program" : "could not write the files",
                  rc < 0 ? -rc : -frc);
        goto cleanup_dir;
    }
    if (in_fd < -1) {
        fail_task(p, t, "could not prepare stdin", -in_fd);
        goto cleanup_dir;
    }
    if (t->type == TASK_CALC && !p->calc_argv) {
        /* Restored from the journal by a server started without it. */
        fail_task(p, t, "no --calc-command on this server", EINVAL);
        goto cleanup_input;
    }

    char home[4200];
    snprintf(home, sizeof home, "HOME=%s", dir);
    char tmpdir[4200];
    snprintf(tmpdir, sizeof tmpdir, "TMPDIR=%s", dir);
    char *env[POOL_ENV_MAX + 1];
    make_env(env, t, home, tmpdir);
    char *py_prefix[] = {(char *)p->cfg.python, "main.py", NULL};
    char *bin_prefix[] = {prog, NULL};
    run_ctx c = {
        .p = p,
        .d = d,
        .t = t,
        .lv = lv,
        .prog = prog,
        .prefix = t->type == TASK_PYTHON ? py_prefix
                  : t->type == TASK_BIN  ? bin_prefix
                  : lg                   ? lg->run
                                         : p->calc_argv,
        .envp = env,
        .stdin_fd = in_fd,
        .limits =
            {
                .timeout_us =
                    (int64_t)((tl->timeout > 0 ? tl->timeout : p->cfg.task_timeout) * 1e6),
                .max_output = max_output,
                .kill_grace_us = 0,
                .cancel_fd = d->cancel_fd,
            },
        .sl = {tl->memory, tl->cpu, tl->procs, tl->fsize, tl->disk},
    };
    int prc = lg ? prepare_task(p, d, t, lg, env, &c.sl) : 0;
    if (prc < 0) {
        /* As for a run: not a shutdown's cancel. */
        if (prc == -ECANCELED)
            t->cancelled = tasks_arm_cancel(p->tk, t, -1);
        finish(p, t, TASK_ERROR);
        goto cleanup_input;
    }
    if (t->tests) {
        run_tests(&c);
        goto cleanup_input;
    }
    runner_result r;
    rc = run_program(&c, in_fd, t->args, t->argc, &c.limits, &r);
    if (rc < 0) {
        runner_result_destroy(&r);
        fail_task(p, t, "could not run the task", -rc);
        goto cleanup_input;
    }
    int asked = tasks_arm_cancel(p->tk, t, -1);
    enum task_status st = take_result(t, &r, &c.limits);
    /* Not a shutdown's cancel, nor a cancel that came as the task ended. */
    t->cancelled = asked && r.cancelled;
    runner_result_destroy(&r);
    finish(p, t, st);

cleanup_input:
    if (in_fd >= 0)
        close(in_fd);
cleanup_dir:
    taskdir_recycle(d, fname);
done:
    tasks_arm_cancel(p->tk, t, -1);
    /* A finished task keeps its output, not what its client sent. */
    task_drop_program(t);
    task_drop_args(t);
    live_unref(lv);
}

static void *worker_main(void *arg)
{
    pool *p = arg;
    int i = atomic_fetch_add(&p->next_worker, 1);
    taskdir d = {.dh = NULL, .cell = NULL, .cancel_fd = p->cancel_fds[i]};
    task *t;
    while ((t = tasks_next(p->tk))) {
        run_task(p, &d, t);
        task_unref(t);
    }
    taskdir_drop(&d);
    return NULL;
}

int pool_start(pool *p, const pool_config *cfg, tasks *tk)
{
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    p->tk = tk;
    int rc = -ENOMEM, nfds = 0;
    atomic_init(&p->next_worker, 0);
    atomic_init(&p->stopping, 0);
    p->cancel_fds = calloc((size_t)cfg->workers, sizeof *p->cancel_fds);
    if (!p->cancel_fds)
        goto fail_fds;
    for (; nfds < cfg->workers; nfds++) {
        if ((p->cancel_fds[nfds] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
            rc = -errno;
            goto fail_fds;
        }
    }
    if (cfg->calc_command) {
        int argc;
        const char *why = NULL;
        rc = shsplit(cfg->calc_command, strlen(cfg->calc_command), &p->calc_argv, &argc, &why);
        if (rc == 0 && argc == 0)
            rc = -EINVAL;
        if (rc < 0)
            goto fail_calc;
    }
    p->threads = calloc((size_t)cfg->workers, sizeof *p->threads);
    if (!p->threads) {
        rc = -ENOMEM;
        goto fail_threads;
    }
    for (int i = 0; i < cfg->workers; i++) {
        rc = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (rc) {
            rc = -rc;
            goto fail_create;
        }
        p->started++;
    }
    return 0;

fail_create:
    tasks_stop_queue(tk);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
fail_threads:
    shsplit_free(p->calc_argv);
fail_calc:
fail_fds:
    while (nfds-- > 0)
        close(p->cancel_fds[nfds]);
    free(p->cancel_fds);
    return rc;
}

void pool_cancel(pool *p)
{
    atomic_store(&p->stopping, 1);
    for (int i = 0; i < p->cfg.workers; i++) {
        uint64_t one = 1;
        ssize_t n = write(p->cancel_fds[i], &one, sizeof one);
        (void)n;
    }
}

void pool_cancel_reset(pool *p)
{
    atomic_store(&p->stopping, 0);
    for (int i = 0; i < p->cfg.workers; i++) {
        uint64_t n;
        /* Non-blocking: reading an eventfd at zero fails with EAGAIN. */
        ssize_t r = read(p->cancel_fds[i], &n, sizeof n);
        (void)r;
    }
}

void pool_join(pool *p)
{
    for (int i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    shsplit_free(p->calc_argv);
    for (int i = 0; i < p->cfg.workers; i++)
        close(p->cancel_fds[i]);
    free(p->cancel_fds);
    memset(p, 0, sizeof *p);
}
