/* live: the output of a running task, for readers that follow it as it is
 * produced (GET /stream).
 *
 * The worker appends stdout as the runner reads it; readers copy from an
 * offset and sleep on the condition variable until more arrives or the
 * task ends. Reference counted: the worker holds one reference while the
 * task runs, each reader one while it streams.
 *
 * Locking: `lock` protects data and done. It is a leaf lock, held only
 * for a memcpy, never across I/O. */
#ifndef TS_LIVE_H
#define TS_LIVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct live {
    pthread_mutex_t lock; /* protects data, done */
    pthread_cond_t more;
    buf data; /* stdout so far, at most cap bytes */
    size_t cap;
    int done;
    atomic_int refs;
} live;

/* Returns a new live buffer keeping at most cap bytes, one reference held
 * by the caller, or NULL on allocation failure. */
live *live_new(size_t cap);

/* Takes another reference. Returns l. */
live *live_ref(live *l);

/* Drops a reference; frees l with the last one. NULL is fine. */
void live_unref(live *l);

/* Appends output (dropping what is beyond the cap) and wakes readers. */
void live_append(live *l, const char *data, size_t len);

/* Marks the end of the output and wakes readers. */
void live_finish(live *l);

/* Copies up to size bytes from offset off into out, waiting until there
 * is something past off, the output ended or deadline_mono_us passed.
 * Returns the number of bytes copied; 0 with *done set when the output
 * ended at off; 0 with *done clear on timeout. */
size_t live_read(live *l, size_t off, char *out, size_t size, int64_t deadline_mono_us, int *done);

#endif
