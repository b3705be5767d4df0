/* jsonscan: finds the raw text of a member of a JSON object, and bounds
 * the nesting of a document before a recursive parser sees it.
 *
 * cJSON keeps numbers only as doubles, so 9007199254740993 comes out as
 * 9007199254740992. Where exact numbers matter (arithmetic jobs), the raw
 * text of the number is taken from the document with this scanner and
 * parsed exactly, or passed on as it is. It walks the document without
 * recursion and without allocating; it does not validate everything (validate with cJSON first
 * when that matters) but never reads outside the given bytes. */
#ifndef TS_JSONSCAN_H
#define TS_JSONSCAN_H

#include <stddef.h>

/* Finds the member named `key` of the top-level object in the len bytes at
 * s (no NUL needed). Member names are compared after decoding their escapes
 * ("op\u0031" is "op1"); the first match wins, as with
 * cJSON_GetObjectItemCaseSensitive. On success sets *val to the start of
 * the value's text and *vlen to its length (a string keeps its quotes, an
 * object or array its brackets) and returns 0. Returns -ENOENT if the
 * object has no such member, -EINVAL if the text is not a JSON object
 * (then nothing is set). */
int jsonscan_member(const char *s, size_t len, const char *key, const char **val, size_t *vlen);

/* Returns 1 if the len bytes at s are exactly one JSON number as RFC 8259
 * writes it ("-0", "12", "1.5", "2e-3", "-1E+9"; not "+1", "01", ".5",
 * "5.", "0x1", "NaN", nor any whitespace), 0 otherwise. Where a number's
 * text is passed on as it is (the calculation API), this is the check. */
int jsonscan_is_number(const char *s, size_t len);

/* Returns 0 if no byte of the len bytes at s lies inside more than max
 * arrays and objects, -E2BIG as soon as one does. Brackets inside strings
 * do not count. It does not validate: malformed text passes if its
 * brackets stay within max, for the parser that follows to refuse. It
 * counts every bracket that cJSON would recurse into, so text that passes
 * never makes cJSON recurse more than max levels deep; run it first where
 * the stack is small (civetweb's threads). Reads each byte once and uses no
 * stack beyond its own frame. */
int jsonscan_check_depth(const char *s, size_t len, unsigned max);

#endif
