/* Unit tests for rmtree: nested trees, symlinks left unfollowed, entries
 * a task took its permissions from, and paths that are not there. */
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

#include "rmtree.h"

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void removes_a_tree_but_not_what_links_point_to(void **state)
{
    char top[] = "/tmp/test_rmtree_XXXXXX", keep[] = "/tmp/test_rmtree_keep_XXXXXX";
    assert_non_null(mkdtemp(top));
    assert_non_null(mkdtemp(keep));
    char p[256], q[256];
    snprintf(p, sizeof p, "%s/a/b/c", top);
    snprintf(q, sizeof q, "%s/a", top);
    assert_int_equal(mkdir(q, 0700), 0);
    snprintf(q, sizeof q, "%s/a/b", top);
    assert_int_equal(mkdir(q, 0700), 0);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(q, sizeof q, "%s/a/b/c/file", top);
    touch(q);
    snprintf(q, sizeof q, "%s/precious", keep);
    touch(q);
    snprintf(p, sizeof p, "%s/a/link", top);
    assert_int_equal(symlink(keep, p), 0);
    /* A directory the task closed to everyone, with a file inside. */
    snprintf(p, sizeof p, "%s/locked", top);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(q, sizeof q, "%s/locked/f", top);
    touch(q);
    assert_int_equal(chmod(p, 0), 0);

    assert_int_equal(rmtree_path(top), 0);
    assert_false(exists(top));
    snprintf(q, sizeof q, "%s/precious", keep);
    assert_true(exists(q));
    assert_int_equal(rmtree_path(keep), 0);
    assert_false(exists(keep));
}

static void missing_paths_and_single_files(void **state)
{
    assert_int_equal(rmtree_path("/tmp/test_rmtree_not_there_at_all"), 0);
    char top[] = "/tmp/test_rmtree_XXXXXX";
    assert_non_null(mkdtemp(top));
    char f[256];
    snprintf(f, sizeof f, "%s/file", top);
    touch(f);
    int dfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    assert_int_equal(rmtree_at(dfd, "file"), 0);
    assert_false(exists(f));
    assert_int_equal(rmtree_at(dfd, "file"), 0);
    close(dfd);
    assert_int_equal(rmtree_path(top), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(removes_a_tree_but_not_what_links_point_to),
        cmocka_unit_test(missing_paths_and_single_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
