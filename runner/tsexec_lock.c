/* tsexec_lock: see tsexec_lock.h. */
#include "tsexec_lock.h"

#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static int set_limit(int res, int64_t soft, int64_t hard)
{
    struct rlimit rl = {(rlim_t)soft, (rlim_t)hard};
    return setrlimit(res, &rl) < 0 ? -errno : 0;
}

int tsexec_lock_rlimits(const tsexec_limits *l, const char **what)
{
    int rc;
    *what = "core";
    if ((rc = set_limit(RLIMIT_CORE, 0, 0)) < 0)
        return rc;
    /* The hard CPU limit one second after the soft one: SIGXCPU first
     * (it names the cause), SIGKILL for a task that catches it. */
    *what = "cpu";
    if (l->cpu > 0 && (rc = set_limit(RLIMIT_CPU, l->cpu, l->cpu + 1)) < 0)
        return rc;
    *what = "fsize";
    if (l->fsize > 0 && (rc = set_limit(RLIMIT_FSIZE, l->fsize, l->fsize)) < 0)
        return rc;
    *what = "nofile";
    if (l->nofile > 0 && (rc = set_limit(RLIMIT_NOFILE, l->nofile, l->nofile)) < 0)
        return rc;
    *what = "nproc";
    if (l->nproc > 0 && (rc = set_limit(RLIMIT_NPROC, l->nproc, l->nproc)) < 0)
        return rc;
    return 0;
}

int tsexec_lock_address_space(int64_t as)
{
    return as > 0 ? set_limit(RLIMIT_AS, as, as) : 0;
}

int tsexec_lock_user(uid_t uid, gid_t gid)
{
    if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
        return -errno;
    /* Belt and braces: with every uid set, this must fail. */
    if (uid != 0 && setuid(0) == 0)
        return -EPERM;
    return 0;
}

/* System calls refused with EPERM. Names unknown to this libseccomp or
 * this architecture are skipped. */
static const char *const denied[] = {
    /* file systems and namespaces */
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "unshare",
    "setns",
    "open_by_handle_at",
    "name_to_handle_at",
    /* other processes and the kernel */
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "lookup_dcookie",
    "syslog",
    "acct",
    "quotactl",
    "quotactl_fd",
    "nfsservctl",
    "uselib",
    "vhangup",
    "iopl",
    "ioperm",
    "fanotify_init",
    /* keyrings, swap, power, clocks, names */
    "keyctl",
    "add_key",
    "request_key",
    "swapon",
    "swapoff",
    "reboot",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    /* io_uring runs work outside this filter's view */
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
};

/* clone() flags that make new namespaces; clone3 passes its flags in
 * memory the filter cannot read, so it answers ENOSYS and libc falls back
 * to clone. */
static const unsigned long ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                         CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

int tsexec_lock_seccomp(void)
{
    /* Also sets no_new_privs before loading (SCMP_FLTATR_CTL_NNP). */
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < sizeof denied / sizeof denied[0] && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr != __NR_SCMP_ERROR && nr >= 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0] && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc < 0 ? rc : 0;
}
