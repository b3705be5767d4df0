/* cgroup: one control group per task, for a memory and a process limit
 * that cover everything the task starts, and for telling afterwards
 * whether it hit them.
 *
 * Works with cgroup v1 (the memory and pids hierarchies) and with v2 (one
 * tree with the memory and pids controllers available). Groups are made
 * below the caller's own group, so a task can never get more than the
 * server itself was given: OWN/NAME is the server's parent group, and
 * OWN/NAME/TASK the per-task ones.
 *
 * Thread-safe after cgroup_root_init: the root is read-only, and each task
 * works on its own directory. */
#ifndef TS_CGROUP_H
#define TS_CGROUP_H

#include <stddef.h>
#include <stdint.h>

enum cgroup_version { CGROUP_NONE, CGROUP_V1, CGROUP_V2 };

typedef struct cgroup_root {
    enum cgroup_version version;
    char *mem_dir;  /* parent group of the memory controller, or NULL; owned */
    char *pids_dir; /* parent group of the pids controller, or NULL; owned
                       (v2: the same directory as mem_dir, its own copy) */
} cgroup_root;

/* Finds the memory and pids controllers and makes the parent group NAME
 * below the caller's own group in each (removing stale NAME-like groups
 * "PREFIX.PID" of processes that no longer exist, killing what is left in
 * them). Returns 0 with at least one controller usable (cr->version set),
 * or -errno with cr->version CGROUP_NONE and a reason in why. On success
 * why says what is missing, if anything (else ""). */
int cgroup_root_init(cgroup_root *cr, const char *prefix, char *why, size_t whysz);

/* Removes the parent groups (they must be empty by now) and frees cr. */
void cgroup_root_destroy(cgroup_root *cr);

/* One task's group. */
typedef struct cgroup_task {
    char *mem_dir;  /* owned, or NULL */
    char *pids_dir; /* owned, or NULL (v2: the same path as mem_dir) */
} cgroup_task;

/* Makes the group NAME under the root with a memory limit (bytes, swap
 * included where the kernel accounts it; 0: none) and a process limit
 * (0: none). Returns 0, or -errno with nothing left behind. */
int cgroup_task_create(const cgroup_root *cr, const char *name, int64_t memory, long pids,
                       cgroup_task *ct);

/* What the group went through. */
typedef struct cgroup_events {
    long oom_kills; /* processes killed for going over the memory limit */
    long pids_max;  /* forks refused at the process limit */
    int64_t peak;   /* bytes: the group's peak memory use (v2 memory.peak, v1
                       memory.max_usage_in_bytes); 0: unknown */
} cgroup_events;

/* Sets ct's memory limit (bytes; 0: none) and process limit (0: none),
 * for a group that serves task after task with limits of their own. The
 * group's processes must use less than the new memory limit (v1 refuses
 * it with EBUSY otherwise). Returns 0 or -errno (some may be set then). */
int cgroup_task_set_limits(const cgroup_task *ct, int64_t memory, long pids);

/* Reads the counters of ct. Missing files count as zero. */
void cgroup_task_events(const cgroup_task *ct, cgroup_events *ev);

/* The counters of a group that serves task after task (a cell's): each
 * task's figures are the difference from the last reading, since the
 * kernel's event counts cannot be reset. The files stay open, so a task
 * costs a read per counter. */
typedef struct cgroup_watch {
    int oom_fd;       /* v1 memory.oom_control, v2 memory.events, or -1 */
    int pids_fd;      /* pids.events, or -1 */
    int peak_fd[4];   /* v1: memory(.memsw).max_usage_in_bytes and .failcnt, or -1 */
    int peak_rd;      /* v2 memory.peak (read, and written to reset it for this
                         fd alone), v1 memory.max_usage_in_bytes (read), or -1 */
    cgroup_events at; /* the counts at the last reading */
} cgroup_watch;

/* Opens ct's counters and takes the first reading. Returns 0 or -errno
 * (then nothing is open). */
int cgroup_watch_open(const cgroup_task *ct, cgroup_watch *w);

/* What the group went through since the last call (or the opening). */
void cgroup_watch_events(cgroup_watch *w, cgroup_events *ev);

/* Sets the group's high-water marks back to its current use (v1: the
 * max_usage_in_bytes and failcnt files, which a task can read), so that
 * they tell about the next task alone. v2's memory.peak is reset for our
 * own open file only (Linux >= 6.12; before, the peak stays the group's
 * since it was made). Every process of the last task must be gone. */
void cgroup_watch_reset_peaks(const cgroup_watch *w);

/* Closes the files. */
void cgroup_watch_close(cgroup_watch *w);

/* Kills whatever is still in the group, removes it and frees ct. Returns
 * 0, or -errno if the group could not be removed (it is then left). */
int cgroup_task_remove(cgroup_task *ct);

#endif
