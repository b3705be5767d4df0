/* pyfork_client: the C side of warm Python, a fork server (runner/pyfork.py)
 * that has finished the interpreter's start-up once and forks one child
 * per task, each a faithful stand-in for a cold `python3 main.py ARGS`.
 *
 * The server is started as `PYTHON SCRIPT` (or `WRAPPER... PYTHON SCRIPT`)
 * with the task environment, cwd /, fds 0-2 on /dev/null and an AF_UNIX
 * SOCK_SEQPACKET control socket on fd 3. Protocol, one message per
 * datagram, a verb first:
 *
 *   server -> client, ASCII words separated by one space:
 *     ready PID            once warm; its own pid, in its pid namespace
 *     pid N                the task was forked: pid N, also its session and
 *                          process group (in the server's namespace)
 *     exit STATUS UTIME_US STIME_US MAXRSS_KB
 *                          the task was reaped: raw wait status, CPU times
 *                          in microseconds, peak RSS in KiB; its process
 *                          group was SIGKILLed first
 *     fail SENTENCE        the task could not start: comes instead of
 *                          "exit", after "pid" or (request refused) alone
 *   client -> server:
 *     part\0FIELDS         leading pieces of a run request (optional)
 *     run\0FIELDS          its last piece; the request's fields are the
 *                          concatenation of the pieces' FIELDS. The first
 *                          piece carries stdin, stdout, stderr (SCM_RIGHTS),
 *                          then the cgroup.procs files the child joins
 *     kill SIG             signal the task's process group
 *     spare                fork the next task's process ahead, idle until
 *                          the next run request (no reply; nothing while a
 *                          task runs or when one is forked already). It is
 *                          a child of the server's that is not the task
 *     drop                 kill and reap the spare, if any; answered by
 *                          "dropped"
 *     EOF                  the server SIGKILLs the task's group, reaps it,
 *                          and exits
 *   Each field ends with a NUL and starts with a tag: Ddir, Mmain,
 *   Aarg (each argument after main, in order), EKEY=VALUE (the whole
 *   environment, in order), Uuid and Ggid (both or neither; the server must
 *   be root), Lname soft hard (an rlimit: "nofile", "cpu"...; "inf" for
 *   unlimited), Cpath (a cgroup.procs file to join before dropping
 *   privileges).
 *
 * One task at a time per server. A pyfork is used by one thread at a time
 * (a worker owns its server); no call takes a lock. */
#ifndef TS_PYFORK_CLIENT_H
#define TS_PYFORK_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

typedef struct pyfork pyfork;

/* How to start a fork server. */
typedef struct pyfork_config {
    const char *python;   /* interpreter (--python); a name without '/' is
                             looked up in the caller's PATH, as runner_spawn
                             does */
    const char *script;   /* pyfork.py; NULL: the one next to our own
                             executable (selfpath.h), as built and installed */
    char *const *envp;    /* the server's environment, which should be the
                             task environment (requests whose environment
                             differs in what start-up reads run cold) */
    char *const *wrapper; /* NULL, or the argv prefix of a program that
                             starts the server for us (inside a sandbox
                             cell), called as runner_opts.wrapper is:
                             WRAPPER... PYTHON PYTHON SCRIPT (the path, then
                             the whole argv). It passes fd 3 on, execs the
                             server or waits for it, and is what pyfork_free
                             reaps */
    int ready_ms;         /* how long start-up may take; 0: 10 000 */
} pyfork_config;

/* Starts a fork server and waits until it says it is ready. Returns 0 and
 * sets *out (free it with pyfork_free), or -errno: -ETIMEDOUT (not ready
 * in time), -ECHILD (it exited first), -EPROTO (it said something else),
 * or what spawning failed with. On failure, why (if not NULL) holds a
 * sentence and nothing is left running. */
int pyfork_start(const pyfork_config *c, pyfork **out, char *why, size_t whylen);

/* Takes over a fork server someone else started (a sandbox cell), given
 * our end of its control socket, which it now owns (closed on failure
 * too). Waits for "ready" as pyfork_start does; pyfork_free then only
 * closes the socket (the starter reaps the process). Returns as
 * pyfork_start. */
int pyfork_adopt(int sock, int ready_ms, pyfork **out, char *why, size_t whylen);

/* The server's pid as it reported it (in its own pid namespace). */
pid_t pyfork_server_pid(const pyfork *pf);

/* The control socket: poll it for POLLIN while a task runs, then call
 * pyfork_wait(pf, 0, ...). Owned by pf. */
int pyfork_fd(const pyfork *pf);

/* An rlimit for the task. */
typedef struct pyfork_rlimit {
    const char *name; /* "nofile", "cpu", "fsize", "as", "nproc", "core"... */
    rlim_t soft;      /* RLIM_INFINITY for unlimited */
    rlim_t hard;
} pyfork_rlimit;

/* One task: `python MAIN ARGS...` in dir. Strings are borrowed for the
 * duration of the call. */
typedef struct pyfork_task {
    const char *dir;             /* its directory and cwd */
    const char *main;            /* the main file, as given to python ("main.py") */
    char *const *args;           /* NULL-terminated arguments after main, or NULL */
    char *const *envp;           /* NULL-terminated environment, or NULL (empty) */
    int switch_user;             /* 1: run as uid/gid (the server must be root) */
    uid_t uid;                   /* with switch_user */
    gid_t gid;                   /* with switch_user; supplementary groups dropped */
    const pyfork_rlimit *limits; /* nlimits of them */
    size_t nlimits;
    char *const *cgroups;  /* NULL-terminated cgroup.procs paths, or NULL */
    const int *cgroup_fds; /* ncgroup_fds cgroup.procs (or cgroup v1 tasks)
                              files open for writing, which the child joins by
                              writing "0" (where paths cannot be opened any
                              more: a read-only sandbox); sent along with the
                              std fds, still the caller's to close */
    size_t ncgroup_fds;    /* at most PYFORK_MAX_CGROUP_FDS */
    int stdin_fd;          /* the task's fds 0, 1, 2: duplicated into the */
    int stdout_fd;         /* server, still the caller's to close */
    int stderr_fd;
} pyfork_task;

/* The most cgroup_fds one task may carry (the server takes 3 + 16 fds). */
#define PYFORK_MAX_CGROUP_FDS 16

/* How a task ended. */
typedef struct pyfork_result {
    int started;      /* 1: it ran, the fields below are valid; 0: it
                         could not start, why says why */
    int wstatus;      /* raw wait status (WIFEXITED...) */
    int64_t utime_us; /* user CPU time */
    int64_t stime_us; /* system CPU time */
    long maxrss_kb;   /* peak resident memory */
    char why[256];    /* "" when started */
} pyfork_result;

/* Sends a task and waits for the server to fork it. Returns 0 and sets
 * *pid to the task's pid (in the server's namespace), or to 0 when the
 * server refused it at once; in both cases pyfork_wait then gives the
 * result. Returns -EBUSY if a task is still running, -EINVAL for a task
 * that cannot be encoded (a NUL-free string is all it takes), -EPIPE if
 * the server is gone (pf is then useless: free it and start another),
 * -ETIMEDOUT if it did not answer. */
int pyfork_run(pyfork *pf, const pyfork_task *t, pid_t *pid);

/* Waits up to timeout_ms (-1: no limit, 0: just look) for the end of the
 * task started by pyfork_run. Returns 1 and fills *r, 0 if the task is
 * still running, -EINVAL if no task was started, -EPIPE if the server is
 * gone (the task with it) or -EPROTO if it said something unexpected. */
int pyfork_wait(pyfork *pf, int timeout_ms, pyfork_result *r);

/* Asks the server to fork the next task's process now, while no task
 * runs, so that the next pyfork_run does not wait for the fork (most of a
 * trivial task's time in the server). Does not wait for the fork. Until
 * that task, the spare is a child of the server's, with the server's
 * user, that has run nothing of a task's. Returns 0, -EBUSY while a task
 * runs, or -EPIPE if the server is gone. */
int pyfork_prefork(pyfork *pf);

/* Has the server kill and reap its spare (pyfork_prefork), if any, and
 * waits until it has: its pid is then free again. Returns 0, -EBUSY while
 * a task runs, -EPIPE if the server is gone, -ETIMEDOUT if it did not
 * answer or -EPROTO if it said something else. */
int pyfork_drop_spare(pyfork *pf);

/* Sends sig to the running task's process group. Returns 0 (also when
 * the task has just ended) or -EPIPE if the server is gone. */
int pyfork_kill(pyfork *pf, int sig);

/* Closes the control socket, upon which the server kills its task and
 * exits, and reaps the server (SIGKILL to its group if it is not gone
 * within a second). pf may be NULL. */
void pyfork_free(pyfork *pf);

#endif
