/* runner_proc: see runner_proc.h. Starting, signalling and reaping one
 * process; the child side runs between vfork and exec. */
#include "runner_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cell.h"
#include "sanitized.h"
#include "timefmt.h"

extern char **environ;

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Moves fd to a number >= 3 if it is 0..2 (the caller may run with its
 * standard fds closed): the child's dup2 actions onto 0..2 must never
 * overwrite a source that a later action still needs. */
static int raise_fd(int *fd)
{
    if (*fd >= 3)
        return 0;
    int nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (nfd < 0)
        return -errno;
    close(*fd);
    *fd = nfd;
    return 0;
}

/* A pipe whose both ends are close-on-exec (other threads spawn at the same
 * time; a write end leaking into their children would keep this pipe open
 * for as long as they live) and whose read end is non-blocking. The write
 * end stays blocking: the child shares its file description. */
static int make_pipe(int fds[2])
{
    int err;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    if ((err = raise_fd(&fds[0])) < 0 || (err = raise_fd(&fds[1])) < 0)
        goto fail_fcntl;
    if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
        err = -errno;
        goto fail_fcntl;
    }
    return 0;

fail_fcntl:
    close_fd(&fds[0]);
    close_fd(&fds[1]);
    return err;
}

/* Finds `name` in the caller's PATH as posix_spawnp does. Returns a
 * malloc'ed path or NULL. */
static char *path_lookup(const char *name)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        int dlen = (int)(end - p);
        char *cand; /* an empty entry means the current directory */
        if (asprintf(&cand, "%.*s/%s", dlen ? dlen : 1, dlen ? p : ".", name) < 0)
            return NULL;
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            return cand;
        free(cand);
        if (!*end)
            return NULL;
        p = end;
    }
}

/* What the child needs, all prepared by the parent: the child of vfork
 * runs on the parent's memory and stack, so it must not allocate, take a
 * lock or do anything but plain system calls. */
typedef struct child_plan {
    const char *path; /* with a '/' */
    char *const *argv;
    char *const *envp;
    const char *cwd;        /* or NULL */
    int in_fd;              /* becomes fd 0; -1: /dev/null */
    int out_fd;             /* becomes fd 1; -1: /dev/null */
    int err_fd;             /* becomes fd 2; -1: /dev/null */
    int wrap_fd;            /* becomes fd 3 (a wrapper's report pipe, or fd3); -1: none */
    int exec_err_fd;        /* >= 4, close-on-exec: errno if the exec fails; or -1 */
    volatile int *exec_err; /* or, with exec_err_fd -1: where that errno goes */
    int own_session;        /* 1: setsid; 0: setpgid(0, 0) (see session_needed) */
    const sigset_t *reset;  /* the signals to set to SIG_DFL (see reset_signals) */
} child_plan;

/* The signals a child sets back to SIG_DFL before it unblocks signals and
 * execs: those we ignore or catch, as /proc/self/status lists them at the
 * first spawn (runner_proc.h), and always the ones a caller is likely to
 * set later (civetweb ignores SIGPIPE when it starts). Setting all 62 in
 * every child cost 27-31 us a spawn here (62 rt_sigaction calls; the
 * child's 58 of ~113 system calls a task with --sandbox off), as long as
 * the rest of the server's own work on a task's start. */
static sigset_t reset_set;
static pthread_once_t reset_once = PTHREAD_ONCE_INIT;

static void reset_set_make(void)
{
    static const int always[] = {SIGPIPE, SIGINT,  SIGTERM, SIGHUP,  SIGQUIT, SIGCHLD, SIGUSR1,
                                 SIGUSR2, SIGALRM, SIGTSTP, SIGTTIN, SIGTTOU, SIGXFSZ, SIGXCPU};
    sigemptyset(&reset_set);
    for (size_t i = 0; i < sizeof always / sizeof *always; i++)
        sigaddset(&reset_set, always[i]);
    unsigned long long ign = 0, cgt = 0;
    int found = 0;
    FILE *f = fopen("/proc/self/status", "re");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            found +=
                sscanf(line, "SigIgn: %llx", &ign) == 1 || sscanf(line, "SigCgt: %llx", &cgt) == 1;
        fclose(f);
    }
    if (found != 2) { /* no /proc: all of them */
        ign = ~0ULL;
        cgt = 0;
    }
    for (int sig = 1; sig < NSIG && sig <= 64; sig++)
        if (((ign | cgt) >> (sig - 1)) & 1)
            sigaddset(&reset_set, sig); /* glibc refuses its own, harmlessly */
}

/* The set for child_plan.reset. */
static const sigset_t *reset_signals(void)
{
    pthread_once(&reset_once, reset_set_make);
    return &reset_set;
}

/* Whether a child must get a session of its own rather than only a process
 * group of its own. Both make its pid its group id, which is all that
 * killing the run needs (runner_kill signals the group), and keep a task's
 * kill(0) within its own processes. A session also parts it from the
 * caller's controlling terminal, if the caller has one; if it has none, a
 * child in the caller's session can never get one (only a session leader
 * acquires a terminal), so a group is the same protection. And a group is
 * much cheaper: with the scheduler's autogroups (CONFIG_SCHED_AUTOGROUP,
 * on by default), setsid makes and later frees a scheduling group for
 * every spawn: posix_spawn of a static no-op with POSIX_SPAWN_SETSID cost
 * 174-201 us of CPU against 134-164 us without and 150-162 us with
 * POSIX_SPAWN_SETPGROUP (3000 spawns, 4 rounds, 2-vCPU VM). Children in
 * the caller's session also share its autogroup rather than each weighing
 * as much as the whole server with the scheduler.
 *
 * Decided once, from the tty field of /proc/self/stat: the caller never
 * opens a terminal, so it cannot gain one later. Unknown (no /proc): a
 * session. */
static int session_needed(void)
{
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v >= 0)
        return v;
    v = 1;
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char st[1024];
        ssize_t n = read(fd, st, sizeof st - 1);
        close(fd);
        /* "pid (comm) state ppid pgrp session tty_nr ...": comm may hold
         * anything, so fields are counted after its last ')'. */
        char *rp = n > 0 ? (st[n] = '\0', strrchr(st, ')')) : NULL;
        int tty = -1;
        if (rp && sscanf(rp + 1, " %*c %*d %*d %*d %d", &tty) == 1 && tty == 0)
            v = 0;
    }
    atomic_store_explicit(&cached, v, memory_order_relaxed);
    return v;
}

/* Puts `fd` (or /dev/null opened with `flags` when fd < 0) on `target`. */
static int child_fd(int fd, int target, int flags)
{
    if (fd == target)
        return fcntl(fd, F_SETFD, 0); /* keep it across exec */
    if (fd >= 0)
        return dup2(fd, target) < 0 ? -1 : 0;
    int nfd = open("/dev/null", flags);
    if (nfd < 0 || nfd == target)
        return nfd < 0 ? -1 : 0;
    int rc = dup2(nfd, target);
    close(nfd);
    return rc < 0 ? -1 : 0;
}

/* Closes fds lo..hi (hi < 0: all from lo up). Returns 0 or -1. */
static int child_close(int lo, int hi)
{
    if (hi >= 0 && hi < lo)
        return 0;
    unsigned top = hi < 0 ? ~0U : (unsigned)hi;
    if (syscall(SYS_close_range, (unsigned)lo, top, 0U) == 0)
        return 0;
    if (errno != ENOSYS) /* kernels before 5.9 */
        return -1;
    for (unsigned fd = (unsigned)lo; fd <= top && fd < 65536; fd++)
        close((int)fd);
    return 0;
}

/* The child between vfork and exec. Every signal is blocked on entry. */
static void __attribute__((noreturn)) child_exec(const child_plan *c)
{
    /* Default dispositions for the signals not at default before
     * unblocking: an ignored one (SIGPIPE, ignored by civetweb) would stay
     * ignored across exec, and a handler must not run here on the parent's
     * memory. glibc's own signals refuse the call; exec resets their
     * handlers anyway, and nothing can direct them at this new process.
     * sigismember only reads the set. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && sigismember(c->reset, sig) == 1)
            sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    /* Sources are all >= 3 (raise_fd) and distinct, and exec_err_fd is
     * >= 4, so no dup2 overwrites a source still needed. Everything else
     * from 3 (or 4) up is closed: the server's sockets may lack FD_CLOEXEC
     * for a moment (civetweb sets it after accept). */
    int keep = c->wrap_fd >= 0 ? 4 : 3;
    if ((c->own_session ? setsid() : setpgid(0, 0)) < 0 || child_fd(c->in_fd, 0, O_RDONLY) < 0 ||
        child_fd(c->out_fd, 1, O_WRONLY) < 0 || child_fd(c->err_fd, 2, O_WRONLY) < 0 ||
        (c->wrap_fd >= 0 && child_fd(c->wrap_fd, 3, 0) < 0) ||
        (c->exec_err_fd < 0 ? child_close(keep, -1) < 0
                            : child_close(keep, c->exec_err_fd - 1) < 0 ||
                                  child_close(c->exec_err_fd + 1, -1) < 0) ||
        (c->cwd && chdir(c->cwd) < 0) || sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        goto fail;
    execve(c->path, c->argv, c->envp);
fail:;
    int e = errno;
    if (c->exec_err_fd < 0) {
        *c->exec_err = e;
    } else {
        ssize_t n = write(c->exec_err_fd, &e, sizeof e);
        (void)n;
    }
    _exit(127);
}

#ifndef TS_SANITIZED
/* The stack of the child of spawn_vfork. child_exec makes only system
 * calls: with its callees and glibc's wrappers it uses under 1 KiB
 * (gcc -fstack-usage: 336 bytes for its own frame). */
#define CHILD_STACK 8192

static int child_start(void *arg)
{
    child_exec(arg);
}
#endif

/* Starts c->path in a new process as vfork does, so that neither the
 * parent's memory size nor a stack to map and unmap (glibc's posix_spawn
 * does that on every call, and unmapping in a multi-threaded process costs
 * a TLB shootdown on the other CPUs) adds to the cost, and sets *pidfd_out
 * to a pidfd of it, or to -1 where the caller must open one. Returns 0 or
 * the errno value of the failure to start it (the child, if any, is
 * reaped). */
static int spawn_vfork(pid_t *pid_out, int *pidfd_out, child_plan *c)
{
#ifndef TS_SANITIZED
    /* A true vfork: the child runs on our memory and we resume only once
     * it has exec'd or exited, so it leaves a failed exec's errno right
     * here. A pipe for it cost a pipe2, a dup, a read and three closes on
     * every task. Sanitizers' run-times make vfork a fork: they keep the
     * pipe below. It is made with clone and CLONE_PIDFD, which hands over
     * the pidfd that pidfd_open made in a system call of its own (~2 % of
     * the server's CPU on trivial tasks, perf). The child runs on a stack
     * in this frame, which stays idle while we are suspended. */
    char stack[CHILD_STACK] __attribute__((aligned(16)));
    volatile int child_err = 0;
    int pidfd = -1;
    c->exec_err_fd = -1;
    c->exec_err = &child_err;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(child_start, stack + sizeof stack,
                      CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, c, &pidfd);
    int err = pid < 0 ? errno : child_err;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid > 0 && err) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        close(pidfd);
    }
    if (!err) {
        *pid_out = pid;
        *pidfd_out = pidfd;
    }
    return err;
#else
    int rep[2];
    if (pipe2(rep, O_CLOEXEC) < 0)
        return errno;
    /* The write end must survive the dup2 onto fd 3. */
    int wfd = fcntl(rep[1], F_DUPFD_CLOEXEC, 4);
    int err = wfd < 0 ? errno : 0;
    close(rep[1]);
    if (err || (err = -raise_fd(&rep[0]))) {
        close(rep[0]);
        if (wfd >= 0)
            close(wfd);
        return err;
    }
    c->exec_err_fd = wfd;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = vfork();
    if (pid == 0)
        child_exec(c);
    err = pid < 0 ? errno : 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(wfd);
    if (pid > 0) {
        /* End of file: the exec succeeded. (With a true vfork the child is
         * past exec or dead by now; where vfork is a fork, as under
         * ThreadSanitizer, this waits for it.) */
        ssize_t n;
        while ((n = read(rep[0], &err, sizeof err)) < 0 && errno == EINTR)
            ;
        if (n == (ssize_t)sizeof err) {
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        } else {
            err = 0;
        }
    }
    close(rep[0]);
    if (!err) {
        *pid_out = pid;
        *pidfd_out = -1;
    }
    return err;
#endif
}

/* Runs "/bin/sh FILE ARGV[1..]", as execvp does for a file the kernel
 * refused as ENOEXEC. Returns 0 or an errno value. */
static int spawn_sh(pid_t *pid, int *pidfd, const runner_opts *o, const child_plan *c)
{
    size_t argc = 0;
    while (o->argv[argc])
        argc++;
    char **av = calloc(argc + 3, sizeof *av);
    if (!av)
        return ENOMEM;
    av[0] = (char *)"/bin/sh";
    av[1] = (char *)c->path;
    for (size_t i = 1; i < argc; i++)
        av[i + 1] = o->argv[i];
    child_plan sh = *c;
    sh.path = "/bin/sh";
    sh.argv = av;
    int rc = spawn_vfork(pid, pidfd, &sh);
    free(av);
    return rc;
}

/* The argument vector of a wrapped run: WRAPPER... PATH ARGV... (pointers
 * borrowed). Returns NULL when out of memory. */
static char **wrapper_argv(const runner_opts *o)
{
    size_t nw = 0, na = 0;
    while (o->wrapper[nw])
        nw++;
    while (o->argv[na])
        na++;
    char **v = calloc(nw + na + 2, sizeof *v);
    if (!v)
        return NULL;
    memcpy(v, o->wrapper, nw * sizeof *v);
    v[nw] = (char *)o->path;
    memcpy(v + nw + 1, o->argv, na * sizeof *v);
    return v;
}

/* runner_spawn_ex for a program that a cell runs (see "Cells"). */
static int spawn_in_cell(const runner_opts *o, runner_proc *p, int *exec_err)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, err;
    pid_t pid;
    if (o->wrapper)
        return -EINVAL;
    if (o->capture_stdout && (err = make_pipe(outp)) < 0)
        goto fail;
    if (o->capture_stderr && (err = make_pipe(errp)) < 0)
        goto fail;
    err = cell_start(o->cell, o, o->stdin_fd, outp[1], errp[1], &pid);
    /* The cell has its copies now. */
    close_fd(&outp[1]);
    close_fd(&errp[1]);
    if (err == -E2BIG) /* more than any exec takes: the program's fault */
        *exec_err = E2BIG;
    if (err < 0)
        goto fail;
    /* Our own fd on the cell's socket, so that closing p is as for any
     * process. */
    p->pidfd = fcntl(cell_event_fd(o->cell), F_DUPFD_CLOEXEC, 3);
    if (p->pidfd < 0) {
        err = -errno;
        cell_abandon(o->cell);
        goto fail;
    }
    p->pid = pid;
    p->out_fd = outp[0];
    p->err_fd = errp[0];
    p->report_fd = -1;
    p->cpu_us = 0;
    p->cell = o->cell;
    p->report[0] = '\0';
    return 0;

fail:
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    return err;
}

int runner_spawn_ex(const runner_opts *o, runner_proc *p, int *exec_err)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, repp[2] = {-1, -1};
    char **wargv = NULL;
    char *resolved = NULL;
    pid_t pid;
    int pidfd = -1, rc, err;

    *exec_err = 0;
    if (!o || !o->path || !o->argv)
        return -EINVAL;
    if (o->cell)
        return spawn_in_cell(o, p, exec_err);
    if (o->capture_stdout && (err = make_pipe(outp)) < 0)
        goto fail_pipe;
    if (o->capture_stderr && (err = make_pipe(errp)) < 0)
        goto fail_pipe;
    if (o->fd3 && o->fd3 < 3) {
        err = -EINVAL;
        goto fail_pipe;
    }
    if (o->wrapper) {
        if (!o->fd3 && (err = make_pipe(repp)) < 0)
            goto fail_pipe;
        if (!(wargv = wrapper_argv(o))) {
            err = -ENOMEM;
            goto fail_pipe;
        }
    }
    child_plan c = {
        .path = wargv ? wargv[0] : o->path,
        .argv = wargv ? wargv : o->argv,
        .envp = o->envp ? o->envp : environ,
        .cwd = o->cwd,
        .in_fd = o->stdin_fd,
        .out_fd = outp[1],
        .err_fd = errp[1],
        .wrap_fd = o->fd3 ? o->fd3 : repp[1],
        .exec_err_fd = -1,
        .own_session = session_needed(),
        .reset = reset_signals(),
    };
    if (!strchr(c.path, '/')) {
        /* As posix_spawnp: the caller's PATH, not the child's. */
        resolved = path_lookup(c.path);
        c.path = resolved;
    }
    rc = c.path ? spawn_vfork(&pid, &pidfd, &c) : ENOENT;
    if (rc == ENOEXEC && o->sh_fallback && !wargv)
        rc = spawn_sh(&pid, &pidfd, o, &c);
    free(resolved);
    free(wargv);
    wargv = NULL;
    /* The child has its copies now; ours would keep the pipes from ever
     * reporting end-of-file. */
    close_fd(&outp[1]);
    close_fd(&errp[1]);
    close_fd(&repp[1]);
    if (rc) {
        *exec_err = rc;
        err = -rc;
        goto fail_pipe;
    }

    /* Race-free: the child is unreaped, so its pid cannot be reused yet. */
    if (pidfd < 0)
        pidfd = pidfd_open(pid, 0);
    if (pidfd < 0) {
        err = -errno;
        kill(-pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        goto fail_pipe;
    }
    p->pid = pid;
    p->pidfd = pidfd;
    p->out_fd = outp[0];
    p->err_fd = errp[0];
    p->report_fd = repp[0];
    p->cpu_us = 0;
    p->cell = NULL;
    p->report[0] = '\0';
    return 0;

fail_pipe:
    free(wargv);
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    close_fd(&repp[0]);
    close_fd(&repp[1]);
    return err;
}

int runner_spawn(const runner_opts *o, runner_proc *p)
{
    int exec_err;
    return runner_spawn_ex(o, p, &exec_err);
}

int runner_kill(const runner_proc *p, int sig)
{
    if (p->cell)
        return cell_signal(p->cell, sig);
    /* kill(0) or kill(-1) would hit our own group or everything. */
    if (p->pid <= 1)
        return -ESRCH;
    return kill(-p->pid, sig) < 0 ? -errno : 0;
}

/* Reaping uses the raw waitid system call: with P_PIDFD it can only ever
 * collect this process (a stale pid cannot name a stranger), and unlike
 * glibc's wrapper the kernel call also fills a struct rusage, so the exit
 * status and the CPU time come from one call at the moment of reaping.
 * (wait4(pid) would also be safe while we own the unreaped pid; reading
 * /proc/PID/stat before the reap costs three calls and misses the last
 * ticks.) The kernel's rusage is glibc's on LP64 targets. */
_Static_assert(sizeof(long) == 8, "raw waitid rusage layout assumes an LP64 target");

int runner_reap(runner_proc *p, int *wstatus, int nohang)
{
    siginfo_t si;
    struct rusage ru;
    if (p->pidfd < 0)
        return -EBADF;
    if (p->cell) {
        int st = 0, rc = cell_reap(p->cell, nohang, &st, &p->cpu_us, p->report, sizeof p->report);
        if (rc > 0 && wstatus)
            *wstatus = st;
        return rc;
    }
    memset(&si, 0, sizeof si);
    long rc;
    do
        rc = syscall(SYS_waitid, P_PIDFD, p->pidfd, &si, WEXITED | (nohang ? WNOHANG : 0), &ru);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    if (si.si_pid == 0)
        return 0;
    int st;
    switch (si.si_code) {
    case CLD_EXITED:
        st = W_EXITCODE(si.si_status, 0);
        break;
    case CLD_DUMPED:
        st = si.si_status | WCOREFLAG;
        break;
    default: /* CLD_KILLED */
        st = si.si_status;
        break;
    }
    if (wstatus)
        *wstatus = st;
    p->cpu_us = (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
                ru.ru_stime.tv_usec;
    return 1;
}

void runner_proc_close(runner_proc *p)
{
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    close_fd(&p->report_fd);
    close_fd(&p->pidfd);
}
