/* reach: see reach.h. */
#include "reach.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cell.h"
#include "log.h"
#include "pool.h"
#include "runner.h"
#include "shsplit.h"

#define MAX_CHECKS 24

/* How a task needs a path. */
enum need {
    NEED_DIR,     /* to reach it by its absolute path (its own directory) */
    NEED_EXEC,    /* to execute it */
    NEED_READ,    /* to read it */
    NEED_COMMAND, /* to find it in its PATH */
};

typedef struct check {
    enum need need;
    const char *path;
    int ok; /* set by the probe */
} check;

/* One probe task tries every check as a task would, and prints 1 or 0 for
 * each, in order. */
static const char probe_script[] = "for a; do p=${a#?:}; case $a in "
                                   "d:*) (cd \"$p\") ;; "
                                   "x:*) [ -f \"$p\" ] && [ -x \"$p\" ] ;; "
                                   "r:*) [ -r \"$p\" ] ;; "
                                   "c:*) command -v \"$p\" ;; "
                                   "esac >/dev/null 2>&1 && printf 1 || printf 0; done";

/* Runs the probe in a fresh directory of the work directory, whose own
 * absolute path is the first check. Returns 0 (each ok set), or -1 with
 * the reason in err. */
static int probe(const sandbox *sb, const char *work_dir, check *ck, int n, char *err, size_t errsz)
{
    static const char flag[] = {
        [NEED_DIR] = 'd', [NEED_EXEC] = 'x', [NEED_READ] = 'r', [NEED_COMMAND] = 'c'};
    char dir[PATH_MAX];
    char *argv[MAX_CHECKS + 5] = {"sh", "-c", (char *)probe_script, "sh"};
    int argc = 4, rc = -1;
    snprintf(dir, sizeof dir, "%s/reach-XXXXXX", work_dir);
    if (!mkdtemp(dir)) {
        snprintf(err, errsz, "cannot make a directory in %s: %s", work_dir, strerror(errno));
        return -1;
    }
    ck[0].path = dir;
    for (int i = 0; i < n; i++)
        if (asprintf(&argv[argc++], "%c:%s", flag[ck[i].need], ck[i].path) < 0) {
            argv[--argc] = NULL;
            snprintf(err, errsz, "out of memory");
            goto fail_args;
        }
    char *env[] = {"PATH=" POOL_TASK_PATH, NULL};
    runner_opts o = {.path = "/bin/sh",
                     .argv = argv,
                     .envp = env,
                     .cwd = dir,
                     .stdin_fd = -1,
                     .capture_stdout = 1,
                     .capture_stderr = 1};
    /* As a task runs: in a cell of its own where the sandbox has cells. */
    sandbox_run sr;
    cell *c = NULL;
    if ((rc = sandbox_run_begin(sb, &c, dir, &o, NULL, &sr)) < 0) {
        snprintf(err, errsz, "cannot prepare the probe task: %s", strerror(-rc));
        rc = -1;
        goto fail_args;
    }
    runner_limits l = {.timeout_us = 10 * 1000000, .max_output = 4096, .cancel_fd = -1};
    runner_result r;
    rc = runner_run(&o, &l, NULL, NULL, &r);
    sandbox_run_end(sb, &sr, &r);
    cell_free(c);
    if (rc == 0 && r.exited && r.exit_code == 0 && r.out.len == (size_t)n) {
        for (int i = 0; i < n; i++)
            ck[i].ok = r.out.data[i] == '1';
    } else {
        char how[256];
        snprintf(err, errsz, "the probe task %s",
                 rc < 0 ? strerror(-rc) : runner_describe(&r, &l, how, sizeof how));
        rc = -1;
    }
    runner_result_destroy(&r);
fail_args:
    for (int i = 4; i < argc; i++)
        free(argv[i]);
    rmdir(dir);
    ck[0].path = NULL;
    return rc;
}

/* Whether the tasks' user may do `mask` (4 read, 1 search or execute) on
 * st, by its mode bits: the user has no supplementary groups. */
static int allowed(const struct stat *st, uid_t uid, gid_t gid, int mask)
{
    int bits = st->st_uid == uid   ? (st->st_mode >> 6)
               : st->st_gid == gid ? (st->st_mode >> 3)
                                   : st->st_mode;
    return (bits & mask) == mask;
}

/* 1 if path is dir or below it. */
static int under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Finds the first directory on the way to path (written over), or path
 * itself, whose mode keeps the tasks' user from doing mask, and says so in
 * out. Returns 1 if it found one. */
static int closed_on_the_way(const sandbox *sb, char *path, int mask, char *out, size_t size)
{
    uid_t uid = sb->uid == (uid_t)-1 ? getuid() : sb->uid;
    gid_t gid = sb->gid == (gid_t)-1 ? getgid() : sb->gid;
    struct stat st;
    for (char *p = path + 1;; p++) {
        if (*p && *p != '/')
            continue;
        char c = *p;
        *p = '\0';
        int last = c == '\0';
        if (stat(path, &st) == 0 && !allowed(&st, uid, gid, last ? mask : 1)) {
            struct passwd *pw = getpwuid(st.st_uid);
            snprintf(out, size, "%.200s is mode %04o, owner %.32s", path,
                     (unsigned)(st.st_mode & 07777), pw ? pw->pw_name : "?");
            return 1;
        }
        if (last)
            return 0;
        *p = c;
    }
}

/* Why the tasks cannot reach path, as far as the server can tell, into
 * out: a private directory, a hidden one (unless the sandbox puts it back:
 * in_view 0), or the first directory on the way (or the file itself)
 * whose mode keeps them out. */
static void explain(const sandbox *sb, const char *path, int mask, int in_view, char *out,
                    size_t size)
{
    static const char *const private_dirs[] = {"/tmp", "/var/tmp", "/dev/shm"};
    char real[PATH_MAX];
    if (path[0] != '/') {
        snprintf(out, size, "a relative path, and tasks start in a directory of their own");
        return;
    }
    if (!realpath(path, real)) {
        snprintf(out, size, "%s", strerror(errno));
        return;
    }
    for (size_t i = 0; in_view && sb->ns && i < sizeof private_dirs / sizeof private_dirs[0]; i++)
        if (under(real, private_dirs[i])) {
            snprintf(out, size, "tasks have a %s of their own", private_dirs[i]);
            return;
        }
    for (size_t i = 0; in_view && sb->ns && sb->hide && sb->hide[i]; i++)
        if (under(real, sb->hide[i])) {
            snprintf(out, size, "%.200s is hidden from tasks", sb->hide[i]);
            return;
        }
    /* The way as written first: a symlink's own directory may be the
     * closed one. */
    char given[PATH_MAX];
    snprintf(given, sizeof given, "%s", path);
    if (closed_on_the_way(sb, given, mask, out, size) ||
        closed_on_the_way(sb, real, mask, out, size))
        return;
    snprintf(out, size, "it cannot be %s in the sandbox", mask & 4 ? "read" : "executed");
}

/* Reads the program at path into r. Returns 0, or -1 with why. */
static int load_copy(reach *r, const char *path, char *why, size_t whysz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(why, whysz, "%s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
        snprintf(why, whysz, "it is not an executable file");
        goto fail;
    }
    if (st.st_size > REACH_MAX_COPY) {
        snprintf(why, whysz, "it is larger than %d MiB", REACH_MAX_COPY >> 20);
        goto fail;
    }
    const char *slash = strrchr(path, '/');
    r->calc_name = strdup(slash ? slash + 1 : path);
    r->calc_image = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (!r->calc_name || !r->calc_image) {
        snprintf(why, whysz, "out of memory");
        goto fail;
    }
    size_t off = 0;
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, r->calc_image + off, (size_t)st.st_size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, whysz, "%s", n < 0 ? strerror(errno) : "it shrank while read");
            goto fail;
        }
        off += (size_t)n;
    }
    r->calc_len = off;
    close(fd);
    return 0;

fail:
    if (fd >= 0)
        close(fd);
    reach_destroy(r);
    return -1;
}

int reach_check(reach *r, const sandbox *sb, const config *c, char *err, size_t errsz)
{
    memset(r, 0, sizeof *r);
    if (!sb)
        return 0;
    char **calc = NULL;
    int calc_argc = 0, n = 0, rc = -1;
    const char *split_err = NULL;
    if (c->calc_command[0] &&
        shsplit(c->calc_command, strlen(c->calc_command), &calc, &calc_argc, &split_err) < 0)
        return 0; /* refused by the option table, or out of memory: the pool fails then */
    check ck[MAX_CHECKS];
    ck[n++] = (check){NEED_DIR, NULL, 0};
    int py = n;
    ck[n++] = (check){strchr(c->python, '/') ? NEED_EXEC : NEED_COMMAND, c->python, 0};
    int prog = calc_argc > 0 ? n : -1;
    if (calc_argc > 0)
        ck[n++] = (check){strchr(calc[0], '/') ? NEED_EXEC : NEED_COMMAND, calc[0], 0};
    /* Files named in the arguments (a script given to an interpreter). */
    int first_arg = n;
    struct stat st;
    for (int i = 1; i < calc_argc && n < MAX_CHECKS; i++)
        if (calc[i][0] == '/' && stat(calc[i], &st) == 0)
            ck[n++] = (check){NEED_READ, calc[i], 0};
    if (probe(sb, c->work_dir, ck, n, err, errsz) < 0)
        goto out;

    char why[300];
    if (!ck[0].ok) {
        /* The sandbox makes the work directory itself reachable (its
         * cover, or mode 0711): only the way to it can be closed. */
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/..", c->work_dir);
        explain(sb, dir, 1, 0, why, sizeof why);
        snprintf(err, errsz,
                 "work directory %s: tasks, which run as %s, cannot reach their directories "
                 "in it (%s); give a --work-dir that %s can reach",
                 c->work_dir, sb->user, why, sb->user);
        goto out;
    }
    if (!ck[py].ok && ck[py].need == NEED_EXEC) {
        explain(sb, c->python, 1, 1, why, sizeof why);
        snprintf(err, errsz,
                 "--python %s: tasks, which run as %s, cannot execute it (%s); install it "
                 "where %s can (under /usr or /opt), or give another --python",
                 c->python, sb->user, why, sb->user);
        goto out;
    }
    if (!ck[py].ok)
        snprintf(r->warning, sizeof r->warning,
                 "--python %s: no such program in the tasks' PATH (%s): python tasks will fail",
                 c->python, POOL_TASK_PATH);
    if (prog >= 0 && !ck[prog].ok && ck[prog].need == NEED_COMMAND) {
        snprintf(err, errsz,
                 "--calc-command: no program %s in the tasks' PATH (%s); give its absolute path",
                 calc[0], POOL_TASK_PATH);
        goto out;
    }
    for (int i = first_arg; i < n; i++)
        if (!ck[i].ok) {
            explain(sb, ck[i].path, 4, 1, why, sizeof why);
            snprintf(err, errsz,
                     "--calc-command: tasks, which run as %s, cannot read %s (%s); put it where "
                     "%s can read it, or make it the program itself (a script with a #! line, "
                     "which each calculation gets a copy of)",
                     sb->user, ck[i].path, why, sb->user);
            goto out;
        }
    if (prog >= 0 && !ck[prog].ok && stat(calc[0], &st) < 0) {
        snprintf(err, errsz, "--calc-command %s: %s", calc[0], strerror(errno));
        goto out;
    }
    if (prog >= 0 && !ck[prog].ok) {
        char copy_why[128];
        explain(sb, calc[0], 1, 1, why, sizeof why);
        if (load_copy(r, calc[0], copy_why, sizeof copy_why) < 0) {
            snprintf(err, errsz,
                     "--calc-command %s: tasks, which run as %s, cannot execute it (%s), and "
                     "it cannot be copied for them: %s; put it where %s can execute it",
                     calc[0], sb->user, why, copy_why, sb->user);
            goto out;
        }
        snprintf(r->note, sizeof r->note,
                 "--calc-command %s: tasks, which run as %s, cannot execute it where it is "
                 "(%s): each calculation gets a copy of it (%zu bytes, read at start-up)",
                 calc[0], sb->user, why, r->calc_len);
    }
    rc = 0;
out:
    shsplit_free(calc);
    if (rc < 0)
        reach_destroy(r);
    return rc;
}

void reach_log(const reach *r)
{
    if (r->note[0])
        log_notice("%s", r->note);
    if (r->warning[0])
        log_warn("%s", r->warning);
}

void reach_destroy(reach *r)
{
    free(r->calc_image);
    free(r->calc_name);
    r->calc_image = NULL;
    r->calc_name = NULL;
    r->calc_len = 0;
}
