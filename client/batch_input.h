/* batch_input: the batch client's input, read as a stream of numbers.
 *
 * One number per line; whitespace around it and blank lines are ignored.
 * A number is a JSON number ("-12", "1.5", "2e3"), so it can go into a
 * request body as it is. Anything else on a line makes the line malformed:
 * it is handed to the caller to report, never dropped silently. Memory is
 * one fixed buffer whatever the input size; lines longer than
 * BATCH_MAX_LINE bytes are malformed. The reader never blocks on its own:
 * the caller polls the descriptor and calls batch_input_fill when it is
 * readable, so a slow pipe does not hold up the rest of the program. */
#ifndef TS_BATCH_INPUT_H
#define TS_BATCH_INPUT_H

#include <stddef.h>
#include <sys/types.h>

#define BATCH_MAX_LINE 4096

typedef struct batch_input {
    int fd;
    int own_fd; /* close fd on batch_input_close (not stdin) */
    char *buf;  /* owned; cap bytes */
    size_t cap, start, end;
    int eof;         /* read(2) returned 0 */
    int skipping;    /* dropping the rest of an over-long line */
    long lineno;     /* number of the line last returned */
    long long size;  /* total bytes for a regular file, else -1 */
    long long pos;   /* bytes of input consumed so far */
    const char *why; /* for BATCH_LINE_MALFORMED: static reason */
} batch_input;

/* Opens path ("-" for stdin). Returns 0 or -errno (nothing to close). */
int batch_input_open(batch_input *in, const char *path);

/* Closes the file (not stdin) and frees the buffer. */
void batch_input_close(batch_input *in);

enum batch_line {
    BATCH_LINE_END = -1,      /* input exhausted */
    BATCH_LINE_WAIT = 0,      /* no complete line buffered: poll fd, then fill */
    BATCH_LINE_NUMBER = 1,    /* *text is a number */
    BATCH_LINE_MALFORMED = 2, /* *text is the bad line (trimmed), in->why says why */
};

/* Takes the next non-blank line. For NUMBER and MALFORMED, *text and *len
 * point into the buffer (valid until the next call) and in->lineno is the
 * line's number (1-based). */
enum batch_line batch_input_next(batch_input *in, const char **text, size_t *len);

/* Reads once from the descriptor (it blocks only if nothing is ready, so
 * call it after poll said readable). Returns the bytes read, 0 at end of
 * input, or -errno (EINTR and EAGAIN give 1: nothing read, try again). */
ssize_t batch_input_fill(batch_input *in);

#endif
