/* datadir: see datadir.h. */
#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int datadir_prepare(const char *dir, const char *file, char *err, size_t errsz)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errsz, "cannot create data directory %s: %s", dir, strerror(e));
        return -e;
    }
    struct stat sb;
    if (stat(dir, &sb) < 0) {
        int e = errno;
        snprintf(err, errsz, "data directory %s: %s", dir, strerror(e));
        return -e;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errsz, "data directory %s: not a directory", dir);
        return -ENOTDIR;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errsz, "cannot open %s: %s", path, strerror(e));
        return -e;
    }
    close(fd);
    return 0;
}

int datadir_sqlite_errno(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
        return -EACCES;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_FORMAT:
        return -EINVAL;
    default:
        return -EIO;
    }
}
