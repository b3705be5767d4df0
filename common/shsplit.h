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

/* Splits s (len bytes; s may be NULL when len is 0) into a NULL-terminated
 * vector. A NUL byte anywhere is rejected, since it would end up inside a
 * word that execve cannot pass on. Blank-only input gives zero words.
 * Returns 0 and sets *argv_out and *argc_out; the vector and its strings are
 * one allocation, freed with shsplit_free (never free single words).
 * Returns -EINVAL for an unterminated quote, a trailing backslash or a NUL,
 * or -ENOMEM; then *err, if non-NULL, points to a static message
 * ("unterminated single quote", "unterminated double quote", "trailing
 * backslash", "NUL byte in command line", "out of memory").
 * On error nothing is allocated and *argv_out, *argc_out are unchanged. */
int shsplit(const char *s, size_t len, char ***argv_out, int *argc_out, const char **err);

/* Frees a vector returned by shsplit (NULL is fine). */
void shsplit_free(char **argv);

#endif
