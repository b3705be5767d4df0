/* tsexec_task: the task process of tasksolver-exec, from its creation to
 * the exec of the program: a session of its own, its standard fds, its
 * cgroups, its directory, resource limits, the user it runs as,
 * no_new_privs and the system call filter, then execve (with execvp's
 * /bin/sh fallback for a file the kernel refuses as ENOEXEC). Shared by
 * the per-task mode (tsexec.c) and the cell (tsexec_cell.c), so that a
 * task is locked down the same way in both. */
#ifndef TS_TSEXEC_TASK_H
#define TS_TSEXEC_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "tsexec_fs.h"
#include "tsexec_lock.h"

typedef struct tsexec_task {
    const char *dir;   /* working directory */
    const char *path;  /* program; without '/': looked up in envp's PATH */
    char *const *argv; /* argv[0] included */
    char *const *envp; /* the program's whole environment */
    char **sh_argv;    /* NULL, or room for argc + 2 pointers: the /bin/sh
                          fallback is then allowed (see runner_opts) */
    const tsexec_limits *lim;
    uid_t uid; /* (uid_t)-1: keep ours */
    gid_t gid;
    int seccomp;           /* install the filter */
    int fd[3];             /* become fds 0, 1, 2 (each >= 3); -1: keep that one */
    const int *cgroup_fds; /* open cgroup.procs (or v1 tasks) files the task joins, or NULL */
    int ncgroup;
    const int *keep_fds; /* NULL, or nkeep fds that become fds 3, 4... and stay
                            open across the exec (a helper's control socket);
                            these and report_fd must be >= 3 + nkeep */
    int nkeep;
    const uint64_t *caps; /* NULL, or for a process that stays root (uid -1):
                             the only capabilities it keeps across the exec
                             (tsexec_lock_caps) */
    int report_fd;        /* where a failure is told ("exec ERRNO", "fail STEP: TEXT"),
                             close-on-exec; the lines of runner_proc.h's wrappers */
} tsexec_task;

/* Starts the task process. Like posix_spawn, it shares our memory until it
 * has executed the program or failed (we are suspended meanwhile), so no
 * page is copied; sanitized builds fork instead. Returns the pid, or -1
 * with errno set; a failure after the process was made is reported on
 * t->report_fd and the process exits 127. Not thread-safe: one start at a
 * time (one stack). */
pid_t tsexec_task_start(const tsexec_task *t);

/* Says which limit, if any, ended a task that was reaped with status st
 * and usage ru: writes its report line ("limit cpu 30") into line, or ""
 * when none did. disk and fs: the task's private tmpfs and its size (0:
 * none), where a program that ignores SIGXFSZ leaves the evidence. */
void tsexec_task_limit(const tsexec_limits *lim, int64_t disk, const tsexec_fs *fs, int st,
                       const struct rusage *ru, char *line, size_t size);

#endif
