/* batch_input: see batch_input.h. */
#include "batch_input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonscan.h"

/* Room for a full line plus what one read brings in. */
#define BATCH_INPUT_BUF (64 * 1024)

int batch_input_open(batch_input *in, const char *path)
{
    memset(in, 0, sizeof *in);
    in->size = -1;
    if (strcmp(path, "-") == 0) {
        in->fd = STDIN_FILENO;
    } else {
        in->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (in->fd < 0)
            return -errno;
        in->own_fd = 1;
    }
    struct stat st;
    if (fstat(in->fd, &st) == 0 && S_ISREG(st.st_mode))
        in->size = (long long)st.st_size;
    in->cap = BATCH_INPUT_BUF;
    in->buf = malloc(in->cap);
    if (!in->buf) {
        if (in->own_fd)
            close(in->fd);
        return -ENOMEM;
    }
    return 0;
}

void batch_input_close(batch_input *in)
{
    if (in->own_fd)
        close(in->fd);
    free(in->buf);
    in->buf = NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

/* Classifies the line [s, s+n). Returns BATCH_LINE_WAIT for a blank line
 * (the caller moves on). */
static enum batch_line classify(batch_input *in, const char *s, size_t n, const char **text,
                                size_t *len)
{
    while (n > 0 && is_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_space(s[n - 1]))
        n--;
    if (n == 0)
        return BATCH_LINE_WAIT;
    *text = s;
    *len = n;
    if (n > BATCH_MAX_LINE) {
        in->why = "line too long";
        return BATCH_LINE_MALFORMED;
    }
    if (!jsonscan_is_number(s, n)) {
        in->why = "not a number";
        return BATCH_LINE_MALFORMED;
    }
    return BATCH_LINE_NUMBER;
}

enum batch_line batch_input_next(batch_input *in, const char **text, size_t *len)
{
    for (;;) {
        char *s = in->buf + in->start;
        size_t avail = in->end - in->start;
        char *nl = memchr(s, '\n', avail);
        if (!nl && !in->eof) {
            if (avail > BATCH_MAX_LINE) {
                /* No end in sight: report once, then drop until newline. */
                int first = !in->skipping;
                in->pos += (long long)avail;
                in->start = in->end = 0;
                if (first) {
                    in->skipping = 1;
                    in->lineno++;
                    *text = s;
                    *len = 40;
                    in->why = "line too long";
                    return BATCH_LINE_MALFORMED;
                }
                continue;
            }
            if (in->start > 0) {
                memmove(in->buf, s, avail);
                in->start = 0;
                in->end = avail;
            }
            return BATCH_LINE_WAIT;
        }
        if (!nl && avail == 0)
            return BATCH_LINE_END;
        size_t n = nl ? (size_t)(nl - s) : avail;
        in->start += nl ? n + 1 : n;
        in->pos += (long long)(nl ? n + 1 : n);
        if (in->skipping) {
            in->skipping = 0;
            continue;
        }
        in->lineno++;
        enum batch_line r = classify(in, s, n, text, len);
        if (r != BATCH_LINE_WAIT)
            return r;
    }
}

ssize_t batch_input_fill(batch_input *in)
{
    if (in->eof)
        return 0;
    if (in->start == in->end)
        in->start = in->end = 0;
    size_t room = in->cap - in->end;
    if (room == 0)
        return 1; /* full: batch_input_next makes room */
    ssize_t n = read(in->fd, in->buf + in->end, room);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : -errno;
    if (n == 0)
        in->eof = 1;
    in->end += (size_t)n;
    return n;
}
