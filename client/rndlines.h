/* rndlines: turns the body of a worker's /rnd stream into numbers.
 *
 * The stream is a sequence of lines "rnd=NN". Bytes arrive in arbitrary
 * pieces (curl hands over whatever one chunk or one read gave), so a line
 * may be split anywhere, even inside "\r\n". The splitter keeps the
 * unfinished tail between calls and parses only complete lines.
 *
 * What counts as a value: optional blanks, "rnd=", optional blanks, an
 * optional '-', 1 to 18 decimal digits, optional blanks, then the end of the
 * line ("\n" or "\r\n"). Empty or all-blank lines are skipped without being
 * counted. Anything else is a malformed line: counted and skipped. A line
 * longer than RNDLINES_MAX_LINE bytes is malformed as a whole, and its
 * bytes are dropped as they arrive rather than buffered.
 *
 * No allocation; a rndlines is a plain value owned by its caller. */
#ifndef TS_RNDLINES_H
#define TS_RNDLINES_H

#include <stddef.h>
#include <stdint.h>

#define RNDLINES_MAX_LINE 256

typedef struct rndlines {
    char line[RNDLINES_MAX_LINE]; /* the unfinished line so far */
    size_t len;                   /* bytes in line */
    int overlong;                 /* current line passed the limit: drop to '\n' */
    uint64_t values;              /* values parsed since init */
    uint64_t malformed;           /* malformed lines since init */
    uint64_t dropped;             /* unfinished lines thrown away by rndlines_discard */
} rndlines;

/* Receives each value in stream order. Returning non-zero stops the
 * current rndlines_feed call after this value (the rest of the piece is
 * not consumed). */
typedef int (*rndlines_value_fn)(void *arg, int64_t value);

/* Makes r empty with zero counters. Cannot fail. */
void rndlines_init(rndlines *r);

/* Feeds len bytes. Calls fn for each value of each line completed by these
 * bytes. Returns the number of bytes consumed: len, or less if fn asked to
 * stop. Never fails; malformed input only moves the counters. */
size_t rndlines_feed(rndlines *r, const char *data, size_t len, rndlines_value_fn fn, void *arg);

/* The stream ended cleanly (the server finished its response): a last
 * line without a newline is complete, so parse it. Leaves r empty.
 * Returns what fn returned for it, or 0. */
int rndlines_finish(rndlines *r, rndlines_value_fn fn, void *arg);

/* The stream was cut (error, crash, abort): an unfinished line may be a
 * truncated value ("rnd=4" of "rnd=42"), so it is thrown away unparsed and
 * counted in dropped. Leaves r empty; counters are kept. */
void rndlines_discard(rndlines *r);

/* Parses one complete line (without its '\n'; a trailing '\r' is allowed).
 * Returns 1 and sets *value for a value line, 0 for a blank line, -EINVAL
 * for a malformed one. Exposed for tests. */
int rndlines_parse_line(const char *line, size_t len, int64_t *value);

#endif
