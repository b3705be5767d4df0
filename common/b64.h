/* b64: standard base64 (RFC 4648 section 4) decoding and encoding. */
#ifndef TS_B64_H
#define TS_B64_H

#include <stddef.h>

/* Decodes base64 text. Accepts the standard alphabet, optional '=' padding
 * (padding must be correct when present), and ignores ASCII whitespace
 * (line-wrapped base64 from `base64` is common). Also accepts the URL-safe
 * alphabet ('-', '_').
 * Returns 0 and a malloc'ed buffer in *out (caller frees; NUL-terminated,
 * *out_len excludes the NUL), -EINVAL on invalid input (then *err_pos, if
 * non-NULL, gets the offset of the first offending character), or -ENOMEM.
 * On error nothing is allocated. */
int b64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len, size_t *err_pos);

/* Encodes to padded standard base64. Returns a malloc'ed NUL-terminated
 * string (caller frees) or NULL on allocation failure. */
char *b64_encode(const unsigned char *in, size_t len);

#endif
