/* Unit tests for config: every row type of the option table, the messages
 * for values it refuses, the command line and the config file, and the
 * usage text generated from the same table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"

/* Sets name to val and expects rc; on an error, why must be want_why. */
static void set_is(config *c, const char *name, const char *val, int rc, const char *want_why)
{
    char why[256] = "";
    assert_int_equal(config_set(c, name, val, why, sizeof why), rc);
    if (want_why)
        assert_string_equal(why, want_why);
}

/* Sends stderr to a temporary file until capture_end, which returns what
 * was written there (malloc'd). */
static FILE *capture_file;
static int capture_saved = -1;

static void capture_begin(void)
{
    capture_file = tmpfile();
    assert_non_null(capture_file);
    fflush(stderr);
    capture_saved = dup(STDERR_FILENO);
    assert_true(capture_saved >= 0);
    assert_true(dup2(fileno(capture_file), STDERR_FILENO) >= 0);
}

static char *capture_end(void)
{
    fflush(stderr);
    assert_true(dup2(capture_saved, STDERR_FILENO) >= 0);
    close(capture_saved);
    long n = ftell(capture_file);
    assert_true(n >= 0);
    char *text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    rewind(capture_file);
    assert_int_equal(fread(text, 1, (size_t)n, capture_file), (size_t)n);
    fclose(capture_file);
    return text;
}

/* Runs config_parse_args on a fresh config with the NULL-terminated
 * arguments, returns its result and what it wrote to stderr (malloc'd) in
 * *err. c is left initialised for the caller to inspect and destroy. */
__attribute__((sentinel)) static int parse(config *c, char **err, ...)
{
    char *argv[32] = {"tasksolver"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    assert_int_equal(config_init(c), 0);
    capture_begin();
    int rc = config_parse_args(c, argc, argv);
    *err = capture_end();
    return rc;
}

static void defaults_of_the_moved_rows(void **state)
{
    (void)state;
    config c;
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(c.log_level, LOG_INFO);
    assert_int_equal(c.reject_status, 429);
    assert_string_equal(c.on_restart, "requeue");
    assert_string_equal(c.data_sync, "full");
    config_destroy(&c);
}

/* An enum row keeps the value of the word; a word outside the row is
 * refused with every allowed word named, and the field keeps its value. */
static void enum_rows(void **state)
{
    (void)state;
    config c;
    assert_int_equal(config_init(&c), 0);
    set_is(&c, "log-level", "debug", 0, NULL);
    assert_int_equal(c.log_level, LOG_DEBUG);
    set_is(&c, "log-level", "error", 0, NULL);
    assert_int_equal(c.log_level, LOG_ERROR);
    set_is(&c, "log-level", "loud", -EINVAL, "not error, warn, info or debug");
    set_is(&c, "log-level", "DEBUG", -EINVAL, NULL); /* exact words only */
    set_is(&c, "log-level", "", -EINVAL, NULL);
    assert_int_equal(c.log_level, LOG_ERROR);

    /* A set of integers is an enum row whose words are the numbers. */
    set_is(&c, "reject-status", "403", 0, NULL);
    assert_int_equal(c.reject_status, 403);
    set_is(&c, "reject-status", "429", 0, NULL);
    assert_int_equal(c.reject_status, 429);
    set_is(&c, "reject-status", "404", -EINVAL, "not 429 or 403");
    set_is(&c, "reject-status", "410", -EINVAL, NULL); /* inside the old 403..429 range */
    assert_int_equal(c.reject_status, 429);
    config_destroy(&c);
}

/* A word row keeps the word itself. */
static void word_rows(void **state)
{
    (void)state;
    config c;
    assert_int_equal(config_init(&c), 0);
    set_is(&c, "on-restart", "fail", 0, NULL);
    assert_string_equal(c.on_restart, "fail");
    set_is(&c, "on-restart", "later", -EINVAL, "not requeue or fail");
    assert_string_equal(c.on_restart, "fail");
    set_is(&c, "data-sync", "normal", 0, NULL);
    assert_string_equal(c.data_sync, "normal");
    set_is(&c, "data-sync", "sometimes", -EINVAL, "not full or normal");
    set_is(&c, "data-sync", "Full", -EINVAL, NULL);
    assert_string_equal(c.data_sync, "normal");
    config_destroy(&c);
}

/* A URL row takes "" (none) or a node's base URL, as cluster mode did. */
static void url_rows(void **state)
{
    (void)state;
    config c;
    assert_int_equal(config_init(&c), 0);
    assert_string_equal(c.join, "");
    assert_string_equal(c.advertise, "");
    set_is(&c, "join", "http://10.0.0.1:8080", 0, NULL);
    assert_string_equal(c.join, "http://10.0.0.1:8080");
    set_is(&c, "advertise", "HTTPS://node-1:9000/", 0, NULL);
    assert_string_equal(c.advertise, "HTTPS://node-1:9000/");
    set_is(&c, "join", "10.0.0.1:8080", -EINVAL, "not a URL like http://HOST:PORT");
    set_is(&c, "advertise", "http://", -EINVAL, "not a URL like http://HOST:PORT");
    set_is(&c, "advertise", "http://node 1", -EINVAL,
           "not a URL: it has a space or control character");
    assert_string_equal(c.join, "http://10.0.0.1:8080");
    set_is(&c, "join", "", 0, NULL);
    assert_string_equal(c.join, "");
    config_destroy(&c);
}

/* A command row takes "" (none) or what shsplit makes a program of. */
static void command_rows(void **state)
{
    (void)state;
    config c;
    assert_int_equal(config_init(&c), 0);
    assert_string_equal(c.calc_command, "");
    set_is(&c, "calc-command", "calc_sleep 20 '8 0'", 0, NULL);
    assert_string_equal(c.calc_command, "calc_sleep 20 '8 0'");
    set_is(&c, "calc-command", "calc 'x", -EINVAL,
           "not a command line (unterminated single quote)");
    set_is(&c, "calc-command", "calc \\", -EINVAL, "not a command line (trailing backslash)");
    set_is(&c, "calc-command", " \t", -EINVAL, "not a command line (no program)");
    assert_string_equal(c.calc_command, "calc_sleep 20 '8 0'");
    set_is(&c, "calc-command", "", 0, NULL);
    assert_string_equal(c.calc_command, "");
    config_destroy(&c);
}

/* The numeric and boolean rows say what they would have taken. */
static void messages_say_what_is_allowed(void **state)
{
    (void)state;
    config c;
    assert_int_equal(config_init(&c), 0);
    set_is(&c, "port", "70000", -EINVAL, "out of range (0 to 65535)");
    set_is(&c, "workers", "0", -EINVAL, "out of range (1 to 4096)");
    set_is(&c, "max-body", "2000000000000", -EINVAL, "out of range (1 to 1000000000000)");
    set_is(&c, "request-timeout", "0.01", -EINVAL, "out of range (0.1 to 3600)");
    set_is(&c, "workers", "two", -EINVAL, "not an integer");
    set_is(&c, "max-body", "1Q", -EINVAL, "not a byte count (e.g. 1048576 or 1M)");
    set_is(&c, "sandbox", "maybe", -EINVAL, "not yes or no (nor on/off, true/false, 1/0)");
    set_is(&c, "wrokers", "3", -ENOENT, NULL);
    config_destroy(&c);
}

/* The command line names the option, the value and what is allowed, and
 * ends with the usage; exit status 2 for all of them. */
static void command_line(void **state)
{
    (void)state;
    config c;
    char *err;
    assert_int_equal(parse(&c, &err, "--log-level", "warn", "--reject-status", "403",
                           "--on-restart=fail", "--data-sync", "normal", NULL),
                     0);
    assert_int_equal(c.log_level, LOG_WARN);
    assert_int_equal(c.reject_status, 403);
    assert_string_equal(c.on_restart, "fail");
    assert_string_equal(c.data_sync, "normal");
    assert_string_equal(err, "");
    free(err);
    config_destroy(&c);

    static const struct {
        const char *opt, *val, *msg;
    } bad[] = {
        {"--log-level", "loud",
         "tasksolver: --log-level: 'loud' is not error, warn, info or "
         "debug\n"},
        {"--reject-status", "404", "tasksolver: --reject-status: '404' is not 429 or 403\n"},
        {"--on-restart", "later", "tasksolver: --on-restart: 'later' is not requeue or fail\n"},
        {"--data-sync", "sometimes",
         "tasksolver: --data-sync: 'sometimes' is not full or normal\n"},
        {"--join", "master:8080",
         "tasksolver: --join: 'master:8080' is not a URL like http://HOST:PORT\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(&c, &err, bad[i].opt, bad[i].val, NULL), 2);
        assert_true(strncmp(err, bad[i].msg, strlen(bad[i].msg)) == 0);
        assert_non_null(strstr(err, "usage: tasksolver"));
        free(err);
        config_destroy(&c);
    }
}

/* A config file goes through the same rows, with its file and line. */
static void config_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("# journal\non-restart = fail\nlog-level = debug\ndata-sync = never\n", f);
    fclose(f);
    config c;
    char *err;
    assert_int_equal(parse(&c, &err, "--config", path, NULL), 2);
    char want[256];
    snprintf(want, sizeof want, "tasksolver: %s:4: data-sync: 'never' is not full or normal\n",
             path);
    assert_string_equal(err, want);
    /* The lines before the bad one were applied. */
    assert_string_equal(c.on_restart, "fail");
    assert_int_equal(c.log_level, LOG_DEBUG);
    free(err);
    config_destroy(&c);
    unlink(path);
}

/* Returns what config_check wrote (malloc'd) for these two settings. */
static char *check_with(const char *max_body, const char *max_queue_bytes)
{
    config c;
    char *err;
    assert_int_equal(
        parse(&c, &err, "--max-body", max_body, "--max-queue-bytes", max_queue_bytes, NULL), 0);
    free(err);
    capture_begin();
    config_check(&c);
    err = capture_end();
    config_destroy(&c);
    return err;
}

/* The rules between options: a --max-body that --max-queue-bytes cannot
 * hold three times over is warned about, and only then. */
static void rules_between_options(void **state)
{
    (void)state;
    char *err = check_with("1M", "3M");
    assert_string_equal(err, "");
    free(err);
    err = check_with("2M", "0"); /* unbounded */
    assert_string_equal(err, "");
    free(err);
    err = check_with("2M", "3M");
    assert_non_null(strstr(err, "WARN"));
    assert_non_null(strstr(err, "--max-body 2097152 is more than a third of --max-queue-bytes "
                                "3145728"));
    free(err);
}

/* --help shows the words of the rows that take words. */
static void usage_lists_the_words(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_usage(f);
    fclose(f);
    assert_non_null(strstr(text, "\n  --log-level error|warn|info|debug "));
    assert_non_null(strstr(text, "\n  --reject-status 429|403 "));
    assert_non_null(strstr(text, "\n  --on-restart requeue|fail "));
    assert_non_null(strstr(text, "\n  --data-sync full|normal "));
    assert_non_null(strstr(text, "\n  --workers N "));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_of_the_moved_rows),
        cmocka_unit_test(enum_rows),
        cmocka_unit_test(word_rows),
        cmocka_unit_test(url_rows),
        cmocka_unit_test(command_rows),
        cmocka_unit_test(messages_say_what_is_allowed),
        cmocka_unit_test(command_line),
        cmocka_unit_test(config_file),
        cmocka_unit_test(rules_between_options),
        cmocka_unit_test(usage_lists_the_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
