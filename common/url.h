/* url: the base URLs nodes of a cluster are reached on.
 *
 * One rule for every place a node's URL comes from: the master's URL given
 * to --join, a node's --advertise, and the "url" a node announces. */
#ifndef TS_URL_H
#define TS_URL_H

#include <stddef.h>

/* Checks that s is a base URL: "http://" or "https://" (any case), then
 * at least one character, none of them a blank or a control character;
 * trailing slashes are not counted. max (0: no limit) bounds the length
 * without them, NUL included, as the buffer it is copied into would.
 * Returns 0 with *len (may be NULL) the length without the trailing
 * slashes, or -EINVAL with *why (may be NULL) pointing to a static text
 * completing "'S' is ...". */
int url_check(const char *s, size_t max, size_t *len, const char **why);

#endif
