/* nodename: see nodename.h. */
#include "nodename.h"

#include <stdio.h>
#include <unistd.h>

void nodename_get(const char *name, int port, char *out, size_t size)
{
    if (name && name[0]) {
        snprintf(out, size, "%s", name);
        return;
    }
    /* gethostname does not promise a NUL when the name is truncated: the
     * last byte stays the one set here. */
    char host[64] = "node";
    if (gethostname(host, sizeof host - 1) < 0 || !host[0])
        snprintf(host, sizeof host, "node");
    snprintf(out, size, "%s:%d", host, port);
}
