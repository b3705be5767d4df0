/* gather_wproc: one worker process of `gather`: start it on a free port,
 * read what it writes (to learn it is ready and why it died), end it.
 *
 * A thin layer over the runner library: the process runs in its own
 * session (pid == process group id), so ending it kills the whole group
 * and leaves no descendant behind. Readiness is learned from a line
 * containing "started" on stdout or stderr; the caller also tries to
 * connect, since that line is all that is known of the real worker.
 * Not thread-safe; a gwproc is owned by its caller. */
#ifndef TS_GATHER_WPROC_H
#define TS_GATHER_WPROC_H

#include <stddef.h>
#include <stdint.h>

#include "runner.h"

#define GWPROC_LINE_MAX 256

typedef struct gwproc {
    runner_proc p; /* valid while running */
    int running;   /* spawned and not yet reaped */
    int id;        /* worker id, for log lines */
    int port;      /* port it was told to listen on */
    int64_t spawn_us;
    struct {
        char buf[GWPROC_LINE_MAX];
        size_t len;
    } partial[2];        /* unfinished output line: [0] stdout, [1] stderr */
    char last_line[160]; /* last line it wrote, for error reports */
} gwproc;

/* Makes w an idle (not running) gwproc. Cannot fail. */
void gwproc_init(gwproc *w);

/* Returns a port >= base that nothing listens on now and for which
 * used(arg, port) is 0, searching from *cursor (wrapping to base after
 * 65535) and moving *cursor past it; or -EADDRINUSE if 1000 candidates
 * failed. The port is free only at the time of the check: a worker that
 * cannot listen exits and is started again elsewhere. */
int gwproc_pick_port(int *cursor, int base, int (*used)(void *arg, int port), void *arg);

/* Starts `path -workerId id -port port extra...` with stdout and stderr
 * piped to us. Returns 0 (w->running set) or -errno from runner_spawn
 * (ENOENT, EACCES... when the program cannot be run); on error w stays
 * idle. w must be idle. */
int gwproc_start(gwproc *w, const char *path, int id, int port, char *const *extra, size_t n_extra);

/* Reads what is available on stream 1 (stdout) or 2 (stderr) without
 * blocking, logs complete lines at debug level and keeps the last one.
 * Closes the pipe at end of file. Returns 1 if a line containing
 * "started" was completed, else 0. */
int gwproc_drain(gwproc *w, int stream);

/* Returns 1 if the running process has exited (not yet reaped), else 0. */
int gwproc_exited(const gwproc *w);

/* Ends a running process: SIGKILL to its group (force, or to catch
 * descendants of a leader that already exited), reap, read what is left in
 * its pipes, close everything. Writes how it ended ("exited with code 1",
 * "was killed by signal 9 (Killed)") into how. w is idle afterwards. */
void gwproc_end(gwproc *w, int force, char *how, size_t how_size);

/* Stops n running processes together: SIGTERM to every group, up to
 * grace_ms for them to exit, then SIGKILL to every group; all are reaped
 * and left idle. */
void gwproc_end_all(gwproc **ws, int n, int grace_ms);

#endif
