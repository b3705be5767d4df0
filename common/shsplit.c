/* shsplit: see shsplit.h.
 *
 * Words are collected NUL-separated in one buf, then moved into a single
 * allocation holding the pointer vector followed by the text, so the whole
 * result is released with one free(). */
#include "shsplit.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

/* Characters a backslash escapes inside double quotes (besides newline). */
static int dq_escapable(char c)
{
    return c == '$' || c == '`' || c == '"' || c == '\\';
}

/* Splits s into words, appending each with its NUL to text. Returns the
 * number of words or -EINVAL / -ENOMEM. */
static long split_words(const char *s, size_t len, buf *text, const char **err)
{
    long nwords = 0;
    int in_word = 0;
    size_t i = 0;

    while (i < len) {
        char c = s[i];
        if (is_blank(c)) {
            if (in_word) {
                buf_putc(text, '\0');
                nwords++;
                in_word = 0;
            }
            i++;
        } else if (c == '\\') {
            if (i + 1 >= len) {
                *err = "trailing backslash";
                return -EINVAL;
            }
            /* Backslash-newline is a line continuation, not a character. */
            if (s[i + 1] != '\n') {
                buf_putc(text, s[i + 1]);
                in_word = 1;
            }
            i += 2;
        } else if (c == '\'') {
            const char *q = memchr(s + i + 1, '\'', len - i - 1);
            if (!q) {
                *err = "unterminated single quote";
                return -EINVAL;
            }
            buf_append(text, s + i + 1, (size_t)(q - (s + i + 1)));
            in_word = 1;
            i = (size_t)(q - s) + 1;
        } else if (c == '"') {
            in_word = 1;
            for (i++;; i++) {
                if (i >= len) {
                    *err = "unterminated double quote";
                    return -EINVAL;
                }
                if (s[i] == '"')
                    break;
                if (s[i] == '\\' && i + 1 < len) {
                    if (s[i + 1] == '\n') {
                        i++;
                        continue;
                    }
                    if (dq_escapable(s[i + 1]))
                        i++;
                }
                buf_putc(text, s[i]);
            }
            i++;
        } else {
            /* Copy a run of ordinary characters at once. */
            size_t start = i;
            while (i < len && !is_blank(s[i]) && s[i] != '\\' && s[i] != '\'' && s[i] != '"')
                i++;
            buf_append(text, s + start, i - start);
            in_word = 1;
        }
        if (nwords >= INT_MAX) {
            *err = "too many words";
            return -EINVAL;
        }
    }
    if (in_word) {
        buf_putc(text, '\0');
        nwords++;
    }
    if (buf_failed(text)) {
        *err = "out of memory";
        return -ENOMEM;
    }
    return nwords;
}

int shsplit(const char *s, size_t len, char ***argv_out, int *argc_out, const char **err)
{
    const char *dummy_err;
    buf text = BUF_INIT;
    int rc;

    if (!err)
        err = &dummy_err;
    /* Every byte that is not a separator, quote or backslash ends up in a
     * word, so any NUL would make a word that execve cannot pass on. */
    if (len && memchr(s, '\0', len)) {
        *err = "NUL byte in command line";
        return -EINVAL;
    }

    long n = split_words(s, len, &text, err);
    if (n < 0) {
        rc = (int)n;
        goto fail_split;
    }

    size_t vec_size = ((size_t)n + 1) * sizeof(char *);
    char **argv = malloc(vec_size + text.len);
    if (!argv) {
        *err = "out of memory";
        rc = -ENOMEM;
        goto fail_split;
    }
    char *t = (char *)argv + vec_size;
    if (text.len)
        memcpy(t, text.data, text.len);
    for (long k = 0; k < n; k++) {
        argv[k] = t;
        t += strlen(t) + 1;
    }
    argv[n] = NULL;
    buf_destroy(&text);
    *argv_out = argv;
    *argc_out = (int)n;
    return 0;

fail_split:
    buf_destroy(&text);
    return rc;
}

void shsplit_free(char **argv)
{
    free(argv);
}
