/* Unit tests for b64: base64 decoding of uploaded files, and encoding. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "b64.h"

static void check_decode(const char *in, const char *want, size_t want_len)
{
    unsigned char *out = NULL;
    size_t out_len = 12345;
    size_t pos = 777;
    assert_int_equal(b64_decode(in, strlen(in), &out, &out_len, &pos), 0);
    assert_non_null(out);
    assert_int_equal(out_len, want_len);
    assert_memory_equal(out, want, want_len);
    assert_int_equal(out[out_len], '\0');
    assert_int_equal(pos, 777); /* untouched on success */
    free(out);
}

#define DEC(in, lit) check_decode(in, lit, sizeof(lit) - 1)

static void check_invalid(const char *in, size_t want_pos)
{
    unsigned char sentinel;
    unsigned char *out = &sentinel;
    size_t out_len = 5;
    size_t pos = 999;
    assert_int_equal(b64_decode(in, strlen(in), &out, &out_len, &pos), -EINVAL);
    assert_ptr_equal(out, &sentinel);
    assert_int_equal(out_len, 5);
    assert_int_equal(pos, want_pos);
}

static void test_rfc4648_vectors(void **state)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        check_decode(enc[i], plain[i], strlen(plain[i]));
        char *e = b64_encode((const unsigned char *)plain[i], strlen(plain[i]));
        assert_non_null(e);
        assert_string_equal(e, enc[i]);
        free(e);
    }
}

static void test_padding_optional(void **state)
{
    DEC("Zg", "f");
    DEC("Zm8", "fo");
    DEC("Zm9vYg", "foob");
    DEC("Zm9vYmE", "fooba");
}

static void test_whitespace_ignored(void **state)
{
    DEC("", "");
    DEC(" \t\r\n", "");
    DEC(" Zm9v\nYmFy\n", "foobar");
    DEC("Zm9vYg=\n=\n", "foob");
    DEC("Z m 9 v", "foo");
    /* What `base64` prints for 60 bytes: 76-column lines. */
    DEC("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
        "NTY3ODkrLzw+\r\n",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/<>");
}

static void test_url_safe_alphabet(void **state)
{
    DEC("+/+/", "\xfb\xff\xbf");
    DEC("-_-_", "\xfb\xff\xbf");
    DEC("-_+/", "\xfb\xff\xbf");
    DEC("P-8_", "\x3f\xef\x3f");
}

static void test_trailing_bits_lenient(void **state)
{
    DEC("Zh==", "f"); /* 'h' leaves non-zero unused bits */
    DEC("Zm9=", "fo");
}

static void test_invalid_input(void **state)
{
    check_invalid("Zm9v!mFy", 4);     /* bad character */
    check_invalid("Zm9v\x80YmFy", 4); /* non-ASCII */
    check_invalid("Zm9v.", 4);
    check_invalid("Zm9vY", 4); /* final group of one character */
    check_invalid("Z", 0);
    check_invalid("Zm9vY===", 4);
    check_invalid("Zg=", 2); /* "==" required after 2 characters */
    check_invalid("Zg= ", 2);
    check_invalid("Zg===", 4); /* one '=' too many */
    check_invalid("Zm8==", 4);
    check_invalid("Zm9v=", 4); /* no padding after a full group */
    check_invalid("=", 0);
    check_invalid("====", 0);
    check_invalid("Zg==Zg==", 4); /* data after padding */
    check_invalid("Zm8=x", 4);
    check_invalid("Zg==\n!", 5);
}

static void test_nul_byte_rejected(void **state)
{
    unsigned char *out = NULL;
    size_t len = 0, pos = 0;
    assert_int_equal(b64_decode("Zm9v\0YmFy", 9, &out, &len, &pos), -EINVAL);
    assert_int_equal(pos, 4);
    assert_null(out);
}

static void test_err_pos_optional(void **state)
{
    unsigned char *out = NULL;
    size_t len = 0;
    assert_int_equal(b64_decode("!!", 2, &out, &len, NULL), -EINVAL);
    assert_null(out);
}

static void test_decode_uses_len_not_nul(void **state)
{
    unsigned char *out = NULL;
    size_t len = 0;
    /* Only the first 4 bytes are input; the rest would be invalid. */
    assert_int_equal(b64_decode("Zm9v!!!", 4, &out, &len, NULL), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "foo", 3);
    free(out);
}

static void test_binary_roundtrip(void **state)
{
    unsigned char data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof data; n++) {
        char *e = b64_encode(data, n);
        assert_non_null(e);
        assert_int_equal(strlen(e), (n + 2) / 3 * 4);
        unsigned char *out = NULL;
        size_t len = 0;
        assert_int_equal(b64_decode(e, strlen(e), &out, &len, NULL), 0);
        assert_int_equal(len, n);
        assert_memory_equal(out, data, n);
        free(out);
        free(e);
    }
}

static void test_every_byte_value(void **state)
{
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char *e = b64_encode(all, sizeof all);
    assert_non_null(e);
    assert_memory_equal(e, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", 44);
    assert_string_equal(e + strlen(e) - 8, "/P3+/w==");
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),         cmocka_unit_test(test_padding_optional),
        cmocka_unit_test(test_whitespace_ignored),      cmocka_unit_test(test_url_safe_alphabet),
        cmocka_unit_test(test_trailing_bits_lenient),   cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_nul_byte_rejected),       cmocka_unit_test(test_err_pos_optional),
        cmocka_unit_test(test_decode_uses_len_not_nul), cmocka_unit_test(test_binary_roundtrip),
        cmocka_unit_test(test_every_byte_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
