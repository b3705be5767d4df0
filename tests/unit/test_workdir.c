/* Unit tests for the work directory: stale directories of dead servers go,
 * those of live servers (locked, or a live process of this program) stay,
 * and the server's own directory is locked while it exists. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rmtree.h"
#include "workdir.h"

static char parent[64];

static int setup(void **state)
{
    (void)state;
    snprintf(parent, sizeof parent, "/tmp/test_workdir.XXXXXX");
    return mkdtemp(parent) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmtree_path(parent);
}

/* Makes parent/NAME with a file inside, like a server's task directory. */
static void make_dir(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", parent, name);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/%s/task-abc", parent, name);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/%s/task-abc/main.py", parent, name);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
}

static int exists(const char *name)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", parent, name);
    return lstat(path, &st) == 0;
}

/* A PID no process has: a child that has exited and been reaped. */
static long dead_pid(void)
{
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return (long)p;
}

static void dead_servers_go_live_ones_stay(void **state)
{
    (void)state;
    char dead[64], locked[64], same[64], other[64], self[64];
    snprintf(dead, sizeof dead, "tasksolver.%ld", dead_pid());
    make_dir(dead);

    /* A live server of this version (or in another PID namespace): its
     * PID means nothing here, its lock does. */
    snprintf(locked, sizeof locked, "tasksolver.%ld", dead_pid());
    make_dir(locked);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", parent, locked);
    int lock = open(path, O_RDONLY | O_DIRECTORY);
    assert_true(lock >= 0);
    assert_int_equal(flock(lock, LOCK_EX | LOCK_NB), 0);

    /* A live process of this program that holds no lock: an older server,
     * or one that has not locked its directory yet. A fork keeps the name. */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        pause();
        _exit(0);
    }
    snprintf(same, sizeof same, "tasksolver.%ld", (long)child);
    make_dir(same);

    /* The PID now belongs to another program (pid 1 is never this test):
     * reused, so the directory is stale. */
    snprintf(other, sizeof other, "tasksolver.1");
    make_dir(other);

    /* Named after this very process, which has made no directory yet. */
    snprintf(self, sizeof self, "tasksolver.%ld", (long)getpid());
    make_dir(self);

    /* Names that are not work directories. */
    make_dir("tasksolver.12ab");
    make_dir("tasksolver.0");
    make_dir("tasksolver.7.new");
    make_dir("other.123");
    char dead2[64], link[256];
    snprintf(dead2, sizeof dead2, "tasksolver.%ld", dead_pid());
    snprintf(link, sizeof link, "%s/%s", parent, dead2);
    assert_int_equal(symlink("other.123", link), 0);

    assert_int_equal(workdir_remove_stale(parent, (long)getpid()), 3);
    assert_false(exists(dead));
    assert_false(exists(other));
    assert_false(exists(self));
    assert_true(exists(locked));
    assert_true(exists(same));
    assert_true(exists("tasksolver.12ab"));
    assert_true(exists("tasksolver.0"));
    assert_true(exists("tasksolver.7.new"));
    assert_true(exists("other.123"));
    assert_true(exists(dead2)); /* a symlink is not followed, nor removed */

    /* Once the lock is gone and the process too, both are stale. */
    close(lock);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    assert_int_equal(workdir_remove_stale(parent, (long)getpid()), 2);
    assert_false(exists(locked));
    assert_false(exists(same));
}

static void own_directory_is_locked_then_removed(void **state)
{
    (void)state;
    char dead[64];
    snprintf(dead, sizeof dead, "tasksolver.%ld", dead_pid());
    make_dir(dead);
    setenv("TMPDIR", parent, 1);
    config c;
    assert_int_equal(config_init(&c), 0);
    workdir wd;
    assert_int_equal(workdir_prepare(&wd, &c), 0);
    assert_int_equal(wd.stale_removed, 1);
    assert_false(exists(dead));
    char own[64];
    snprintf(own, sizeof own, "tasksolver.%ld", (long)getpid());
    assert_true(exists(own));
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.new", own);
    assert_false(exists(tmp));
    char want[256];
    snprintf(want, sizeof want, "%s/%s", parent, own);
    assert_string_equal(c.work_dir, want);
    struct stat st;
    assert_int_equal(stat(c.work_dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);

    /* Locked: another open file description cannot take the lock, and
     * another server's scan leaves it alone. */
    int fd = open(c.work_dir, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), -1);
    assert_int_equal(errno, EWOULDBLOCK);
    close(fd);
    assert_int_equal(workdir_remove_stale(parent, 0), 0);
    assert_true(exists(own));

    workdir_release(&wd);
    assert_false(exists(own));
    config_destroy(&c);
    unsetenv("TMPDIR");
}

static void given_directory_is_used_as_it_is(void **state)
{
    (void)state;
    make_dir("given");
    char dead[64];
    snprintf(dead, sizeof dead, "tasksolver.%ld", dead_pid());
    make_dir(dead);
    config c;
    assert_int_equal(config_init(&c), 0);
    free(c.work_dir);
    char path[256];
    snprintf(path, sizeof path, "%s/given", parent);
    c.work_dir = strdup(path);
    workdir wd;
    assert_int_equal(workdir_prepare(&wd, &c), 0);
    assert_int_equal(wd.created, 0);
    assert_int_equal(wd.lock_fd, -1);
    assert_true(exists(dead)); /* no clean-up outside the default place */
    workdir_release(&wd);
    assert_true(exists("given"));
    config_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(dead_servers_go_live_ones_stay, setup, teardown),
        cmocka_unit_test_setup_teardown(own_directory_is_locked_then_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(given_directory_is_used_as_it_is, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
