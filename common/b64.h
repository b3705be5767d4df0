/* b64: standard base64 (RFC 4648 section 4) decoding and encoding. */
#ifndef TS_B64_H
#define TS_B64_H

#include <stddef.h>

/* Decodes base64 text. Accepts the standard alphabet and the URL-safe one
 * ('-', '_'; the two may even be mixed), optional '=' padding (correct when
 * present: "QQ==" or "QQ", not "QQ=" nor "QUJD="), and ignores ASCII
 * whitespace anywhere (line-wrapped output of `base64` is common). Empty or
 * all-whitespace input is valid and decodes to zero bytes. Rejected: bytes
 * outside the alphabets, data after padding, a final group of a single
 * character. Lenient: non-zero unused bits in the last group are ignored
 * ("QR==" decodes like "QQ==").
 * Returns 0 and a malloc'ed buffer in *out (caller frees; NUL-terminated,
 * *out_len excludes the NUL), -EINVAL on invalid input (then *err_pos, if
 * non-NULL, gets the offset of the first offending character: the bad byte,
 * the lone last character, the first '=' of too short a padding, or the
 * byte after a complete padding), or -ENOMEM.
 * On error nothing is allocated and *out is unchanged. */
int b64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len, size_t *err_pos);

/* Encodes to padded standard base64. Returns a malloc'ed NUL-terminated
 * string (caller frees) or NULL on allocation failure. */
char *b64_encode(const unsigned char *in, size_t len);

#endif
