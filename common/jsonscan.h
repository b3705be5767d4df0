/* jsonscan: the raw text of JSON numbers, without going through a double.
 *
 * cJSON turns every number into a double, so 12345678901234567890 or
 * 0.30000000000000004 would not survive a parse and print. Where a number
 * must be passed on exactly (the calculation API's "data" and "result"),
 * these functions find and check its original text instead. They read
 * network input: any bytes are safe, nothing is allocated, no state. */
#ifndef TS_JSONSCAN_H
#define TS_JSONSCAN_H

#include <stddef.h>

/* Returns 1 if the len bytes at s are exactly one JSON number as RFC 8259
 * writes it ("-0", "12", "1.5", "2e-3", "-1E+9"; not "+1", "01", ".5",
 * "5.", "0x1", "NaN", nor any whitespace), 0 otherwise. */
int jsonscan_is_number(const char *s, size_t len);

/* Finds the first member called `key` of the JSON object that the len
 * bytes at doc hold (leading whitespace allowed) and sets *val and *vlen to
 * the raw text of its value (a pointer into doc, without the whitespace
 * around it). Keys are compared byte for byte with their text between the
 * quotes, so a key written with escapes ("d\u0061ta") does not match.
 * Whitespace between tokens is any byte up to the space, as cJSON skips.
 * Only the structure needed to skip values is checked: validate the
 * document with a real parser first when that matters.
 * Returns 0, -ENOENT if the object has no such member, or -EINVAL if doc
 * is not an object or ends early. On error *val and *vlen are unchanged. */
int jsonscan_member(const char *doc, size_t len, const char *key, const char **val, size_t *vlen);

#endif
