/* log: see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jsonw.h"

/* Longest line written, newline included; longer messages are cut. */
#define LOG_LINE_MAX 2048

static atomic_int log_level_cur = LOG_INFO;

static const char *const log_names[] = {"NOTE", "ERROR", "WARN", "INFO", "DEBUG"};

void log_set_level(enum log_level level)
{
    atomic_store(&log_level_cur, (int)level);
}

int log_enabled(enum log_level level)
{
    return (int)level <= atomic_load(&log_level_cur);
}

/* Appends the escape of the n bytes at p (one character, or one byte of
 * invalid UTF-8) to out at *o, all of it or nothing. Returns 0, or -1 when
 * it does not fit in room. */
static int log_put_escaped(char *out, size_t room, size_t *o, const unsigned char *p, size_t n)
{
    char esc[16];
    size_t k = 0;
    for (size_t j = 0; j < n && j < 2; j++) {
        unsigned char c = p[j];
        const char *named = c == '\n'   ? "\\n"
                            : c == '\r' ? "\\r"
                            : c == '\t' ? "\\t"
                            : c == '\\' ? "\\\\"
                                        : NULL;
        k += (size_t)(named ? snprintf(esc + k, sizeof esc - k, "%s", named)
                            : snprintf(esc + k, sizeof esc - k, "\\x%02x", c));
    }
    if (*o + k > room)
        return -1;
    memcpy(out + *o, esc, k);
    *o += k;
    return 0;
}

/* Copies the len bytes at in to out (room bytes) so that they stay on one
 * line and say only what they hold: control characters, DEL, the C1
 * controls U+0080-U+009F (some terminals act on them) and every byte of
 * invalid UTF-8 become \n, \r, \t or \xHH, and a backslash becomes "\\"
 * so that no text can pass for an escape. Valid UTF-8 is copied whole,
 * never cut inside a character. Returns the number of bytes written. */
static size_t log_escape(char *out, size_t room, const char *in, size_t len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i = 0;
    while (i < len) {
        size_t end = i + jsonw_utf8_valid_prefix(in + i, len - i);
        while (i < end) {
            unsigned char c = s[i];
            /* The length of a valid sequence, from its lead byte. */
            size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            int c1 = c == 0xC2 && s[i + 1] < 0xA0;
            if (c < 0x20 || c == 0x7f || c == '\\' || c1) {
                if (log_put_escaped(out, room, &o, s + i, n) < 0)
                    return o;
            } else {
                if (o + n > room)
                    return o;
                memcpy(out + o, s + i, n);
                o += n;
            }
            i += n;
        }
        if (i < len) {
            if (log_put_escaped(out, room, &o, s + i, 1) < 0)
                return o;
            i++;
        }
    }
    return o;
}

void log_write(enum log_level level, const char *file, int line, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    int saved_errno = errno;
    /* Two buffers of 2 KiB: callers include civetweb's connection threads,
     * whose stacks are 100 KiB. */
    char out[LOG_LINE_MAX], msg[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int n = snprintf(out, sizeof out,
                     "%04d-%02d-%02d %02d:%02d:%02d.%03ldZ %-5s %s:%d: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, log_names[level + 1], base, line);
    if (n < 0 || (size_t)n >= sizeof out - 1)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m > 0) {
        /* Messages carry client strings (worker names, error texts of
         * worker nodes): escaped here, no caller can forget to. */
        size_t len = (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1;
        n += (int)log_escape(out + n, sizeof out - 1 - (size_t)n, msg, len);
    }
    out[n++] = '\n';
    /* One write per line keeps lines from different threads whole. */
    ssize_t w = write(STDERR_FILENO, out, (size_t)n);
    (void)w;
    errno = saved_errno;
}
