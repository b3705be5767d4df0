/* membudget: the one count of the memory that strangers make the server
 * hold, bounded by --max-queue-bytes.
 *
 * Two things count against it: the tasks waiting for a worker (their
 * program, arguments and the task itself, until a worker has written the
 * program to disk) and the request bodies being read and parsed. Both
 * grow with what clients send, not with anything the server controls, so
 * without a bound a backlog of big programs, or a few concurrent huge
 * bodies, took the server to gigabytes. Whatever else the server keeps is
 * bounded elsewhere: running tasks by --workers, finished ones by
 * --max-finished and --max-output.
 *
 * A holder reserves bytes before it allocates them and releases them
 * after it has freed them; a reservation that would pass the limit is
 * refused, so the sum of the holdings never exceeds it (membudget_charge
 * is the one exception, for work accepted before a restart).
 *
 * Locking: none; the count is one atomic, so every function may be called
 * from any thread, with any lock held. */
#ifndef TS_MEMBUDGET_H
#define TS_MEMBUDGET_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct membudget {
    atomic_size_t used; /* bytes held now, by every holder together */
    size_t max;         /* limit; 0: counted but unbounded */
} membudget;

/* Bytes one cJSON item costs beyond the text it copies: the 64-byte
 * struct in a 80-byte malloc chunk, plus the smallest chunks (32 bytes)
 * for its key and its string. Measured: a 64 MiB body of "1," held
 * 2.6 GB once parsed, 80 bytes for each of its 33.5 million items. */
#define MEMBUDGET_JSON_ITEM 144

/* Sets up m with a limit of max bytes (0: none) and nothing held. */
void membudget_init(membudget *m, size_t max);

/* The default limit: a quarter of the machine's memory, at most 1 GiB
 * (1 GiB if the memory size cannot be read). */
size_t membudget_default_max(void);

/* Reserves n more bytes. Returns 0; -ENOBUFS when they do not fit now
 * (they may once others release theirs); -E2BIG when n alone is over the
 * limit (they never will). On error nothing is reserved. m NULL: 0. */
int membudget_reserve(membudget *m, size_t n);

/* Counts n more bytes even past the limit: for tasks read back from the
 * journal, which were admitted before a restart. m NULL: nothing. */
void membudget_charge(membudget *m, size_t n);

/* Gives back n bytes reserved or charged before. m NULL: nothing. */
void membudget_release(membudget *m, size_t n);

/* Moves a holding from *held bytes to want bytes: releases the surplus,
 * or reserves the difference as membudget_reserve does. Returns 0 with
 * *held == want; -ENOBUFS with *held unchanged when the difference does
 * not fit now; -E2BIG, *held unchanged, when want is over the limit. m
 * NULL: 0, *held = want (nothing is counted). */
int membudget_adjust(membudget *m, size_t *held, size_t want);

/* Bytes held now (0 for NULL). */
size_t membudget_used(membudget *m);

/* The limit (0: unbounded; 0 for NULL). */
size_t membudget_max(const membudget *m);

/* Writes a sentence saying how full m is, naming the option, into out:
 * "waiting tasks and request bodies hold 67100000 of the 67108864 bytes
 * allowed by --max-queue-bytes". Returns out. */
const char *membudget_describe(membudget *m, char *out, size_t size);

/* An upper bound of the memory cJSON takes to parse the len bytes of
 * json: a copy of every string and key (at most len), and
 * MEMBUDGET_JSON_ITEM for each value, counted as one more than the commas
 * and opening brackets outside strings. One pass over the text, no
 * allocation; text that is not JSON gets a bound all the same. */
size_t membudget_json_cost(const char *json, size_t len);

#endif
