/* jsonw: writing JSON text into a buf.
 *
 * cJSON is used to parse requests; responses are written directly because
 * task output is arbitrary bytes (NULs, invalid UTF-8) that cJSON cannot
 * carry, and because printing numbers exactly needs our own formatting.
 * All functions return 0 or -ENOMEM (the buf is then marked failed). */
#ifndef TS_JSONW_H
#define TS_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Appends `len` bytes as a quoted JSON string. Control characters and NUL
 * are escaped (\n, \t, \u0000...), '"' and '\\' are escaped, valid UTF-8 is
 * copied as is, and every invalid or truncated UTF-8 sequence (overlongs,
 * surrogates, > U+10FFFF) becomes U+FFFD, one per maximal bad subpart.
 * DEL and U+2028/U+2029 are legal JSON and left alone. s may be NULL when
 * len is 0. */
int jsonw_str(buf *b, const char *s, size_t len);

/* Same for a NUL-terminated string; NULL writes null. */
int jsonw_cstr(buf *b, const char *s);

/* Appends an integer. */
int jsonw_i64(buf *b, int64_t v);

/* Appends a double in the shortest of %.15g, %.16g and %.17g that parses
 * back to the same value: integral values with |v| < 2^53 print as integers
 * ("6"; -0 prints "0"), others like "2.5", "0.30000000000000004", "1e+300",
 * "1e+21". NaN and infinities print as null. Assumes the "C" LC_NUMERIC
 * locale (the default unless the program calls setlocale). */
int jsonw_f64(buf *b, double v);

/* Formats v like jsonw_f64 into out, NUL-terminated; 32 bytes always
 * suffice. Returns the length, or -EINVAL if size is too small. */
int jsonw_f64_fmt(char *out, size_t size, double v);

/* Returns the number of bytes at s that form valid UTF-8 (stops at the
 * first invalid or truncated sequence); len if all of it is valid. NUL is
 * valid UTF-8. Useful to cut output at a character boundary. */
size_t jsonw_utf8_valid_prefix(const char *s, size_t len);

#endif
