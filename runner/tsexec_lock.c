/* tsexec_lock: see tsexec_lock.h. */
#include "tsexec_lock.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
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

int tsexec_lock_caps(uint64_t keep)
{
    for (int cap = 0; cap < 64; cap++) {
        if (keep & (UINT64_C(1) << cap))
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL) /* past the kernel's last capability */
                break;
            return -errno;
        }
    }
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &h, d) < 0)
        return -errno;
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
        d[i].inheritable = 0;
    if (syscall(SYS_capset, &h, d) < 0)
        return -errno;
    /* Kernels before 4.3 have no ambient set (EINVAL). */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -errno;
    return 0;
}

/* The filter, made at build time by tsexec_filter_gen with libseccomp
 * (see tsexec_filter_gen.c): building it per task took milliseconds. */
#include "tsexec_filter.h"

int tsexec_lock_seccomp(void)
{
    struct sock_fprog prog = {
        .len = (unsigned short)(sizeof tsexec_filter / sizeof tsexec_filter[0]),
        .filter = (struct sock_filter *)tsexec_filter,
    };
    /* Without no_new_privs the kernel refuses a filter from a process
     * that is not root, and setuid programs could shed it. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0 ? -errno : 0;
}
