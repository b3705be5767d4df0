/* timefmt: wall-clock and monotonic time helpers. */
#ifndef TS_TIMEFMT_H
#define TS_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Current wall-clock time in microseconds since the epoch. */
int64_t time_now_us(void);

/* Current CLOCK_MONOTONIC time in microseconds. */
int64_t time_mono_us(void);

/* Formats a wall-clock time as "2024-11-10 00:00:00.123Z" (UTC, millisecond
 * precision) into out, which must hold TIMEFMT_LEN bytes. Returns out. */
#define TIMEFMT_LEN 32
char *time_fmt_utc(int64_t us, char *out);

#endif
