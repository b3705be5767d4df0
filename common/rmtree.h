/* rmtree: removing a directory tree that untrusted programs wrote in.
 *
 * Used for task directories and for the work directories of servers that
 * are gone, where a task may have left symlinks, deep nesting or entries
 * without permissions. */
#ifndef TS_RMTREE_H
#define TS_RMTREE_H

/* Removes path and everything below it without following symlinks, also
 * entries whose permissions a task changed (it must be the owner). A path
 * that does not exist is removed already. Returns 0 or -errno of the first
 * failure (-ELOOP past 256 levels), having removed all it could. */
int rmtree_path(const char *path);

/* rmtree_path for the entry `name` of the directory open as dirfd (a
 * file is unlinked, a directory removed with all below it). Same returns. */
int rmtree_at(int dirfd, const char *name);

#endif
