/* nodename: the name a node goes by, one rule for the shared store's
 * nodes table (server/main.c) and cluster mode's announces and job store
 * (cluster/cluster.c), so that one node is one name in both.
 *
 * Locking: none; reads the host name. */
#ifndef TS_NODENAME_H
#define TS_NODENAME_H

#include <stddef.h>

/* The name of a node listening on port: name (--name) when not empty,
 * else HOSTNAME:PORT ("node:PORT" when the host has no name). Writes it,
 * truncated to size - 1 bytes, NUL-terminated, into out (size > 0). */
void nodename_get(const char *name, int port, char *out, size_t size);

#endif
