/* tsexec_lock: what tasksolver-exec does to a task process just before it
 * executes the program: resource limits, giving up root, and a system call
 * filter. Each call is made once, in the single-threaded child. */
#ifndef TS_TSEXEC_LOCK_H
#define TS_TSEXEC_LOCK_H

#include <stdint.h>
#include <sys/types.h>

/* Limits; 0 means: leave that one alone. */
typedef struct tsexec_limits {
    int64_t cpu;    /* seconds of CPU time: SIGXCPU, then SIGKILL a second later */
    int64_t fsize;  /* bytes per file written: SIGXFSZ */
    int64_t nofile; /* open files */
    int64_t nproc;  /* processes of the user (counted per user, not per task) */
    int64_t as;     /* bytes of address space, where no cgroup limits memory */
} tsexec_limits;

/* Sets the limits but `as`, and always RLIMIT_CORE to 0 (a core file
 * would land in the task directory, or worse). Returns 0 or -errno with
 * *what naming the limit. */
int tsexec_lock_rlimits(const tsexec_limits *l, const char **what);

/* Sets RLIMIT_AS (0: leaves it), to be called last before exec: later
 * allocations may fail. Returns 0 or -errno. */
int tsexec_lock_address_space(int64_t as);

/* Drops every group and becomes uid/gid for good (real, effective and
 * saved), then checks that root cannot be regained. Returns 0 or -errno. */
int tsexec_lock_user(uid_t uid, gid_t gid);

/* For a process that stays root but must hold no more than keep (bits
 * 1 << CAP_X) once it executes a program: drops every other capability
 * from the bounding set, which is all an exec as root gets, and empties
 * the inheritable and ambient sets, which could add some back. The
 * current sets are left alone until the exec. Returns 0 or -errno. */
int tsexec_lock_caps(uint64_t keep);

/* Sets no_new_privs (setuid programs cannot raise privileges again) and
 * installs a filter that refuses, with EPERM, the system calls a task has
 * no business making: mounts, namespaces, ptrace, kernel modules, kexec,
 * BPF, perf, keyrings, swap, reboot, clock setting (the list is in
 * tsexec_filter_gen.c). Returns 0 or -errno. */
int tsexec_lock_seccomp(void);

#endif
