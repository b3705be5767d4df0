/* b64: see b64.h.
 *
 * The decoder is table driven and single pass: whitespace is skipped,
 * every other byte must be an alphabet character until the first '=',
 * after which only the rest of the padding and whitespace may follow. */
#include "b64.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define B64_WS 0x40  /* ignored */
#define B64_PAD 0x41 /* '=' */
#define B64_BAD 0xff

/* Values 0-63 for both alphabets ('+' and '-' are 62, '/' and '_' are 63). */
/* clang-format off */
static const unsigned char dec_table[256] = {
    ['\t'] = B64_WS, ['\n'] = B64_WS, ['\v'] = B64_WS, ['\f'] = B64_WS, ['\r'] = B64_WS,
    [' '] = B64_WS, ['='] = B64_PAD,
    ['A'] = 0,  ['B'] = 1,  ['C'] = 2,  ['D'] = 3,  ['E'] = 4,  ['F'] = 5,  ['G'] = 6,
    ['H'] = 7,  ['I'] = 8,  ['J'] = 9,  ['K'] = 10, ['L'] = 11, ['M'] = 12, ['N'] = 13,
    ['O'] = 14, ['P'] = 15, ['Q'] = 16, ['R'] = 17, ['S'] = 18, ['T'] = 19, ['U'] = 20,
    ['V'] = 21, ['W'] = 22, ['X'] = 23, ['Y'] = 24, ['Z'] = 25,
    ['a'] = 26, ['b'] = 27, ['c'] = 28, ['d'] = 29, ['e'] = 30, ['f'] = 31, ['g'] = 32,
    ['h'] = 33, ['i'] = 34, ['j'] = 35, ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39,
    ['o'] = 40, ['p'] = 41, ['q'] = 42, ['r'] = 43, ['s'] = 44, ['t'] = 45, ['u'] = 46,
    ['v'] = 47, ['w'] = 48, ['x'] = 49, ['y'] = 50, ['z'] = 51,
    ['0'] = 52, ['1'] = 53, ['2'] = 54, ['3'] = 55, ['4'] = 56, ['5'] = 57, ['6'] = 58,
    ['7'] = 59, ['8'] = 60, ['9'] = 61,
    ['+'] = 62, ['-'] = 62, ['/'] = 63, ['_'] = 63,
};
/* clang-format on */

/* The table above leaves unlisted bytes at 0, which is also 'A': tell them
 * apart by the byte itself. */
static unsigned dec(unsigned char c)
{
    unsigned v = dec_table[c];
    if (v == 0 && c != 'A')
        return B64_BAD;
    return v;
}

int b64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len, size_t *err_pos)
{
    const unsigned char *p = (const unsigned char *)in;
    /* Room for every 4 characters giving 3 bytes, a partial group and NUL. */
    unsigned char *res = malloc(len / 4 * 3 + 3);
    if (!res)
        return -ENOMEM;

    unsigned char *o = res;
    uint32_t acc = 0;
    size_t ngroup = 0;   /* data characters in the current group of 4 */
    size_t last_pos = 0; /* offset of the last data character */
    size_t i = 0;

    for (; i < len; i++) {
        unsigned v = dec(p[i]);
        if (v < 64) {
            acc = acc << 6 | v;
            last_pos = i;
            if (++ngroup == 4) {
                *o++ = (unsigned char)(acc >> 16);
                *o++ = (unsigned char)(acc >> 8);
                *o++ = (unsigned char)acc;
                acc = 0;
                ngroup = 0;
            }
        } else if (v == B64_PAD) {
            break;
        } else if (v != B64_WS) {
            goto fail_input;
        }
    }

    if (ngroup == 1) {
        /* 6 bits cannot encode a byte: the input was cut short. */
        i = last_pos;
        goto fail_input;
    }

    if (i < len) {
        /* p[i] is the first '='; a group of 2 needs "==", of 3 needs "=". */
        size_t pad_needed = ngroup == 2 ? 2 : ngroup == 3 ? 1 : 0;
        size_t first_pad = i;
        size_t npad = 0;
        for (; i < len; i++) {
            unsigned v = dec(p[i]);
            if (v == B64_WS)
                continue;
            if (v != B64_PAD || npad == pad_needed)
                goto fail_input; /* data after padding, or too many '=' */
            npad++;
        }
        if (npad != pad_needed) {
            i = first_pad;
            goto fail_input;
        }
    }

    /* Lenient: the unused low bits of a partial group are not checked. */
    if (ngroup == 2) {
        *o++ = (unsigned char)(acc >> 4);
    } else if (ngroup == 3) {
        *o++ = (unsigned char)(acc >> 10);
        *o++ = (unsigned char)(acc >> 2);
    }
    *o = '\0';
    *out = res;
    *out_len = (size_t)(o - res);
    return 0;

fail_input:
    free(res);
    if (err_pos)
        *err_pos = i;
    return -EINVAL;
}

char *b64_encode(const unsigned char *in, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    if (len / 3 >= (SIZE_MAX - 5) / 4)
        return NULL;
    char *res = malloc((len + 2) / 3 * 4 + 1);
    if (!res)
        return NULL;

    char *o = res;
    size_t i = 0;
    for (; len - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63];
        *o++ = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63];
        *o++ = '=';
    }
    *o = '\0';
    return res;
}
