/* log: see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level_cur = LOG_INFO;

static const char *const log_names[] = {"NOTE", "ERROR", "WARN", "INFO", "DEBUG"};

void log_set_level(enum log_level level)
{
    atomic_store(&log_level_cur, (int)level);
}

int log_level_parse(const char *name, enum log_level *out)
{
    static const char *const lower[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, lower[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

int log_enabled(enum log_level level)
{
    return (int)level <= atomic_load(&log_level_cur);
}

void log_write(enum log_level level, const char *file, int line, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    int saved_errno = errno;
    char buf[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int n = snprintf(buf, sizeof buf,
                     "%04d-%02d-%02d %02d:%02d:%02d.%03ldZ %-5s %s:%d: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, log_names[level + 1], base, line);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof buf) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= sizeof buf - 1)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    /* One write per line keeps lines from different threads whole. */
    ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
    (void)w;
    errno = saved_errno;
}
