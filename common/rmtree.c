/* rmtree: see rmtree.h. */
#include "rmtree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Removes name under the directory open as parent, depth levels below
 * the top. */
static int rmtree_below(int parent, const char *name, int depth)
{
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    /* Deeper than any tree we make: a task nesting on and on. */
    if (depth > 256)
        return -ELOOP;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES) {
        /* The task removed its own permissions; we own the entries. */
        if (fchmodat(parent, name, 0700, 0) == 0)
            fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0)
        return -errno;
    fchmod(fd, 0700);
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = rmtree_below(dirfd(d), de->d_name, depth + 1);
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

int rmtree_at(int dirfd, const char *name)
{
    return rmtree_below(dirfd, name, 0);
}

int rmtree_path(const char *path)
{
    return rmtree_below(AT_FDCWD, path, 0);
}
