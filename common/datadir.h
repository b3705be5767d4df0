/* datadir: the --data-dir directory and the SQLite files kept in it (the
 * task journal, the job store): making the directory, creating a file in
 * it privately, and telling an SQLite result as an errno. */
#ifndef TS_DATADIR_H
#define TS_DATADIR_H

#include <stddef.h>

/* Makes dir (mode 0700) if missing, checks that it is a directory, and
 * opens DIR/file for writing, creating it mode 0600 (its contents are
 * private; SQLite gives its WAL the same mode). Returns 0 or -errno with
 * a sentence naming the problem in err. */
int datadir_prepare(const char *dir, const char *file, char *err, size_t errsz);

/* -errno for an SQLite result code: -ENOSPC, -ENOMEM, -EBUSY (locked by
 * another connection), -EACCES, -EINVAL (not a database, corrupt), else
 * -EIO. */
int datadir_sqlite_errno(int sqlite_rc);

#endif
