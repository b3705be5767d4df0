/* timefmt: see timefmt.h. */
#include "timefmt.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t time_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t time_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

char *time_fmt_utc(int64_t us, char *out)
{
    time_t sec = (time_t)(us / 1000000);
    int ms = (int)((us % 1000000) / 1000);
    if (us < 0 && us % 1000000) {
        sec -= 1;
        ms = (int)((1000000 + us % 1000000) / 1000);
    }
    struct tm tm;
    gmtime_r(&sec, &tm);
    /* Sized for any int the compiler can imagine; real dates use 24 bytes. */
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02d %02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    memcpy(out, tmp, TIMEFMT_LEN - 1);
    out[TIMEFMT_LEN - 1] = '\0';
    return out;
}
