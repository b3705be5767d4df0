/* Unit tests for the `files` field: parsing, the names refused, the
 * journal's blob and the writing into a directory. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "request.h"
#include "request_files.h"
#include "rmtree.h"

/* Parses a create body whose files array is `files` (JSON text). */
static int parse_files(const char *type, const char *files, create_req *r, char *err)
{
    char body[8192];
    snprintf(body, sizeof body, "{\"type\":\"%s\",\"file\":\"cGFzcw==\",\"files\":%s}", type,
             files);
    return request_parse_create(body, strlen(body), NULL, r, err, REQUEST_ERR_MAX);
}

static void parse_good(void **state)
{
    (void)state;
    create_req r;
    char err[REQUEST_ERR_MAX];
    assert_int_equal(parse_files("python",
                                 "[{\"name\":\"util.py\",\"content\":\"eD0x\"},"
                                 "{\"name\":\"pkg/mod.py\",\"content\":\"\"},"
                                 "{\"name\":\"a/b/c.bin\",\"content\":\"AAD/\"}]",
                                 &r, err),
                     0);
    assert_int_equal(r.nfiles, 3);
    assert_string_equal(r.files[0].name, "util.py");
    assert_int_equal(r.files[0].len, 3);
    assert_memory_equal(r.files[0].data, "x=1", 3);
    assert_int_equal(r.files[1].len, 0);
    assert_int_equal(r.files[2].len, 3);
    assert_memory_equal(r.files[2].data, "\0\0\xff", 3);
    create_req_destroy(&r);
    /* none, null and [] are no files */
    assert_int_equal(parse_files("bin", "null", &r, err), 0);
    assert_null(r.files);
    create_req_destroy(&r);
    assert_int_equal(parse_files("bin", "[]", &r, err), 0);
    assert_int_equal(r.nfiles, 0);
    create_req_destroy(&r);
}

/* Expects a 400 whose message holds want. */
static void refused(const char *type, const char *files, const char *want)
{
    create_req r;
    char err[REQUEST_ERR_MAX];
    int rc = parse_files(type, files, &r, err);
    if (rc != -EINVAL || !strstr(err, want))
        fail_msg("%s: rc %d, \"%s\" lacks \"%s\"", files, rc, err, want);
}

static void bad_names(void **state)
{
    (void)state;
    static const struct {
        const char *name, *want;
    } cases[] = {
        {"", "files[1].name \"\" is empty"},
        {"/etc/passwd", "absolute"},
        {"..", "'..'"},
        {"../x", "'..'"},
        {"a/../../x", "'..'"},
        {"a//b", "empty component"},
        {"a/", "empty component"},
        {".", "'.' component"},
        {"a/./b", "'.' component"},
        {"main.py", "program's own name"},
        {"main.py/x", "program's own name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char files[256];
        snprintf(files, sizeof files,
                 "[{\"name\":\"ok\",\"content\":\"\"},{\"name\":\"%s\",\"content\":\"\"}]",
                 cases[i].name);
        refused("python", files, cases[i].want);
    }
    /* the program's name depends on the type */
    refused("bin", "[{\"name\":\"program\",\"content\":\"\"}]", "files[0].name");
    create_req r;
    char err[REQUEST_ERR_MAX];
    assert_int_equal(parse_files("bin", "[{\"name\":\"main.py\",\"content\":\"\"}]", &r, err), 0);
    create_req_destroy(&r);
    /* a component of 256 bytes, a name of 1025 */
    char files[2048], longc[300];
    memset(longc, 'x', 256);
    longc[256] = '\0';
    snprintf(files, sizeof files, "[{\"name\":\"%s\",\"content\":\"\"}]", longc);
    refused("bin", files, "longer than 255");
    char longn[1100];
    for (int i = 0; i < 1025; i++)
        longn[i] = i % 2 ? '/' : 'a';
    longn[1025] = '\0';
    snprintf(files, sizeof files, "[{\"name\":\"%s\",\"content\":\"\"}]", longn);
    refused("bin", files, "longer than 1024");
}

static void nul_in_a_name(void **state)
{
    (void)state;
    refused("bin", "[{\"name\":\"a\",\"content\":\"\"},{\"name\":\"b\\u0000c\",\"content\":\"\"}]",
            "files[1] holds a NUL");
    /* an escaped backslash followed by u0000 is no NUL */
    create_req r;
    char err[REQUEST_ERR_MAX];
    assert_int_equal(parse_files("bin", "[{\"name\":\"a\\\\u0000\",\"content\":\"\"}]", &r, err),
                     0);
    assert_string_equal(r.files[0].name, "a\\u0000");
    create_req_destroy(&r);
}

static void bad_entries_and_clashes(void **state)
{
    (void)state;
    refused("bin", "{}", "field 'files' must be an array");
    refused("bin", "[3]", "files[0] must be an object");
    refused("bin", "[{\"content\":\"\"}]", "files[0].name is missing");
    refused("bin", "[{\"name\":1,\"content\":\"\"}]", "files[0].name must be a string");
    refused("bin", "[{\"name\":\"a\"}]", "files[0].content is missing");
    refused("bin", "[{\"name\":\"a\",\"content\":\"@@\"}]",
            "files[0].content is not base64 (bad character at offset 0)");
    refused("bin",
            "[{\"name\":\"a\",\"content\":\"\"},{\"name\":\"b\",\"content\":\"\"},"
            "{\"name\":\"a\",\"content\":\"\"}]",
            "files[2].name \"a\" is given twice (files[0])");
    refused("bin", "[{\"name\":\"d/f\",\"content\":\"\"},{\"name\":\"d\",\"content\":\"\"}]",
            "files[1].name \"d\" is both a file and a directory");
}

static void at_most_256(void **state)
{
    (void)state;
    char *files = malloc(257 * 40 + 8);
    size_t n = 0;
    for (int count = 256; count <= 257; count++) {
        n = 0;
        files[n++] = '[';
        for (int i = 0; i < count; i++)
            n += (size_t)sprintf(files + n, "%s{\"name\":\"f%d\",\"content\":\"\"}", i ? "," : "",
                                 i);
        files[n++] = ']';
        files[n] = '\0';
        create_req r;
        char err[REQUEST_ERR_MAX];
        int rc = parse_files("bin", files, &r, err);
        if (count == 256) {
            assert_int_equal(rc, 0);
            assert_int_equal(r.nfiles, 256);
            create_req_destroy(&r);
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_non_null(strstr(err, "at most 256"));
        }
    }
    free(files);
}

static void fit_in_task_disk(void **state)
{
    (void)state;
    task_file f[2] = {{"a", NULL, 600}, {"b", NULL, 400}};
    char err[REQUEST_ERR_MAX];
    assert_int_equal(request_files_fit(f, 2, 24, 1024, err, sizeof err), 0);
    assert_int_equal(request_files_fit(f, 2, 25, 1024, err, sizeof err), -EFBIG);
    assert_non_null(strstr(err, "disk of 1024 bytes"));
    assert_int_equal(request_files_fit(f, 2, 25, 0, err, sizeof err), 0);
    assert_int_equal(request_files_fit(NULL, 0, 5000, 1024, err, sizeof err), 0);
}

static void pack_round_trip(void **state)
{
    (void)state;
    unsigned char bin[3] = {0, 1, 255};
    task_file f[2] = {{"pkg/mod.py", (unsigned char *)"V=1\n", 4}, {"x.bin", bin, 3}};
    unsigned char *blob;
    size_t len;
    assert_int_equal(request_files_pack(f, 2, &blob, &len), 0);
    assert_int_equal(len, 11 + 8 + 4 + 6 + 8 + 3);
    task_file *out;
    int n;
    assert_int_equal(request_files_unpack(blob, len, "main.py", &out, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].name, "pkg/mod.py");
    assert_int_equal(out[1].len, 3);
    assert_memory_equal(out[1].data, bin, 3);
    task_files_free(out, n);
    /* cut short, or naming what a request could not */
    assert_int_equal(request_files_unpack(blob, len - 1, "main.py", &out, &n), -EINVAL);
    assert_int_equal(request_files_unpack(blob, len, "x.bin", &out, &n), -EINVAL);
    blob[0] = '/';
    assert_int_equal(request_files_unpack(blob, len, "main.py", &out, &n), -EINVAL);
    free(blob);
    assert_int_equal(request_files_pack(NULL, 0, &blob, &len), 0);
    assert_null(blob);
    assert_int_equal(request_files_unpack(NULL, 0, "main.py", &out, &n), 0);
    assert_int_equal(n, 0);
}

static void write_into_a_directory(void **state)
{
    (void)state;
    char dir[] = "/tmp/ts-files-XXXXXX";
    assert_non_null(mkdtemp(dir));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    task_file f[3] = {{"util.py", (unsigned char *)"x", 1},
                      {"pkg/sub/mod.py", (unsigned char *)"yy", 2},
                      {"pkg/other", NULL, 0}};
    assert_int_equal(request_files_write(dfd, f, 3), 0);
    struct stat st;
    assert_int_equal(fstatat(dfd, "pkg/sub/mod.py", &st, 0), 0);
    assert_int_equal(st.st_size, 2);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fstatat(dfd, "pkg/sub", &st, 0), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* nothing is overwritten, no link followed */
    assert_int_equal(request_files_write(dfd, f, 1), -EEXIST);
    assert_int_equal(symlinkat("/tmp", dfd, "link"), 0);
    task_file through[1] = {{"link/ts-files-escaped", (unsigned char *)"z", 1}};
    assert_true(request_files_write(dfd, through, 1) < 0);
    assert_int_equal(access("/tmp/ts-files-escaped", F_OK), -1);
    task_file onto[1] = {{"link", (unsigned char *)"z", 1}};
    assert_int_equal(request_files_write(dfd, onto, 1), -EEXIST);
    close(dfd);
    assert_int_equal(rmtree_path(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_good),      cmocka_unit_test(bad_names),
        cmocka_unit_test(nul_in_a_name),   cmocka_unit_test(bad_entries_and_clashes),
        cmocka_unit_test(at_most_256),     cmocka_unit_test(fit_in_task_disk),
        cmocka_unit_test(pack_round_trip), cmocka_unit_test(write_into_a_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
