/* tasksolver-exec: runs one task program inside the sandbox.
 *
 * The runner starts it as a wrapper (see "Wrappers" in runner.h):
 *
 *   tasksolver-exec [OPTIONS] -- PATH ARGV0 ARGS...
 *
 * with fd 3 the report pipe. It joins the task's cgroups, optionally makes
 * new PID, mount, IPC, UTS (and network, and user) namespaces, and runs
 * three processes deep:
 *
 *   tasksolver-exec            the runner's child; exits as the task did
 *    `- init (PID 1)           sets up the file system, reaps orphans;
 *        `- the task           limits, user, syscall filter, then exec
 *
 * When the task exits (or init is killed, or this process is: init dies
 * with it), init exits and the kernel kills everything left in the PID
 * namespace, so nothing a task starts can outlive it, setsid or not.
 * Without namespaces the task is this process's child directly.
 *
 * Every set-up step fails closed: the task does not run, and the report
 * says "fail STEP: ERROR". The server probes the machine at start-up and
 * only asks for what works there.
 *
 * With --cell (and no program), it builds the same namespaces and file
 * system once for a worker and serves many tasks in them, talking to the
 * worker over the SOCK_SEQPACKET socket on fd 0 (cell_proto.h):
 *
 *   tasksolver-exec --cell     the worker's child; exits as init did
 *    `- init (PID 1)           set-up once, then serves (tsexec_cell.c)
 *        `- a task at a time   limits, user, syscall filter, then exec
 *
 * A set-up failure is then a FAIL message on the socket. With
 * --pyfork=SCRIPT, the cell hosts warm Python (tsexec_pyhost.h): SCRIPT is
 * opened here, before the file system hides the server's directory. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsexec_cell.h"
#include "tsexec_fs.h"
#include "tsexec_lock.h"
#include "tsexec_task.h"

#define REPORT_FD 3
#define MAX_LIST 16

extern char **environ;

/* In a cell, set-up failures go to the worker's socket (fd 0), not to a
 * report pipe. */
static int cell_sock = -1;

/* The task's file system, once init has set it up (scratch -1 before). */
static tsexec_fs task_fs = {TSEXEC_FS_CLOSED};

typedef struct opts {
    const char *dir;
    int cell, ns, netns, userns, seccomp, sh;
    int save; /* --save: the files the task made go back to the host's dir */
    uid_t uid;
    gid_t gid;
    int64_t disk;
    tsexec_limits lim;
    const char *hide[MAX_LIST];
    int nhide;
    const char *cgroup[MAX_LIST];
    int ncgroup;
    const char *pyfork; /* --cell: warm Python's script, or NULL */
    char *path;
    char **argv;
    char **sh_argv; /* room for "/bin/sh" FILE ARGS..., filled in at exec time */
} opts;

/* One line for the runner. */
__attribute__((format(printf, 1, 2))) static void report(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(REPORT_FD, line, (size_t)n);
    (void)w;
}

/* Reports a failed set-up step (errno-style err > 0) and gives up. */
__attribute__((noreturn)) static void fail(const char *step, int err)
{
    if (cell_sock >= 0) {
        char text[512];
        snprintf(text, sizeof text, "%s: %s", step, strerror(err));
        tsexec_cell_fail(cell_sock, text);
    } else {
        report("fail %s: %s", step, strerror(err));
    }
    _exit(127);
}

static int64_t number(const char *s, const char *name)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) {
        report("fail bad --%s '%s'", name, s);
        _exit(127);
    }
    return v;
}

static void parse(int argc, char **argv, opts *o)
{
    /* clang-format off */
    static const struct option lo[] = {
        {"dir", required_argument, NULL, 'd'},
        {"cell", no_argument, NULL, 'L'},
        {"ns", no_argument, NULL, 'n'},
        {"no-network", no_argument, NULL, 'N'},
        {"userns", no_argument, NULL, 'U'},
        {"seccomp", no_argument, NULL, 'S'},
        {"sh", no_argument, NULL, 's'},
        {"save", no_argument, NULL, 'v'},
        {"uid", required_argument, NULL, 'u'},
        {"gid", required_argument, NULL, 'g'},
        {"disk", required_argument, NULL, 'D'},
        {"cpu", required_argument, NULL, 'c'},
        {"fsize", required_argument, NULL, 'f'},
        {"nofile", required_argument, NULL, 'o'},
        {"nproc", required_argument, NULL, 'p'},
        {"as", required_argument, NULL, 'a'},
        {"hide", required_argument, NULL, 'h'},
        {"cgroup", required_argument, NULL, 'C'},
        {"pyfork", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    /* clang-format on */
    memset(o, 0, sizeof *o);
    o->uid = (uid_t)-1;
    o->gid = (gid_t)-1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
        switch (ch) {
        case 'v':
            o->save = 1;
            break;
        case 'd':
            o->dir = optarg;
            break;
        case 'L':
            o->cell = 1;
            break;
        case 'n':
            o->ns = 1;
            break;
        case 'N':
            o->netns = 1;
            break;
        case 'U':
            o->userns = 1;
            break;
        case 'S':
            o->seccomp = 1;
            break;
        case 's':
            o->sh = 1;
            break;
        case 'u':
            o->uid = (uid_t)number(optarg, "uid");
            break;
        case 'g':
            o->gid = (gid_t)number(optarg, "gid");
            break;
        case 'D':
            o->disk = number(optarg, "disk");
            break;
        case 'c':
            o->lim.cpu = number(optarg, "cpu");
            break;
        case 'f':
            o->lim.fsize = number(optarg, "fsize");
            break;
        case 'o':
            o->lim.nofile = number(optarg, "nofile");
            break;
        case 'p':
            o->lim.nproc = number(optarg, "nproc");
            break;
        case 'a':
            o->lim.as = number(optarg, "as");
            break;
        case 'P':
            o->pyfork = optarg;
            break;
        case 'h':
        case 'C':
            if ((ch == 'h' ? o->nhide : o->ncgroup) >= MAX_LIST)
                fail("too many --hide or --cgroup", E2BIG);
            if (ch == 'h')
                o->hide[o->nhide++] = optarg;
            else
                o->cgroup[o->ncgroup++] = optarg;
            break;
        default:
            report("fail usage: tasksolver-exec [OPTIONS] -- PATH ARGV...");
            _exit(127);
        }
    }
    if ((!o->cell && argc - optind < 2) || !o->dir ||
        (o->uid == (uid_t)-1) != (o->gid == (gid_t)-1)) {
        report("fail usage: tasksolver-exec --dir DIR [OPTIONS] -- PATH ARGV...");
        _exit(127);
    }
    if (o->cell)
        return;
    o->path = argv[optind];
    o->argv = argv + optind + 1;
    /* Made now: nothing is allocated once the address space is limited. */
    int n = argc - optind;
    if (o->sh && !(o->sh_argv = calloc((size_t)n + 2, sizeof *o->sh_argv)))
        fail("memory", ENOMEM);
}

/* Writes text into a file that must exist (cgroup and /proc files). */
static int put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int err = n < 0 ? -errno : 0;
    close(fd);
    return err;
}

static void join_cgroups(const opts *o)
{
    for (int i = 0; i < o->ncgroup; i++) {
        char path[PATH_MAX], step[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/cgroup.procs", o->cgroup[i]);
        int rc = put(path, "0");
        if (rc < 0) {
            snprintf(step, sizeof step, "cgroup %s", o->cgroup[i]);
            fail(step, -rc);
        }
    }
}

/* New namespaces for everything forked from here on (the PID namespace
 * starts with our next child). A server that is not root gets them
 * inside a user namespace where it keeps its own uid. */
static void make_namespaces(const opts *o)
{
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
    if (o->netns)
        flags |= CLONE_NEWNET;
    if (o->userns)
        flags |= CLONE_NEWUSER;
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(flags) < 0)
        fail("unshare", errno);
    if (o->userns) {
        char map[64];
        int rc = put("/proc/self/setgroups", "deny");
        snprintf(map, sizeof map, "%u %u 1", (unsigned)uid, (unsigned)uid);
        if (rc == 0)
            rc = put("/proc/self/uid_map", map);
        snprintf(map, sizeof map, "%u %u 1", (unsigned)gid, (unsigned)gid);
        if (rc == 0)
            rc = put("/proc/self/gid_map", map);
        if (rc < 0)
            fail("userns map", -rc);
    }
}

/* Loopback only: a task may talk to itself, never to the host. */
static void loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        fail("network socket", errno);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        fail("network lo", errno);
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        fail("network lo up", errno);
    close(s);
}

/* The task process of this run (the program's environment is ours). */
static tsexec_task task_of(const opts *o)
{
    return (tsexec_task){
        .dir = o->dir,
        .path = o->path,
        .argv = o->argv,
        .envp = environ,
        .sh_argv = o->sh_argv,
        .lim = &o->lim,
        .uid = o->uid,
        .gid = o->gid,
        .seccomp = o->seccomp,
        .fd = {-1, -1, -1},
        .report_fd = REPORT_FD,
    };
}

static void report_limits(const opts *o, int st, const struct rusage *ru)
{
    char line[128];
    tsexec_task_limit(&o->lim, o->disk, &task_fs, st, ru, line, sizeof line);
    if (line[0])
        report("%s", line);
}

/* Forks the task and waits for it; as PID 1 of a namespace, also reaps
 * every orphan that lands here meanwhile. Returns the task's status. */
static int supervise(const opts *o, int is_init)
{
    tsexec_task t = task_of(o);
    pid_t task = tsexec_task_start(&t);
    if (task < 0)
        fail("fork", errno);
    for (;;) {
        int st;
        struct rusage ru;
        pid_t pid = wait4(is_init ? -1 : task, &st, 0, &ru);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0)
            fail("wait", errno);
        if (pid == task) {
            report_limits(o, st, &ru);
            return st;
        }
    }
}

/* Ends this process as a process with status st ended. */
__attribute__((noreturn)) static void mirror(int st)
{
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        signal(sig, SIG_DFL);
        sigprocmask(SIG_UNBLOCK, &one, NULL);
        raise(sig); /* no core file: RLIMIT_CORE is 0 */
        _exit(128 + sig);
    }
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 127);
}

/* PID 1 of the new namespaces: file system, network, then the task. Sends
 * the task's status to the helper through fd, since the kernel does not
 * let PID 1 die of a signal it raises itself. */
__attribute__((noreturn)) static void run_init(const opts *o, int fd, int save)
{
    /* If the helper is killed, the whole namespace goes with us. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    task_fs = (tsexec_fs){
        TSEXEC_FS_CLOSED, .dir = o->dir,   .disk = o->disk,   .uid = o->uid,
        .gid = o->gid,    .hide = o->hide, .nhide = o->nhide, .new_proc = 1,
    };
    char step[PATH_MAX + 64];
    int rc = tsexec_fs_setup(&task_fs, step, sizeof step);
    if (rc < 0)
        fail(step, -rc);
    if (sethostname("tasksolver", 10) < 0)
        fail("sethostname", errno);
    if (o->netns)
        loopback_up();
    int st = supervise(o, 1);
    /* What the task's other processes still write is theirs to lose: the
     * task itself is over. */
    int home = save >= 0 ? open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (home >= 0 && (rc = tsexec_fs_save(home, save)) < 0)
        report("note could not save the files: %s", strerror(-rc));
    ssize_t w = write(fd, &st, sizeof st);
    (void)w;
    _exit(0);
}

/* Loopback connections leave TIME_WAIT sockets for a minute, and one on a
 * port makes the next bind of that port fail: a trace a task would leave
 * to the next one in a cell. With no bucket for them the kernel closes
 * such connections at once. */
static void no_time_wait(void)
{
    int rc = put("/proc/sys/net/ipv4/tcp_max_tw_buckets", "0");
    if (rc < 0 && rc != -ENOENT) /* no IPv4: no TCP over it either */
        fail("tcp_max_tw_buckets", -rc);
}

/* PID 1 of a cell: file system and network once, then serves tasks. */
__attribute__((noreturn)) static void run_cell_init(const opts *o, const int *cg, int ncg,
                                                    int script, int script_errno)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* Not even a task of the same uid (a server that is not root) may
     * attach to init or open its memory: it would reach every later task
     * of the worker. */
    prctl(PR_SET_DUMPABLE, 0);
    /* The machine's out-of-memory killer leaves init alone (a task's own
     * excess is its cgroup's business). Only root can ask. */
    put("/proc/self/oom_score_adj", "-1000");
    if (o->netns)
        loopback_up();
    task_fs = (tsexec_fs){
        TSEXEC_FS_CLOSED, .dir = o->dir,     .disk = o->disk, .uid = o->uid, .gid = o->gid,
        .hide = o->hide,  .nhide = o->nhide, .new_proc = 1,   .cell = 1,
    };
    char step[PATH_MAX + 64];
    int rc = tsexec_fs_setup(&task_fs, step, sizeof step);
    if (rc < 0)
        fail(step, -rc);
    /* Through the cell's own /proc: Docker mounts the container's
     * /proc/sys read-only, which made every cell fail there. */
    if (o->netns)
        no_time_wait();
    if (sethostname("tasksolver", 10) < 0)
        fail("sethostname", errno);
    tsexec_cell c = {
        .sock = cell_sock,
        .fs = &task_fs,
        .lim = &o->lim,
        .uid = o->uid,
        .gid = o->gid,
        .seccomp = o->seccomp,
        .cgroup_fds = cg,
        .ncgroup = ncg,
        .pyfork_fd = script,
        .pyfork_errno = script_errno,
    };
    if ((rc = tsexec_cell_prepare(&c, step, sizeof step)) < 0)
        fail(step, -rc);
    /* The filter once, on init itself, which needs none of the calls it
     * refuses from here on: every task inherits it. Installing it per
     * task cost ~150-200 us of CPU (measured with perf: the kernel
     * compiles it and works out its action cache each time). */
    if (o->seccomp && (rc = tsexec_lock_seccomp()) < 0)
        fail("seccomp", -rc);
    c.seccomp = 0;
    tsexec_cell_serve(&c);
}

/* --cell: the namespaces, then init; this process stays outside them and
 * ends as init ends. */
__attribute__((noreturn)) static void cell_main(const opts *o)
{
    cell_sock = 0;
    if (!o->ns)
        fail("cell", EINVAL);
    /* Opened now, before the cell's file system becomes read-only: each
     * task writes itself ("0") into them before it gives up root. On
     * cgroup v1 that is the group's "tasks" file: a single-threaded
     * process moves there without the global lock that cgroup.procs
     * takes, whose wait for an RCU grace period added milliseconds to a
     * task's start on a loaded machine (measured: up to 20 ms, against
     * 0.1 ms at most through "tasks"). */
    int cg[MAX_LIST];
    for (int i = 0; i < o->ncgroup; i++) {
        char path[PATH_MAX], step[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/tasks", o->cgroup[i]);
        if ((cg[i] = open(path, O_WRONLY | O_CLOEXEC)) < 0 && errno == ENOENT) {
            snprintf(path, sizeof path, "%s/cgroup.procs", o->cgroup[i]);
            cg[i] = open(path, O_WRONLY | O_CLOEXEC);
        }
        if (cg[i] < 0) {
            snprintf(step, sizeof step, "cgroup %s", o->cgroup[i]);
            fail(step, errno);
        }
    }
    /* Also now, as root on the host's file system: the script lies next to
     * the server, whose directory the cell hides (and may be under a 0700
     * home). Without it, python tasks start cold. */
    int script = -1, script_errno = 0;
    if (o->pyfork && (script = open(o->pyfork, O_RDONLY | O_CLOEXEC)) < 0)
        script_errno = errno;
    make_namespaces(o);
    pid_t init = fork();
    if (init < 0)
        fail("fork", errno);
    if (init == 0)
        run_cell_init(o, cg, o->ncgroup, script, script_errno);
    if (script >= 0)
        close(script);
    /* Only init talks to the worker: with our copy closed, its end is an
     * end of file there. */
    close(cell_sock);
    for (int i = 0; i < o->ncgroup; i++)
        close(cg[i]);
    int st;
    while (waitpid(init, &st, 0) < 0)
        if (errno != EINTR)
            _exit(127);
    mirror(st);
}

int main(int argc, char **argv)
{
    opts o;
    /* The report pipe must not reach the task. */
    fcntl(REPORT_FD, F_SETFD, FD_CLOEXEC);
    /* If the server dies (kill -9), so does the task: init follows us,
     * and the namespace with it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* This process may end by raising the task's fatal signal: never with
     * a core file. */
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    parse(argc, argv, &o);
    if (o.cell)
        cell_main(&o);
    join_cgroups(&o);
    if (!o.ns)
        mirror(supervise(&o, 0));

    /* Opened before the new mount namespace makes the host's view
     * read-only. */
    int save = o.save ? open(o.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (o.save && save < 0)
        fail("open the task directory", errno);
    make_namespaces(&o);
    int sp[2];
    if (pipe2(sp, O_CLOEXEC) < 0)
        fail("pipe", errno);
    pid_t init = fork();
    if (init < 0)
        fail("fork", errno);
    if (init == 0) {
        close(sp[0]);
        run_init(&o, sp[1], save);
    }
    close(sp[1]);
    int st;
    while (waitpid(init, &st, 0) < 0)
        if (errno != EINTR)
            fail("wait", errno);
    int task_st;
    if (read(sp[0], &task_st, sizeof task_st) == (ssize_t)sizeof task_st)
        st = task_st;
    mirror(st);
}
