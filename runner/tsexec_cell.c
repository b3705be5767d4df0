/* tsexec_cell: see tsexec_cell.h. */
#include "tsexec_cell.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cell_proto.h"
#include "timefmt.h"
#include "tsexec_task.h"

/* Fds a RUN may carry: stdin, stdout, stderr, memfd. */
#define MAX_FDS 4
/* With a fork server to spare, the cleanup kills the tasks' processes
 * from a child of init's, looks again after this long, and sends the
 * kill anew if some are still there (SIGKILL from kill(-1) reaches every
 * process at once, so a second one is for a process that was not yet
 * the tasks' user). */
#define RESCAN_MS 10
#define REKILL_US 100000
/* Processes that SIGKILL has not ended after this long (stuck in the
 * kernel) end the cell instead. */
#define KILL_GIVE_UP_US (10 * INT64_C(1000000))

/* The last message received; a RUN's strings point into it. */
static char msg_buf[sizeof(cell_run_msg) + CELL_INLINE_MAX];

static int send_reply(int sock, uint32_t type, int pid, int status, int64_t cpu, const char *text)
{
    cell_reply r;
    memset(&r, 0, sizeof r);
    r.type = type;
    r.pid = pid;
    r.status = status;
    r.cpu_us = cpu;
    if (text)
        snprintf(r.text, sizeof r.text, "%s", text);
    ssize_t n;
    do
        n = send(sock, &r, sizeof r, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof r ? 0 : -1;
}

void tsexec_cell_fail(int sock, const char *text)
{
    send_reply(sock, CELL_FAIL, 0, 0, 0, text);
}

/* Ends the cell, saying why unless the worker went away. Exiting as PID 1
 * would kill the rest too; this does not wait for the kernel to. */
__attribute__((noreturn)) static void die(tsexec_cell *c, const char *why)
{
    if (why)
        tsexec_cell_fail(c->sock, why);
    kill(-1, SIGKILL);
    _exit(why ? 1 : 0);
}

__attribute__((format(printf, 4, 5))) static int step_fail(int err, char *step, size_t stepsz,
                                                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(step, stepsz, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < stepsz)
        snprintf(step + n, stepsz - (size_t)n, ": %s", strerror(err));
    return -err;
}

int tsexec_cell_prepare(tsexec_cell *c, char *step, size_t stepsz)
{
    c->last_pid = c->mqueue = c->null = c->sigchld = c->proc = -1;
    c->py = (tsexec_pyhost){TSEXEC_PYHOST_NONE};
    if ((c->null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
        return step_fail(errno, step, stepsz, "open /dev/null");
    if ((c->proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return step_fail(errno, step, stepsz, "open /proc");
    /* The cell's own /proc is mounted by now, so this is its PID
     * namespace's counter. */
    if ((c->last_pid = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC)) < 0)
        return step_fail(errno, step, stepsz, "open ns_last_pid");
    /* A mount of the IPC namespace's mqueue file system that is in no
     * mount table: only init can reach it, to list and remove what tasks
     * made with mq_open. */
    int fsfd = fsopen("mqueue", FSOPEN_CLOEXEC), mnt = -1;
    if (fsfd < 0 || fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
        (mnt = fsmount(fsfd, FSMOUNT_CLOEXEC, 0)) < 0 ||
        (c->mqueue = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        int e = errno;
        if (fsfd >= 0)
            close(fsfd);
        if (mnt >= 0)
            close(mnt);
        return step_fail(e, step, stepsz, "mount mqueue");
    }
    close(fsfd);
    close(mnt);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
        (c->sigchld = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
        return step_fail(errno, step, stepsz, "signalfd");
    /* Only where the tasks' user is not ours: the cleanup kills by uid. */
    if (c->uid != (uid_t)-1) {
        c->py.script = c->pyfork_fd;
        c->py.script_errno = c->pyfork_errno;
    }
    c->py.null = c->null;
    c->py.last_pid = c->last_pid;
    return 0;
}

static void close_fds(const int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* Receives one message into msg_buf, its fds (close-on-exec) into fds.
 * Returns its length, 0 at end of file, or -1 with errno (EPROTO: cut). */
static ssize_t recv_msg(int sock, int *fds, int *nfds)
{
    union {
        char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {msg_buf, sizeof msg_buf};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    *nfds = 0;
    if (n < 0)
        return -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof fd, sizeof fd);
            if (*nfds < MAX_FDS)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        close_fds(fds, *nfds);
        *nfds = 0;
        errno = EPROTO;
        return -1;
    }
    return n;
}

/* A RUN, taken apart. */
typedef struct request {
    uint32_t flags; /* CELL_* */
    const char *path;
    char **argv;
    char **envp;
    char **sh_argv;
    int fd[3]; /* stdin, stdout, stderr (the cell's /dev/null if not sent) */
    int fds[MAX_FDS];
    int nfds;
    void *map; /* the memfd's strings, mapped */
    size_t maplen;
    tsexec_limits lim; /* the task's: the cell's, with the RUN's own */
} request;

static void request_release(request *rq)
{
    close_fds(rq->fds, rq->nfds);
    rq->nfds = 0;
    if (rq->map)
        munmap(rq->map, rq->maplen);
    free(rq->argv);
    free(rq->envp);
    free(rq->sh_argv);
    memset(rq, 0, sizeof *rq);
}

/* Checks a RUN of n bytes in msg_buf and fills rq (which then owns the
 * fds). Returns 0, or -1 when the worker broke the protocol. */
static int parse_run(const tsexec_cell *c, size_t n, const int *fds, int nfds, request *rq)
{
    cell_run_msg m;
    memset(rq, 0, sizeof *rq);
    memcpy(rq->fds, fds, (size_t)nfds * sizeof *fds);
    rq->nfds = nfds;
    memcpy(&m, msg_buf, sizeof m);
    const uint32_t flag_fd[3] = {CELL_STDIN, CELL_STDOUT, CELL_STDERR};
    if (m.flags & ~(CELL_SH | CELL_STDIN | CELL_STDOUT | CELL_STDERR | CELL_MEMFD | CELL_PYTHON))
        return -1;
    rq->flags = m.flags;
    if (m.cpu < 0 || m.fsize < 0 || m.as < 0 || m.nproc < 0)
        return -1;
    rq->lim = *c->lim;
    rq->lim.cpu = m.cpu > 0 ? m.cpu : rq->lim.cpu;
    rq->lim.fsize = m.fsize > 0 ? m.fsize : rq->lim.fsize;
    rq->lim.as = m.as > 0 ? m.as : rq->lim.as;
    rq->lim.nproc = m.nproc > 0 ? m.nproc : rq->lim.nproc;
    int want = !!(m.flags & CELL_MEMFD), k = 0;
    for (int i = 0; i < 3; i++)
        want += !!(m.flags & flag_fd[i]);
    if (want != nfds || m.len == 0 || m.argc == 0 || m.argc > m.len || m.envc > m.len)
        return -1;
    for (int i = 0; i < 3; i++)
        rq->fd[i] = m.flags & flag_fd[i] ? fds[k++] : c->null;
    const char *s;
    if (m.flags & CELL_MEMFD) {
        struct stat st;
        if (n != sizeof m || m.len > CELL_STRINGS_MAX || fstat(fds[k], &st) < 0 ||
            st.st_size < (off_t)m.len)
            return -1;
        rq->map = mmap(NULL, m.len, PROT_READ, MAP_PRIVATE, fds[k], 0);
        if (rq->map == MAP_FAILED) {
            rq->map = NULL;
            return -1;
        }
        rq->maplen = m.len;
        s = rq->map;
    } else {
        if (n != sizeof m + m.len)
            return -1;
        s = msg_buf + sizeof m;
    }
    if (s[m.len - 1] != '\0')
        return -1;
    rq->argv = calloc((size_t)m.argc + 1, sizeof *rq->argv);
    rq->envp = calloc((size_t)m.envc + 1, sizeof *rq->envp);
    rq->sh_argv = m.flags & CELL_SH ? calloc((size_t)m.argc + 2, sizeof *rq->sh_argv) : NULL;
    if (!rq->argv || !rq->envp || ((m.flags & CELL_SH) && !rq->sh_argv))
        return -1;
    const char *p = s, *end = s + m.len;
    for (size_t i = 0; i < 1 + (size_t)m.argc + m.envc; i++) {
        if (p >= end)
            return -1;
        if (i == 0)
            rq->path = p;
        else if (i <= m.argc)
            rq->argv[i - 1] = (char *)p;
        else
            rq->envp[i - 1 - m.argc] = (char *)p;
        p += strlen(p) + 1; /* the last byte is a NUL */
    }
    return p == end ? 0 : -1;
}

static void drain_sigchld(const tsexec_cell *c)
{
    struct signalfd_siginfo si[8];
    while (read(c->sigchld, si, sizeof si) > 0)
        ;
}

static int64_t cpu_of(const struct rusage *ru)
{
    return (int64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000 + ru->ru_utime.tv_usec +
           ru->ru_stime.tv_usec;
}

/* Reaps children (flags: WNOHANG or 0), adding up their CPU time (the
 * fork server's, should it die, is not the task's). Returns 1 once
 * main_pid has been reaped (its status and usage in st, ru). */
static int reap(tsexec_cell *c, pid_t main_pid, int flags, int *st, struct rusage *ru, int64_t *cpu)
{
    int found = 0;
    for (;;) {
        int s;
        struct rusage r;
        pid_t p = wait4(-1, &s, flags, &r);
        if (p < 0 && errno == EINTR)
            continue;
        if (p <= 0) /* none ready, or ECHILD: none left */
            return found;
        if (tsexec_pyhost_reaped(&c->py, p))
            continue;
        *cpu += cpu_of(&r);
        if (p == main_pid) {
            *st = s;
            *ru = r;
            found = 1;
        }
    }
}

/* Sends sig to every process of the tasks' user in the cell, and to no
 * process of the cell's own: from a child of init that has become that
 * user, kill(-1) reaches exactly them (a task cannot change its uid). */
static void kill_as_tasks(const tsexec_cell *c, int sig)
{
    pid_t k = fork();
    if (k == 0) {
        if (setgroups(0, NULL) == 0 && setresgid(c->gid, c->gid, c->gid) == 0 &&
            setresuid(c->uid, c->uid, c->uid) == 0)
            kill(-1, sig);
        _exit(0);
    }
    while (k > 0 && waitpid(k, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Sends sig to every process of the running task, main_pid (0: none)
 * included. From PID 1, -1 means every other process of the namespace;
 * with a fork server to spare, the main process gets it from init (it may
 * not have become the tasks' user yet) and the rest by kill_as_tasks. */
static void signal_task(const tsexec_cell *c, pid_t main_pid, int sig)
{
    if (!tsexec_pyhost_running(&c->py)) {
        kill(-1, sig);
        return;
    }
    if (main_pid > 0)
        kill(main_pid, sig);
    kill_as_tasks(c, sig);
}

/* Takes the worker's message while a task runs: a KILL is passed on to
 * every process of the task, anything else ends the cell. */
static void take_kill(tsexec_cell *c, pid_t main_pid)
{
    int fds[MAX_FDS], nfds;
    ssize_t n = recv_msg(c->sock, fds, &nfds);
    close_fds(fds, nfds);
    cell_kill_msg k;
    if (n == 0)
        die(c, NULL); /* the worker is gone */
    if (n != (ssize_t)sizeof k)
        die(c, "protocol: a request while a task runs");
    memcpy(&k, msg_buf, sizeof k);
    if (k.op != CELL_KILL || k.sig <= 0 || k.sig >= NSIG)
        die(c, "protocol: a request while a task runs");
    signal_task(c, main_pid, k.sig);
}

/* Waits for the task's main process, reaping its orphans meanwhile and
 * passing the worker's KILLs on to every process of the task. */
static void supervise(tsexec_cell *c, pid_t main_pid, int *st, struct rusage *ru, int64_t *cpu)
{
    for (;;) {
        drain_sigchld(c);
        if (reap(c, main_pid, WNOHANG, st, ru, cpu))
            return;
        struct pollfd pf[2] = {{c->sock, POLLIN, 0}, {c->sigchld, POLLIN, 0}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die(c, "poll failed");
        }
        if (pf[0].revents)
            take_kill(c, main_pid);
    }
}

/* Waits for the end of a task the fork server started: the server's
 * report; or, should the server die first, the task itself, which is
 * then an orphan of init's. Reaps the task's orphans meanwhile and passes
 * the worker's KILLs on. A task that could not set itself up says why in
 * report ("fail ..."). */
static void supervise_warm(tsexec_cell *c, pid_t main_pid, int *st, struct rusage *ru, int64_t *cpu,
                           char *report, size_t size)
{
    int lost = 0;
    for (;;) {
        drain_sigchld(c);
        if (!lost && !tsexec_pyhost_running(&c->py)) {
            lost = 1;
            snprintf(report, size,
                     "note warm Python: the fork server died while the task ran; "
                     "the cell saw the task to its end\n");
        }
        if (reap(c, main_pid, WNOHANG, st, ru, cpu))
            return;
        if (!tsexec_pyhost_running(&c->py)) {
            /* The server has been reaped, so its child, if alive, is ours
             * now; if not, the server reaped it and died before it said
             * how it ended. */
            siginfo_t si;
            if (waitid(P_PID, (id_t)main_pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
                errno == ECHILD) {
                *st = SIGKILL;
                snprintf(report, size,
                         "note warm Python: the fork server died as the task "
                         "ended; how it ended is not known\n");
                return;
            }
        }
        int sfd = tsexec_pyhost_fd(&c->py);
        struct pollfd pf[3] = {{c->sock, POLLIN, 0}, {c->sigchld, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(pf, sfd >= 0 ? 3 : 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die(c, "poll failed");
        }
        if (pf[0].revents)
            take_kill(c, main_pid);
        if (sfd < 0 || !pf[2].revents)
            continue;
        pyfork_result r;
        int rc = tsexec_pyhost_wait(&c->py, &r);
        if (rc <= 0)
            continue; /* not yet; or the server is gone: see above */
        if (!r.started) {
            *st = W_EXITCODE(127, 0);
            snprintf(report, size, "fail %s\n", r.why);
            return;
        }
        *st = r.wstatus;
        memset(ru, 0, sizeof *ru);
        ru->ru_utime.tv_sec = (time_t)(r.utime_us / 1000000);
        ru->ru_utime.tv_usec = (suseconds_t)(r.utime_us % 1000000);
        ru->ru_stime.tv_sec = (time_t)(r.stime_us / 1000000);
        ru->ru_stime.tv_usec = (suseconds_t)(r.stime_us % 1000000);
        ru->ru_maxrss = r.maxrss_kb;
        *cpu += r.utime_us + r.stime_us;
        return;
    }
}

/* The parent of pid in the cell, from its /proc; -1 if it is gone. */
static pid_t parent_of(const tsexec_cell *c, long pid)
{
    char path[32], buf[512];
    snprintf(path, sizeof path, "%ld/stat", pid);
    int fd = openat(c->proc, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* "PID (COMM) STATE PPID ...": COMM may hold anything, ')' too. */
    char *end = strrchr(buf, ')');
    char state;
    long ppid;
    if (!end || sscanf(end + 1, " %c %ld", &state, &ppid) != 2)
        return -1;
    return (pid_t)ppid;
}

/* 1 if the cell has a process that is neither init nor the fork server
 * nor its spare (zombies included: init reaps its own, the server its
 * task). */
static int others_left(const tsexec_cell *c)
{
    char buf[4096];
    if (lseek(c->proc, 0, SEEK_SET) < 0)
        return 1;
    ssize_t n;
    while ((n = syscall(SYS_getdents64, c->proc, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *de = (struct dirent64 *)(void *)(buf + off);
            off += de->d_reclen;
            char *end;
            long pid = strtol(de->d_name, &end, 10);
            if (*end || end == de->d_name)
                continue;
            if (pid != 1 && pid != c->py.pid &&
                !(c->py.spare && tsexec_pyhost_is_spare(&c->py, parent_of(c, pid))))
                return 1;
        }
    }
    return n < 0;
}

/* kill_all with a fork server that must live on: the tasks' processes are
 * killed by kill_as_tasks, and the cell's /proc, not init's children,
 * tells when none is left (the task's main process was the server's). */
static void kill_all_but_server(tsexec_cell *c, int64_t *cpu)
{
    int64_t start = time_mono_us(), killed = 0;
    int st;
    struct rusage ru;
    for (;;) {
        reap(c, -1, WNOHANG, &st, &ru, cpu);
        if (!others_left(c))
            return;
        int64_t now = time_mono_us();
        if (!tsexec_pyhost_running(&c->py)) {
            kill(-1, SIGKILL); /* the server died meanwhile: nothing to spare */
        } else if (!killed || now - killed >= REKILL_US) {
            kill_as_tasks(c, SIGKILL);
            killed = now;
        }
        if (now - start > KILL_GIVE_UP_US)
            die(c, "cleanup: processes of a task outlived SIGKILL");
        struct pollfd pf = {c->sigchld, POLLIN, 0};
        if (poll(&pf, 1, RESCAN_MS) > 0)
            drain_sigchld(c);
    }
}

/* Kills every process left in the cell and reaps them all: orphans land
 * on init, so no child left means no process left. */
static void kill_all(tsexec_cell *c, int64_t *cpu)
{
    if (tsexec_pyhost_running(&c->py)) {
        kill_all_but_server(c, cpu);
        return;
    }
    /* Most tasks leave nothing: kill(-1) walks every process of the
     * machine, so it is only sent when init has children. */
    siginfo_t si;
    si.si_pid = 0;
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD)
        return;
    kill(-1, SIGKILL);
    for (;;) {
        int s;
        struct rusage r;
        pid_t p = wait4(-1, &s, 0, &r);
        if (p > 0)
            *cpu += cpu_of(&r);
        else if (errno != EINTR)
            return;
    }
}

/* Removes the SysV IPC objects of the cell's IPC namespace: what
 * /proc/sysvipc/{shm,sem,msg} lists, found through the *_INFO and *_STAT
 * calls (three calls when there is nothing, instead of reading three
 * files). Nothing is attached any more: every process is dead. */
static int ipc_clean(char *step, size_t stepsz)
{
    struct shm_info shi;
    struct shmid_ds shd;
    int max = shmctl(0, SHM_INFO, (struct shmid_ds *)(void *)&shi);
    if (max < 0)
        return step_fail(errno, step, stepsz, "shm info");
    for (int i = 0; shi.used_ids > 0 && i <= max; i++) {
        int id = shmctl(i, SHM_STAT, &shd);
        if (id >= 0 && shmctl(id, IPC_RMID, NULL) < 0)
            return step_fail(errno, step, stepsz, "remove shm %d", id);
    }
    struct seminfo smi;
    struct semid_ds smd;
    max = semctl(0, 0, SEM_INFO, &smi);
    if (max < 0)
        return step_fail(errno, step, stepsz, "sem info");
    for (int i = 0; smi.semusz > 0 && i <= max; i++) {
        int id = semctl(i, 0, SEM_STAT, &smd);
        if (id >= 0 && semctl(id, 0, IPC_RMID) < 0)
            return step_fail(errno, step, stepsz, "remove sem %d", id);
    }
    struct msginfo mgi;
    struct msqid_ds mgd;
    max = msgctl(0, MSG_INFO, (struct msqid_ds *)(void *)&mgi);
    if (max < 0)
        return step_fail(errno, step, stepsz, "msg info");
    for (int i = 0; mgi.msgpool > 0 && i <= max; i++) {
        int id = msgctl(i, MSG_STAT, &mgd);
        if (id >= 0 && msgctl(id, IPC_RMID, NULL) < 0)
            return step_fail(errno, step, stepsz, "remove msg %d", id);
    }
    if (shmctl(0, SHM_INFO, (struct shmid_ds *)(void *)&shi) < 0 || shi.used_ids > 0 ||
        semctl(0, 0, SEM_INFO, &smi) < 0 || smi.semusz > 0 ||
        msgctl(0, MSG_INFO, (struct msqid_ds *)(void *)&mgi) < 0 || mgi.msgpool > 0)
        return step_fail(EBUSY, step, stepsz, "SysV IPC objects left");
    return 0;
}

/* Removes the POSIX message queues (a flat directory). */
static int mqueue_clean(const tsexec_cell *c, char *step, size_t stepsz)
{
    char buf[2048];
    for (int pass = 0; pass < 8; pass++) {
        int found = 0;
        ssize_t n;
        if (lseek(c->mqueue, 0, SEEK_SET) < 0)
            return step_fail(errno, step, stepsz, "mqueue");
        while ((n = syscall(SYS_getdents64, c->mqueue, buf, sizeof buf)) > 0) {
            for (ssize_t off = 0; off < n;) {
                struct dirent64 *de = (struct dirent64 *)(void *)(buf + off);
                off += de->d_reclen;
                const char *nm = de->d_name;
                if (nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2])))
                    continue;
                found++;
                if (unlinkat(c->mqueue, nm, 0) < 0 && errno != ENOENT)
                    return step_fail(errno, step, stepsz, "remove mqueue %s", nm);
            }
        }
        if (n < 0)
            return step_fail(errno, step, stepsz, "mqueue");
        if (!found)
            return 0;
    }
    return step_fail(EBUSY, step, stepsz, "mqueues left");
}

/* Everything a task can leave behind, once all its processes are dead. */
static int cleanup(tsexec_cell *c, char *step, size_t stepsz)
{
    int rc;
    if ((rc = tsexec_fs_clean(c->fs, step, stepsz)) < 0 || (rc = ipc_clean(step, stepsz)) < 0 ||
        (rc = mqueue_clean(c, step, stepsz)) < 0)
        return rc;
    /* The next task is pid 2 again, whatever the last one forked. */
    if (pwrite(c->last_pid, "1", 1, 0) < 0)
        return step_fail(errno, step, stepsz, "ns_last_pid");
    drain_sigchld(c);
    return 0;
}

/* The task's rlimits, as the fork server's children take them (as
 * tsexec_lock_rlimits and tsexec_lock_address_space set them). Returns
 * how many. */
static size_t python_limits(const tsexec_limits *l, pyfork_rlimit lim[6])
{
    size_t n = 0;
    lim[n++] = (pyfork_rlimit){"core", 0, 0};
    if (l->cpu > 0)
        lim[n++] = (pyfork_rlimit){"cpu", (rlim_t)l->cpu, (rlim_t)l->cpu + 1};
    if (l->fsize > 0)
        lim[n++] = (pyfork_rlimit){"fsize", (rlim_t)l->fsize, (rlim_t)l->fsize};
    if (l->nofile > 0)
        lim[n++] = (pyfork_rlimit){"nofile", (rlim_t)l->nofile, (rlim_t)l->nofile};
    if (l->nproc > 0)
        lim[n++] = (pyfork_rlimit){"nproc", (rlim_t)l->nproc, (rlim_t)l->nproc};
    if (l->as > 0)
        lim[n++] = (pyfork_rlimit){"as", (rlim_t)l->as, (rlim_t)l->as};
    return n;
}

/* Starts rq, a python task (PYTHON MAIN ARGS...), from the cell's fork
 * server, which is started first if need be, and replaced once if it
 * fails before the task could start. Returns 1 with *pid, or 0 when the
 * task is to start cold; note then says why, when that is news. */
static int start_warm(tsexec_cell *c, const request *rq, pid_t *pid, char *note, size_t size)
{
    if (!rq->argv[0] || !rq->argv[1])
        return 0;
    pyfork_rlimit lim[6];
    pyfork_task t = {
        .dir = c->fs->dir,
        .main = rq->argv[1],
        .args = rq->argv + 2,
        .envp = rq->envp,
        .switch_user = 1,
        .uid = c->uid,
        .gid = c->gid,
        .limits = lim,
        .nlimits = python_limits(&rq->lim, lim),
        .cgroup_fds = c->cgroup_fds,
        .ncgroup_fds = (size_t)c->ncgroup,
        .stdin_fd = rq->fd[0],
        .stdout_fd = rq->fd[1],
        .stderr_fd = rq->fd[2],
    };
    char why[160], first[160] = "";
    for (int attempt = 0;; attempt++) {
        int rc = tsexec_pyhost_start(&c->py, rq->path, rq->argv[0], rq->envp, why, sizeof why);
        if (rc < 0) {
            if (why[0])
                snprintf(note, size,
                         "warm Python: the fork server could not start: %s; python tasks "
                         "start cold for %d s",
                         why, TSEXEC_PYHOST_RETRY_S);
            return 0;
        }
        if (tsexec_pyhost_run(&c->py, &t, pid, why, sizeof why) == 0) {
            if (attempt)
                snprintf(note, size, "warm Python: %s; a new one started the task", first);
            return 1;
        }
        /* Whatever the server forked before it failed must not run along
         * with the task's next start. */
        int64_t ignored = 0;
        kill_all(c, &ignored);
        /* A server still running refused the task; a stopped one is
         * replaced once. */
        if (tsexec_pyhost_running(&c->py) || attempt > 0)
            break;
        snprintf(first, sizeof first, "%s", why);
    }
    snprintf(note, size, "warm Python: %s; the task started cold", why);
    return 0;
}

/* Runs one task to its end and reports; then cleans up. */
static void run_one(tsexec_cell *c, request *rq)
{
    char report[sizeof((cell_reply *)0)->text] = "", note[256] = "";
    int64_t cpu = 0;
    int st = W_EXITCODE(127, 0);
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t pid = -1;
    int warm = 0, rc = tsexec_fs_load(c->fs), rp[2];
    if (rc < 0) {
        snprintf(report, sizeof report, "fail copy the task's files: %s\n", strerror(-rc));
    } else if ((rq->flags & CELL_PYTHON) &&
               (warm = start_warm(c, rq, &pid, note, sizeof note)) != 0) {
        /* Started from the fork server: it reports how. */
    } else if (pipe2(rp, O_CLOEXEC) < 0) {
        snprintf(report, sizeof report, "fail pipe: %s\n", strerror(errno));
    } else {
        /* Cold, the task is pid 2 as after any cleanup: not the spare's. */
        if (c->py.spare && tsexec_pyhost_drop_spare(&c->py) == 0 &&
            pwrite(c->last_pid, "1", 1, 0) < 0)
            die(c, "ns_last_pid: cannot be written");
        tsexec_task t = {
            .dir = c->fs->dir,
            .path = rq->path,
            .argv = rq->argv,
            .envp = rq->envp,
            .sh_argv = rq->sh_argv,
            .lim = &rq->lim,
            .uid = c->uid,
            .gid = c->gid,
            .seccomp = c->seccomp,
            .fd = {rq->fd[0], rq->fd[1], rq->fd[2]},
            .cgroup_fds = c->cgroup_fds,
            .ncgroup = c->ncgroup,
            .report_fd = rp[1],
        };
        pid = tsexec_task_start(&t);
        int e = errno;
        close(rp[1]);
        if (pid < 0) {
            snprintf(report, sizeof report, "fail fork: %s\n", strerror(e));
        } else {
            /* By now the task has executed the program (end of file) or
             * reported why not and exited. */
            size_t len = 0;
            ssize_t n;
            while (len < sizeof report - 1 &&
                   ((n = read(rp[0], report + len, sizeof report - 1 - len)) > 0 ||
                    (n < 0 && errno == EINTR)))
                len += n > 0 ? (size_t)n : 0;
            report[len] = '\0';
        }
        close(rp[0]);
    }
    const tsexec_limits lim = rq->lim; /* the release clears rq */
    request_release(rq);
    if (send_reply(c->sock, CELL_STARTED, pid > 0 ? pid : 0, 0, 0, NULL) < 0)
        die(c, NULL);
    if (pid > 0) {
        if (warm)
            supervise_warm(c, pid, &st, &ru, &cpu, report, sizeof report);
        else
            supervise(c, pid, &st, &ru, &cpu);
        char line[128];
        tsexec_task_limit(&lim, c->fs->disk, c->fs, st, &ru, line, sizeof line);
        size_t len = strlen(report);
        if (line[0])
            snprintf(report + len, sizeof report - len, "%s\n", line);
    }
    kill_all(c, &cpu);
    if (note[0]) {
        size_t len = strlen(report);
        snprintf(report + len, sizeof report - len, "note %s\n", note);
    }
    if (send_reply(c->sock, CELL_EXIT, 0, st, cpu, report) < 0)
        die(c, NULL);
    char step[512], why[600];
    if (cleanup(c, step, sizeof step) < 0) {
        snprintf(why, sizeof why, "cleanup: %s", step);
        die(c, why);
    }
    /* Forked now, the spare is what a fork for the next task would be; a
     * server that is gone is replaced by the next python task. After a
     * python task only: the next one is likely one too, and others drop
     * the spare (a wasted fork). */
    if (warm)
        tsexec_pyhost_prefork(&c->py);
}

void tsexec_cell_serve(tsexec_cell *c)
{
    if (pwrite(c->last_pid, "1", 1, 0) < 0)
        die(c, "ns_last_pid: cannot be written");
    for (;;) {
        if (send_reply(c->sock, CELL_READY, 0, 0, 0, NULL) < 0)
            die(c, NULL);
        int fds[MAX_FDS], nfds;
        ssize_t n;
        cell_run_msg m;
        for (;;) {
            n = recv_msg(c->sock, fds, &nfds);
            if (n == 0)
                die(c, NULL);
            if (n < 0)
                die(c, "protocol: a message could not be received");
            memcpy(&m, msg_buf, sizeof m.op);
            /* A KILL that crossed the last EXIT. */
            if (n == (ssize_t)sizeof(cell_kill_msg) && m.op == CELL_KILL && nfds == 0)
                continue;
            break;
        }
        request rq;
        if ((size_t)n < sizeof m || m.op != CELL_RUN ||
            parse_run(c, (size_t)n, fds, nfds, &rq) < 0) {
            if ((size_t)n < sizeof m || m.op != CELL_RUN)
                close_fds(fds, nfds);
            else
                request_release(&rq);
            die(c, "protocol: not a valid RUN");
        }
        run_one(c, &rq);
    }
}
