/* tsexec_fs: the file system a sandboxed task sees, set up by
 * tasksolver-exec inside a fresh mount namespace (nothing here propagates
 * back to the host).
 *
 * - Every mount inherited from the host becomes read-only.
 * - The task directory becomes a private tmpfs of a bounded size, holding a
 *   copy of the files and directories the server put there (the program,
 *   the request's files), owned by the task's user; /tmp, /var/tmp and /dev/shm become private
 * directories on that same tmpfs, so everything a task writes counts against one limit and vanishes
 * with the namespace.
 * - Each path to hide is covered: a directory by an empty read-only
 *   tmpfs, a file by /dev/null.
 * - /proc is mounted afresh for the task's PID namespace.
 *
 * In a cell (one set-up for many tasks), the host's task directory stays
 * open: each task gets a fresh copy of its files (tsexec_fs_load), and
 * after each task the tmpfs is emptied again (tsexec_fs_clean). */
#ifndef TS_TSEXEC_FS_H
#define TS_TSEXEC_FS_H

#include <stdint.h>
#include <sys/types.h>

typedef struct tsexec_fs {
    const char *dir; /* the task directory (absolute) */
    int64_t disk;    /* bytes for the private tmpfs; 0: the tmpfs default */
    uid_t uid;       /* owner of the task's files; (uid_t)-1: leave them */
    gid_t gid;
    const char *const *hide; /* paths to cover */
    int nhide;
    int new_proc; /* mount /proc for a new PID namespace */
    int cell;     /* copy the files per task, not at set-up */
    /* Out, -1 before: */
    int scratch;         /* the private tmpfs's root, open */
    int real;            /* cell: the host's task directory, open */
    int home;            /* cell: the task directory on the tmpfs, open */
    int priv[3];         /* cell: the private /tmp, /var/tmp and /dev/shm, open */
    long base_inodes;    /* cell: inodes in use on the tmpfs when it is empty */
    const char *keep[3]; /* cell: the task directory's path below a private
                            directory it lies in, or NULL */
} tsexec_fs;

/* Initialiser for the out fields. */
#define TSEXEC_FS_CLOSED .scratch = -1, .real = -1, .home = -1, .priv = {-1, -1, -1}

/* Sets it all up. Returns 0, or -errno with a short description of the
 * failed step written into step. */
int tsexec_fs_setup(tsexec_fs *fs, char *step, size_t stepsz);

/* Cell: copies the files the server put in the host's task directory into
 * the (empty) task directory on the tmpfs, owned by the task's user.
 * Returns 0 or -errno. */
int tsexec_fs_load(tsexec_fs *fs);

/* After a run whose files the next run of the same task needs (a
 * compiler's output): copies the regular files of the directory `from`
 * that `to` lacks into `to`, mode masked to 0755, owned by the caller.
 * Nothing else is followed or copied (links, FIFOs, directories); the
 * bytes are bounded by the tmpfs they come from. Returns 0 or -errno. */
int tsexec_fs_save(int from, int to);

/* Cell, once every process of the task is dead: empties the task
 * directory, /tmp, /var/tmp and /dev/shm, gives them back their owner and
 * mode, and checks that no inode is left on the tmpfs (a hard link from
 * elsewhere included). Returns 0, or -errno with the failed step in step:
 * the cell must then not run another task. */
int tsexec_fs_clean(tsexec_fs *fs, char *step, size_t stepsz);

/* After the task: 1 if its private tmpfs has no free block or inode left. */
int tsexec_fs_full(const tsexec_fs *fs);

/* After the task: 1 if a file on its private tmpfs is at least size bytes
 * long (it ran into the file size limit; programs that ignore SIGXFSZ,
 * Python for one, only see EFBIG). */
int tsexec_fs_has_file_of(const tsexec_fs *fs, int64_t size);

#endif
