/* Unit tests for log: a message is one line whatever it holds, and what
 * it holds can be told apart from escapes. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "jsonw.h"
#include "log.h"

/* Logs "%s" of text at INFO and returns what was written to stderr (a
 * static buffer, NUL-terminated). */
static const char *logged(const char *text)
{
    static char out[8192];
    int fds[2];
    assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
    log_info("%s", text);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], out, sizeof out - 1);
    close(fds[0]);
    assert_true(n > 0);
    out[n] = '\0';
    return out;
}

/* The message part of a line: after "file.c:NN: ", without the newline. */
static const char *message(const char *text)
{
    static char msg[8192];
    const char *line = logged(text);
    size_t len = strlen(line);
    assert_true(len > 0 && line[len - 1] == '\n');
    assert_null(memchr(line, '\n', len - 1));
    const char *p = strstr(line, "test_log.c:");
    assert_non_null(p);
    p = strstr(p, ": ");
    assert_non_null(p);
    p += 2;
    memcpy(msg, p, (size_t)(line + len - 1 - p));
    msg[line + len - 1 - p] = '\0';
    return msg;
}

/* A worker name with a newline once wrote a second, forged log line. */
static void newlines_cannot_forge_lines(void **state)
{
    assert_string_equal(message("worker a\n2024-01-01 00:00:00.000Z ERROR x.c:1: forged"),
                        "worker a\\n2024-01-01 00:00:00.000Z ERROR x.c:1: forged");
    assert_string_equal(message("a\rb\tc"), "a\\rb\\tc");
}

static void controls_are_escaped(void **state)
{
    assert_string_equal(message("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
    assert_string_equal(message("\x01\x7f\x1f"), "\\x01\\x7f\\x1f");
    /* C1 controls, valid UTF-8 but acted on by some terminals. */
    assert_string_equal(message("a\xc2\x9b"
                                "b\xc2\x85"),
                        "a\\xc2\\x9bb\\xc2\\x85");
}

/* A backslash is doubled, so the text "\n" and a newline differ. */
static void backslashes_are_doubled(void **state)
{
    assert_string_equal(message("C:\\dir \\n"), "C:\\\\dir \\\\n");
}

static void utf8_is_kept_and_invalid_bytes_escaped(void **state)
{
    assert_string_equal(message("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0"),
                        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0");
    assert_string_equal(message("a\xff"
                                "b\xc3"),
                        "a\\xffb\\xc3");
    /* An overlong encoding and a lone continuation byte. */
    assert_string_equal(message("\xc0\xaf\x80"), "\\xc0\\xaf\\x80");
}

/* However long or however much it expands, a message stays one line of at
 * most 2 KiB. */
static void long_messages_are_cut_on_one_line(void **state)
{
    static char text[5000];
    memset(text, '\n', sizeof text - 1);
    const char *line = logged(text);
    size_t len = strlen(line);
    assert_true(len <= 2048);
    assert_int_equal(line[len - 1], '\n');
    assert_null(memchr(line, '\n', len - 1));
    /* Cut between escapes, never inside one. */
    assert_int_equal(line[len - 2], 'n');
    assert_int_equal(line[len - 3], '\\');
    /* Cut between characters, never inside one: euro signs are 3 bytes. */
    for (size_t i = 0; i + 3 < sizeof text; i += 3)
        memcpy(text + i, "\xe2\x82\xac", 3);
    text[sizeof text - 1 - (sizeof text - 1) % 3] = '\0';
    line = logged(text);
    len = strlen(line);
    assert_true(len <= 2048);
    assert_null(memchr(line, '\n', len - 1));
    assert_int_equal(jsonw_utf8_valid_prefix(line, len), len);
}

static void levels_filter(void **state)
{
    log_set_level(LOG_WARN);
    assert_false(log_enabled(LOG_INFO));
    assert_true(log_enabled(LOG_NOTICE));
    log_set_level(LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(newlines_cannot_forge_lines),
        cmocka_unit_test(controls_are_escaped),
        cmocka_unit_test(backslashes_are_doubled),
        cmocka_unit_test(utf8_is_kept_and_invalid_bytes_escaped),
        cmocka_unit_test(long_messages_are_cut_on_one_line),
        cmocka_unit_test(levels_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
