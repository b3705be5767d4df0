/* shsplit: split a command-line string into words the way a POSIX shell
 * tokenises, without any expansion.
 *
 * Rules: unquoted blanks (space, tab, newline) separate words; '...' keeps
 * everything literally; "..." keeps everything literally except that a
 * backslash escapes $ ` " \ and newline (backslash-newline is removed);
 * outside quotes a backslash makes the next character literal and a
 * backslash-newline is removed. Quotes can join parts ("a"'b'c -> abc) and
 * an empty quoted string is a word (''). No globbing, variables, tilde,
 * command substitution, comments or operators: "$HOME", "*", "#", "|" and
 * ";" are ordinary characters. */
#ifndef TS_SHSPLIT_H
#define TS_SHSPLIT_H

#include <stddef.h>

/* Splits s (len bytes; NUL bytes are ordinary characters only up to len,
 * but a word containing NUL is rejected) into a NULL-terminated vector.
 * Returns 0 and sets *argv_out (free with shsplit_free) and *argc_out, or
 * -EINVAL for an unterminated quote or trailing backslash or NUL (then
 * *err, if non-NULL, points to a static message such as "unterminated
 * single quote"), or -ENOMEM. On error nothing is allocated. */
int shsplit(const char *s, size_t len, char ***argv_out, int *argc_out, const char **err);

/* Frees a vector returned by shsplit (NULL is fine). */
void shsplit_free(char **argv);

#endif
