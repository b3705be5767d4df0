/* runner_proc: the raw process level of the runner library.
 *
 * Programs are started as with vfork + execve (clone with CLONE_VM and
 * CLONE_VFORK, which also hands over the pidfd; so the cost does not grow
 * with the caller's memory, and no stack is mapped and unmapped per spawn
 * as glibc's posix_spawn does), in a new process group whose id equals
 * the child's pid (and in a new session where the caller has a controlling
 * terminal; without one, in the caller's session, which is cheaper and
 * cannot gain one), with an empty signal mask, default signal
 * dispositions and every fd >= 3 closed. Dispositions: the child resets
 * the signals the caller ignored or caught at its first spawn, and
 * SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2,
 * SIGALRM, SIGTSTP, SIGTTIN, SIGTTOU, SIGXFSZ and SIGXCPU whenever; a
 * caller that ignores or catches another signal does so before it first
 * spawns. The child is tracked through a
 * pidfd, so nothing here ever calls waitpid(-1) or touches SIGCHLD.
 * Callers with their own event loop (the gather supervisor) use this level
 * directly; runner_run (runner.h) builds on it.
 *
 * Thread-safe: every call works only on the objects passed to it. */
#ifndef TS_RUNNER_PROC_H
#define TS_RUNNER_PROC_H

#include <stdint.h>
#include <sys/types.h>

struct cell;

/* What to start. Only `path` and `argv` are required. */
typedef struct runner_opts {
    const char *path;     /* program; a name without '/' is looked up in PATH */
    char *const *argv;    /* NULL-terminated, argv[0] included */
    char *const *envp;    /* NULL: the caller's environment */
    const char *cwd;      /* NULL: the caller's working directory */
    int stdin_fd;         /* fd given to the child as stdin; -1: /dev/null */
    int sh_fallback;      /* if the kernel refuses the file as ENOEXEC (no #!
                             line), run "/bin/sh path argv[1..]" like execvp */
    int capture_stdout;   /* 1: pipe to the parent; 0: /dev/null */
    int capture_stderr;   /* 1: pipe to the parent; 0: /dev/null */
    char *const *wrapper; /* NULL, or the NULL-terminated argv prefix of a program
                             that runs this one for us (see "Wrappers") */
    int fd3;              /* an fd (> 2) the child gets as fd 3, in place of a
                             wrapper's report pipe (report_fd is then -1); 0:
                             none. For a program that talks to its starter over
                             a socket, such as the warm Python fork server */
    struct cell *cell;    /* NULL, or the sandbox cell that runs it (see "Cells");
                             not with a wrapper */
    int warm_python;      /* with cell: argv is PYTHON MAIN ARGS..., which a cell
                             that hosts warm Python starts from its fork server
                             (the same program, without the interpreter's start-up) */
    int save_files;       /* sandboxed (cell or per-task wrapper): the files the run
                             makes in its directory (cwd) are copied back to the
                             host's, so that a later run of the same task sees
                             them (a compiler's output); ignored unconfined, where
                             the run writes there itself */
} runner_opts;

/* Wrappers. With o->wrapper set, the runner starts wrapper[0] with the
 * arguments WRAPPER... PATH ARGV... (the program's argv[0] included), in
 * the session, directory and environment the program would have had, with
 * the same fds 0-2 plus fd 3: the write end of a report pipe (every other
 * fd is closed). The wrapper runs PATH itself (sh_fallback is then its
 * business; a PATH without '/' is looked up in the PATH of envp, the
 * program's own, where runner_spawn uses the caller's) and ends as the
 * program ended: same exit code, or killed by the same signal. Once it
 * has exited, runner_run (runner.h) reads the lines it wrote to fd 3 into
 * these fields of its runner_result (a caller of runner_spawn reads
 * p->report_fd itself):
 *   "exec ERRNO"        the program could not be executed: spawn_errno;
 *   "fail TEXT"         the wrapper could not prepare the run: wrapper_error;
 *   "limit NAME VALUE"  the program hit a resource limit (NAME as in
 *                       runner_limit_name, VALUE in bytes, seconds or
 *                       processes): limit, limit_value;
 *   "note TEXT"         something the caller should log about how the run
 *                       was made (warm Python fell back to a cold start, and
 *                       why): note.
 * Anything else is ignored.
 *
 * Cells. With o->cell set (cell.h), the program is started by the cell's
 * init, a long-lived process of the sandbox, in the cell's directory and
 * namespaces; the pipes are made here as usual and passed on. p->pid is
 * the pid inside the cell, p->pidfd becomes readable when the cell
 * reports the end, runner_kill signals every process of the task through
 * the cell, runner_reap takes the cell's report, whose lines (the ones of
 * a wrapper's fd 3) land in p->report. */

/* A started process. pid is also its process group id. */
typedef struct runner_proc {
    pid_t pid;
    int pidfd;         /* readable when the process has exited */
    int out_fd;        /* read end of stdout (O_NONBLOCK|O_CLOEXEC) or -1 */
    int err_fd;        /* read end of stderr (O_NONBLOCK|O_CLOEXEC) or -1 */
    int64_t cpu_us;    /* set by runner_reap: user+system CPU time of the
                          process and of the descendants it waited for */
    int report_fd;     /* read end of a wrapper's report pipe
                          (O_NONBLOCK|O_CLOEXEC), or -1 */
    struct cell *cell; /* the cell it runs in, or NULL (borrowed) */
    char report[480];  /* in a cell: the report lines, set by runner_reap */
} runner_proc;

/* Starts a process. Returns 0 and fills *p, or -errno (ENOENT, EACCES,
 * ENOEXEC, EMFILE...; the exec error is reported here, synchronously).
 * On error no process exists and no fd is left open. */
int runner_spawn(const runner_opts *o, runner_proc *p);

/* runner_spawn with the origin of a failure told apart: *exec_err is set
 * (to the errno value) when the program itself could not be started, and
 * left 0 when the failure is on the caller's side (pipes, pidfd, memory).
 * Returns 0 or -errno, as runner_spawn. */
int runner_spawn_ex(const runner_opts *o, runner_proc *p, int *exec_err);

/* Sends sig to the process's whole group. Returns 0 or -errno (ESRCH if
 * nothing is left in the group). Call it before runner_reap: until the
 * reap, the exited process still holds its pid, so the group id cannot have
 * been handed to anyone else. */
int runner_kill(const runner_proc *p, int sig);

/* Reaps the process if it has exited (blocks when !nohang). Returns 1 and
 * sets *wstatus (as waitpid) and p->cpu_us when reaped, 0 if still running
 * (nohang), or -errno (ECHILD once it has been reaped). Reaping goes through
 * the pidfd, so it can never collect some other child. */
int runner_reap(runner_proc *p, int *wstatus, int nohang);

/* Closes the fds of p that are still open (pipes, pidfd). Does not kill or
 * reap: call runner_kill/runner_reap first. */
void runner_proc_close(runner_proc *p);

#endif
