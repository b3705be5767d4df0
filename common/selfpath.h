/* selfpath: files installed next to our own executable (the sandbox's
 * exec helper, warm Python's fork server), found the same way in the build
 * tree and in the install tree. */
#ifndef TS_SELFPATH_H
#define TS_SELFPATH_H

#include <stddef.h>

/* Writes "DIR/name" to out, DIR being the directory of the running
 * executable (/proc/self/exe). Returns 0, -ENAMETOOLONG when out is too
 * small, or -errno from readlink. */
int selfpath_sibling(const char *name, char *out, size_t size);

#endif
