/* tsexec_task: see tsexec_task.h. Everything here runs between clone and
 * exec, on the parent's memory: system calls and stack work only. */
#include "tsexec_task.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sanitized.h"
#include "tsexec_lock.h"

/* One line on the report fd. */
__attribute__((format(printf, 2, 3))) static void report(int fd, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || fd < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
}

/* Reports a failed step (errno-style err > 0) and gives up. */
__attribute__((noreturn)) static void fail(const tsexec_task *t, const char *step, int err)
{
    report(t->report_fd, "fail %s: %s", step, strerror(err));
    _exit(127);
}

/* execve, then /bin/sh FILE ARGS for a file the kernel refused as
 * ENOEXEC (as execvp does) when allowed. Returns only on failure. */
static void exec_file(const tsexec_task *t, const char *file)
{
    execve(file, t->argv, t->envp);
    if (errno != ENOEXEC || !t->sh_argv)
        return;
    t->sh_argv[0] = "/bin/sh";
    t->sh_argv[1] = (char *)file;
    size_t i = 1;
    for (; t->argv[0] && t->argv[i]; i++)
        t->sh_argv[i + 1] = t->argv[i];
    t->sh_argv[i + 1] = NULL;
    execve("/bin/sh", t->sh_argv, t->envp);
    errno = ENOEXEC;
}

/* PATH of the program's own environment, as execvp would use it. */
static const char *env_path(char *const *envp)
{
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], "PATH=", 5) == 0)
            return envp[i] + 5;
    return "/bin:/usr/bin";
}

/* Runs the program: looked up in its PATH when it has no '/'. */
static void exec_program(const tsexec_task *t)
{
    if (strchr(t->path, '/')) {
        exec_file(t, t->path);
        return;
    }
    int err = ENOENT;
    for (const char *p = env_path(t->envp);;) {
        const char *end = strchrnul(p, ':');
        char cand[PATH_MAX];
        int dl = (int)(end - p);
        snprintf(cand, sizeof cand, "%.*s/%s", dl ? dl : 1, dl ? p : ".", t->path);
        exec_file(t, cand);
        if (errno == EACCES)
            err = EACCES; /* as execvp: a later ENOENT does not hide it */
        else if (errno != ENOENT && errno != ENOTDIR)
            return;
        if (!*end)
            break;
        p = end + 1;
    }
    errno = err;
}

/* Marks every fd from first up close-on-exec (the report fd must stay
 * usable until the exec). */
static int cloexec_from(int first)
{
    if (close_range((unsigned)first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return 0;
    if (errno != ENOSYS && errno != EINVAL) /* kernels before 5.11 */
        return -1;
    for (int fd = first; fd < 65536; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    return 0;
}

/* The task process, from clone to exec. */
__attribute__((noreturn)) static void run_task(const tsexec_task *t)
{
    const char *what;
    int rc;
    /* Its own session: a task signalling its process group (kill(0))
     * reaches its own processes only, and SIGCONT, which the kernel lets
     * through to any process of the sender's session whatever its user,
     * reaches none of the cell's (init, the warm Python server). A process
     * group alone would save a scheduler autogroup and a context switch
     * per task (runner_proc.c), but not that. */
    if (setsid() < 0)
        fail(t, "setsid", errno);
    for (int i = 0; i < 3; i++)
        if (t->fd[i] >= 0 && dup2(t->fd[i], i) < 0)
            fail(t, "dup2", errno);
    for (int i = 0; i < t->nkeep; i++)
        if (dup2(t->keep_fds[i], 3 + i) < 0)
            fail(t, "dup2", errno);
    if (cloexec_from(3 + t->nkeep) < 0)
        fail(t, "close fds", errno);
    /* While still root: the files were opened before the cell's file
     * system became read-only. */
    for (int i = 0; i < t->ncgroup; i++)
        if (pwrite(t->cgroup_fds[i], "0", 1, 0) < 0)
            fail(t, "cgroup", errno);
    if (chdir(t->dir) < 0)
        fail(t, "chdir", errno);
    if ((rc = tsexec_lock_rlimits(t->lim, &what)) < 0) {
        char step[32];
        snprintf(step, sizeof step, "rlimit %s", what);
        fail(t, step, -rc);
    }
    if (t->uid != (uid_t)-1 && (rc = tsexec_lock_user(t->uid, t->gid)) < 0)
        fail(t, "uid", -rc);
    if (t->caps && (rc = tsexec_lock_caps(*t->caps)) < 0)
        fail(t, "capabilities", -rc);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail(t, "no_new_privs", errno);
    if (t->seccomp && (rc = tsexec_lock_seccomp()) < 0)
        fail(t, "seccomp", -rc);
    /* The program starts with no signal blocked (a cell's init blocks
     * SIGCHLD for its signalfd; exec keeps the mask). */
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        fail(t, "signal mask", errno);
    /* Last: from here on an allocation may fail (it does at once under
     * AddressSanitizer), and nothing below allocates. */
    if ((rc = tsexec_lock_address_space(t->lim->as)) < 0)
        fail(t, "rlimit as", -rc);
    exec_program(t);
    report(t->report_fd, "exec %d", errno);
    _exit(127);
}

#ifndef TS_SANITIZED
/* The task's stack until it execs; untouched pages cost nothing. */
static char task_stack[256 * 1024] __attribute__((aligned(64)));

static int task_main(void *arg)
{
    run_task(arg);
}
#endif

pid_t tsexec_task_start(const tsexec_task *t)
{
    /* A sanitizer's run-time cannot share its state with a child on the
     * same memory, so sanitized builds fork. */
#ifdef TS_SANITIZED
    pid_t pid = fork();
    if (pid == 0)
        run_task(t);
    return pid;
#else
    return clone(task_main, task_stack + sizeof task_stack, CLONE_VM | CLONE_VFORK | SIGCHLD,
                 (void *)t);
#endif
}

void tsexec_task_limit(const tsexec_limits *lim, int64_t disk, const tsexec_fs *fs, int st,
                       const struct rusage *ru, char *line, size_t size)
{
    int64_t cpu_s = ru->ru_utime.tv_sec + ru->ru_stime.tv_sec;
    int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    line[0] = '\0';
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return;
    if (lim->cpu > 0 && (sig == SIGXCPU || (sig == SIGKILL && cpu_s >= lim->cpu)))
        snprintf(line, size, "limit cpu %lld", (long long)lim->cpu);
    /* Programs that ignore SIGXFSZ (Python does) or SIGXCPU see EFBIG or
     * ENOSPC, and only their own error message says so: look at what they
     * left on their private disk. */
    else if (lim->fsize > 0 && (sig == SIGXFSZ || tsexec_fs_has_file_of(fs, lim->fsize)))
        snprintf(line, size, "limit fsize %lld", (long long)lim->fsize);
    else if (disk > 0 && tsexec_fs_full(fs))
        snprintf(line, size, "limit disk %lld", (long long)disk);
}
