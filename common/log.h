/* log: levelled logging to stderr with the source location of the caller.
 *
 * One line per message: "2024-11-10 00:00:00.123Z LEVEL file.c:42: text".
 * Thread-safe: each line is written with a single write(2). The text is
 * escaped, so that a client string in a message cannot end the line or
 * forge another: control characters become \n, \r, \t or \xHH, as do the
 * C1 controls and each byte of invalid UTF-8; a backslash becomes "\\".
 * Lines are cut at 2 KiB. */
#ifndef TS_LOG_H
#define TS_LOG_H

/* LOG_NOTICE lines are printed at every level: start-up and shutdown facts
 * an operator always needs (the listening address, for one). */
enum log_level { LOG_NOTICE = -1, LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Sets the most verbose level that is printed (default LOG_INFO). */
void log_set_level(enum log_level level);

/* Returns non-zero if messages of `level` are printed. */
int log_enabled(enum log_level level);

/* Formats, escapes and writes one line; use the macros below instead. */
void log_write(enum log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_notice(...) log_write(LOG_NOTICE, __FILE__, __LINE__, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_write(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

#endif
