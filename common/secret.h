/* secret: bearer tokens kept in files.
 *
 * The server (--auth-token-file), cluster workers and the client commands
 * (--token-file) all read a token the same way: the first line of a file,
 * surrounding whitespace trimmed, so that a file written by `echo` or an
 * editor works. Token memory is wiped before it is freed. */
#ifndef TS_SECRET_H
#define TS_SECRET_H

#include <stddef.h>

/* Reads the token on the first line of path (at most 1023 bytes are
 * read). Returns 0 with *out set to a malloc'ed string (release it with
 * secret_free) and *len to its length (len may be NULL), -ENODATA when
 * the first line holds no token, or -errno (open, read, memory). On error
 * *out is NULL. */
int secret_read(const char *path, char **out, size_t *len);

/* Wipes and frees a token from secret_read. s may be NULL. */
void secret_free(char *s);

#endif
