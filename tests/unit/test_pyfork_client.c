/* Unit tests of the warm Python client (runner/pyfork_client.h) against the
 * real fork server (runner/pyfork.py, as the build copies it next to the
 * server binary), run as the current user: start, run, results, kill,
 * refusals, large requests, and nothing left behind. The semantics a
 * program sees are compared with a cold start in tests/e2e/test_pyfork.py. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "pyfork_client.h"
#include "timefmt.h"

#ifndef PYFORK_SCRIPT
#error "PYFORK_SCRIPT must name pyfork.py"
#endif

static char *task_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
                           "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", NULL};

/* A fork server and a task directory for each test. */
typedef struct fixture {
    pyfork *pf;
    char dir[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pyfork-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    pyfork_config c = {.python = "python3", .script = PYFORK_SCRIPT, .envp = task_env};
    char why[256] = "";
    int rc = pyfork_start(&c, &f->pf, why, sizeof why);
    if (rc < 0)
        fail_msg("pyfork_start: %s (%s)", strerror(-rc), why);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pyfork_free(f->pf);
    char main_py[128];
    snprintf(main_py, sizeof main_py, "%s/main.py", f->dir);
    unlink(main_py);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_main(const fixture *f, const char *src)
{
    char path[128];
    snprintf(path, sizeof path, "%s/main.py", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(src, fp);
    fclose(fp);
}

/* Reads fd to its end into b. */
static void read_all(int fd, buf *b)
{
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        buf_append(b, chunk, (size_t)n);
}

/* Runs t (its fds 1 and 2 replaced by pipes read here) to its end. */
static void run_task(fixture *f, pyfork_task *t, pyfork_result *r, buf *out, buf *err)
{
    int op[2], ep[2];
    assert_int_equal(pipe2(op, O_CLOEXEC), 0);
    assert_int_equal(pipe2(ep, O_CLOEXEC), 0);
    t->stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    t->stdout_fd = op[1];
    t->stderr_fd = ep[1];
    if (!t->dir)
        t->dir = f->dir;
    if (!t->main)
        t->main = "main.py";
    if (!t->envp)
        t->envp = task_env;
    pid_t pid = -1;
    assert_int_equal(pyfork_run(f->pf, t, &pid), 0);
    close(t->stdin_fd);
    close(op[1]);
    close(ep[1]);
    /* Small outputs only: the pipes cannot fill up. */
    assert_int_equal(pyfork_wait(f->pf, 20000, r), 1);
    read_all(op[0], out);
    read_all(ep[0], err);
    close(op[0]);
    close(ep[0]);
}

static void run_src(fixture *f, const char *src, char *const *args, pyfork_result *r, buf *out,
                    buf *err)
{
    write_main(f, src);
    pyfork_task t = {.args = args};
    run_task(f, &t, r, out, err);
}

static void test_ready(void **state)
{
    fixture *f = *state;
    pid_t pid = pyfork_server_pid(f->pf);
    assert_true(pid > 0);
    assert_int_equal(kill(pid, 0), 0);
    assert_true(pyfork_fd(f->pf) > 2);
}

static void test_hello(void **state)
{
    fixture *f = *state;
    pyfork_result r;
    buf out = BUF_INIT, err = BUF_INIT;
    char *args[] = {"a b", "c", NULL};
    run_src(f, "import sys\nprint(sys.argv)\n", args, &r, &out, &err);
    assert_true(r.started);
    assert_true(WIFEXITED(r.wstatus));
    assert_int_equal(WEXITSTATUS(r.wstatus), 0);
    assert_string_equal(out.data, "['main.py', 'a b', 'c']\n");
    assert_int_equal(err.len, 0);
    assert_true(r.maxrss_kb > 0);
    buf_destroy(&out);
    buf_destroy(&err);
}

static void test_exit_codes(void **state)
{
    fixture *f = *state;
    pyfork_result r;
    buf out = BUF_INIT, err = BUF_INIT;
    run_src(f, "import sys\nsys.exit(3)\n", NULL, &r, &out, &err);
    assert_int_equal(WEXITSTATUS(r.wstatus), 3);
    buf_reset(&err);
    run_src(f, "raise ValueError('boom')\n", NULL, &r, &out, &err);
    assert_int_equal(WEXITSTATUS(r.wstatus), 1);
    assert_non_null(strstr(err.data, "ValueError: boom"));
    assert_null(strstr(err.data, "pyfork.py"));
    run_src(f, "import os\nos.kill(os.getpid(), 9)\n", NULL, &r, &out, &err);
    assert_true(WIFSIGNALED(r.wstatus));
    assert_int_equal(WTERMSIG(r.wstatus), SIGKILL);
    buf_destroy(&out);
    buf_destroy(&err);
}

/* The task sees the request's environment, directory and rlimits. */
static void test_task_setup(void **state)
{
    fixture *f = *state;
    pyfork_result r;
    buf out = BUF_INIT, err = BUF_INIT;
    write_main(
        f,
        "import os, resource\n"
        "print(sorted(os.environ.items()), os.getcwd(),\n"
        "      resource.getrlimit(resource.RLIMIT_NOFILE), sorted(os.listdir('/proc/self/fd')))\n");
    char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin",
                   "LANG=C.UTF-8",
                   "PYTHONDONTWRITEBYTECODE=1",
                   "PYTHONUNBUFFERED=1",
                   "X=1",
                   NULL};
    pyfork_rlimit lim = {"nofile", 40, 50};
    pyfork_task t = {.envp = env, .limits = &lim, .nlimits = 1};
    run_task(f, &t, &r, &out, &err);
    assert_int_equal(WEXITSTATUS(r.wstatus), 0);
    char want[512];
    snprintf(want, sizeof want,
             "[('LANG', 'C.UTF-8'), ('PATH', '/usr/local/bin:/usr/bin:/bin'), "
             "('PYTHONDONTWRITEBYTECODE', '1'), ('PYTHONUNBUFFERED', '1'), ('X', '1')] %s "
             "(40, 50) ['0', '1', '2', '3']\n",
             f->dir);
    assert_string_equal(out.data, want);
    buf_destroy(&out);
    buf_destroy(&err);
}

/* Open cgroup.procs files travel with the request: the child writes "0"
 * (itself) into each (here plain files stand in for them) and keeps
 * none. */
static void test_cgroup_fds(void **state)
{
    fixture *f = *state;
    char paths[2][128];
    int fds[2];
    for (int i = 0; i < 2; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/cg%d", f->dir, i);
        fds[i] = open(paths[i], O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fds[i] >= 0);
    }
    write_main(f, "import os\nprint(sorted(os.listdir('/proc/self/fd')))\n");
    pyfork_task t = {.cgroup_fds = fds, .ncgroup_fds = 2};
    pyfork_result r;
    buf out = BUF_INIT, err = BUF_INIT;
    run_task(f, &t, &r, &out, &err);
    assert_int_equal(WEXITSTATUS(r.wstatus), 0);
    assert_string_equal(out.data, "['0', '1', '2', '3']\n");
    for (int i = 0; i < 2; i++) {
        char got[32] = "";
        int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_true(read(fd, got, sizeof got - 1) > 0);
        close(fd);
        close(fds[i]);
        unlink(paths[i]);
        assert_string_equal(got, "0");
    }
    /* More than the server takes is refused before anything is sent. */
    int many[PYFORK_MAX_CGROUP_FDS + 1];
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
        many[i] = 1;
    pyfork_task t2 = {.dir = f->dir,
                      .main = "main.py",
                      .cgroup_fds = many,
                      .ncgroup_fds = sizeof many / sizeof many[0],
                      .stdin_fd = 0,
                      .stdout_fd = 1,
                      .stderr_fd = 2};
    pid_t p2;
    assert_int_equal(pyfork_run(f->pf, &t2, &p2), -EINVAL);
    buf_destroy(&out);
    buf_destroy(&err);
}

static void test_kill(void **state)
{
    fixture *f = *state;
    write_main(f, "import time\ntime.sleep(30)\n");
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    pyfork_task t = {.dir = f->dir,
                     .main = "main.py",
                     .envp = task_env,
                     .stdin_fd = devnull,
                     .stdout_fd = devnull,
                     .stderr_fd = devnull};
    pid_t pid = 0;
    int64_t t0 = time_mono_us();
    assert_int_equal(pyfork_run(f->pf, &t, &pid), 0);
    assert_true(pid > 0);
    pyfork_result r;
    assert_int_equal(pyfork_wait(f->pf, 0, &r), 0);
    assert_int_equal(pyfork_run(f->pf, &t, &pid), -EBUSY);
    assert_int_equal(pyfork_kill(f->pf, SIGTERM), 0);
    assert_int_equal(pyfork_wait(f->pf, 20000, &r), 1);
    assert_true(r.started);
    assert_true(WIFSIGNALED(r.wstatus));
    assert_int_equal(WTERMSIG(r.wstatus), SIGTERM);
    assert_true(time_mono_us() - t0 < 20 * 1000000);
    /* A kill with no task running is ignored, and the server goes on. */
    assert_int_equal(pyfork_kill(f->pf, SIGTERM), 0);
    close(devnull);
    buf out = BUF_INIT, err = BUF_INIT;
    run_src(f, "print('next')\n", NULL, &r, &out, &err);
    assert_string_equal(out.data, "next\n");
    buf_destroy(&out);
    buf_destroy(&err);
}

/* The first child of pid's, or 0 (from /proc: a spare is the server's
 * only child while no task runs). */
static pid_t child_of(pid_t pid)
{
    char path[64];
    long kid = 0;
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    if (fscanf(fp, "%ld", &kid) != 1)
        kid = 0;
    fclose(fp);
    return (pid_t)kid;
}

/* Waits up to 20 s for a spare of the server's; returns its pid. */
static pid_t await_spare(const fixture *f)
{
    pid_t kid = 0;
    for (int i = 0; i < 2000 && !(kid = child_of(pyfork_server_pid(f->pf))); i++)
        usleep(10000);
    assert_true(kid > 0);
    return kid;
}

/* A spare forked ahead takes the next task; drop takes it away; neither
 * is allowed while a task runs. */
static void test_spare(void **state)
{
    fixture *f = *state;
    pyfork_result r;
    buf out = BUF_INIT, err = BUF_INIT;
    assert_int_equal(pyfork_drop_spare(f->pf), 0); /* none yet: nothing to do */
    assert_int_equal(pyfork_prefork(f->pf), 0);
    pid_t spare = await_spare(f);
    char expect[32];
    snprintf(expect, sizeof expect, "%d\n", (int)spare);
    run_src(f, "import os\nprint(os.getpid())\n", NULL, &r, &out, &err);
    assert_true(r.started);
    assert_string_equal(out.data, expect);

    assert_int_equal(pyfork_prefork(f->pf), 0);
    spare = await_spare(f);
    assert_int_equal(pyfork_drop_spare(f->pf), 0);
    assert_int_equal(kill(spare, 0), -1); /* reaped, not a zombie */
    assert_int_equal(child_of(pyfork_server_pid(f->pf)), 0);

    write_main(f, "import time\ntime.sleep(30)\n");
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    pyfork_task t = {.dir = f->dir,
                     .main = "main.py",
                     .envp = task_env,
                     .stdin_fd = devnull,
                     .stdout_fd = devnull,
                     .stderr_fd = devnull};
    pid_t pid = 0;
    assert_int_equal(pyfork_run(f->pf, &t, &pid), 0);
    close(devnull);
    assert_int_equal(pyfork_prefork(f->pf), -EBUSY);
    assert_int_equal(pyfork_drop_spare(f->pf), -EBUSY);
    assert_int_equal(pyfork_kill(f->pf, SIGKILL), 0);
    assert_int_equal(pyfork_wait(f->pf, 20000, &r), 1);
    buf_destroy(&out);
    buf_destroy(&err);
}

/* A task that cannot start is a "fail", after its pid or at once. */
static void test_failures(void **state)
{
    fixture *f = *state;
    pyfork_result r;
    buf out = BUF_INIT, err = BUF_INIT;
    write_main(f, "print(1)\n");
    pyfork_task t = {.dir = "/nonexistent/dir"};
    run_task(f, &t, &r, &out, &err);
    assert_false(r.started);
    assert_non_null(strstr(r.why, "could not enter /nonexistent/dir"));

    pyfork_rlimit bad = {"nosuchlimit", 1, 1};
    pyfork_task t2 = {.limits = &bad, .nlimits = 1};
    run_task(f, &t2, &r, &out, &err);
    assert_false(r.started);
    assert_non_null(strstr(r.why, "bad limit"));

    pyfork_task t3 = {.main = ""};
    assert_int_equal(pyfork_run(f->pf, &t3, &(pid_t){0}), -EINVAL);
    assert_int_equal(pyfork_wait(f->pf, 0, &r), -EINVAL);

    /* Still serving. */
    run_src(f, "print('ok')\n", NULL, &r, &out, &err);
    assert_true(r.started);
    assert_string_equal(out.data, "ok\n");
    buf_destroy(&out);
    buf_destroy(&err);
}

/* A request of several datagrams: 200 arguments of 1 KiB. */
static void test_large_request(void **state)
{
    fixture *f = *state;
    static char big[200][1025];
    char *args[201];
    for (int i = 0; i < 200; i++) {
        memset(big[i], 'a' + i % 26, 1024);
        big[i][1024] = '\0';
        args[i] = big[i];
    }
    args[200] = NULL;
    pyfork_result r;
    buf out = BUF_INIT, err = BUF_INIT;
    run_src(f, "import sys\nprint(len(sys.argv), sum(map(len, sys.argv[1:])), sys.argv[27][0])\n",
            args, &r, &out, &err);
    assert_int_equal(WEXITSTATUS(r.wstatus), 0);
    assert_string_equal(out.data, "201 204800 a\n");
    buf_destroy(&out);
    buf_destroy(&err);
}

/* Freeing the client ends the server and its running task. */
static void test_free_kills(void **state)
{
    fixture *f = *state;
    write_main(f, "import time\ntime.sleep(30)\n");
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    pyfork_task t = {.dir = f->dir,
                     .main = "main.py",
                     .envp = task_env,
                     .stdin_fd = devnull,
                     .stdout_fd = devnull,
                     .stderr_fd = devnull};
    pid_t pid = 0, server = pyfork_server_pid(f->pf);
    assert_int_equal(pyfork_run(f->pf, &t, &pid), 0);
    close(devnull);
    assert_true(pid > 0);
    assert_int_equal(kill(pid, 0), 0);
    pyfork_free(f->pf);
    f->pf = NULL;
    /* The server reaps its task before it exits, and we reaped the server. */
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(kill(server, 0), -1);
    assert_int_equal(errno, ESRCH);
}

/* A server that died is reported as such, and freeing it still works. */
static void test_server_died(void **state)
{
    fixture *f = *state;
    write_main(f, "print(1)\n");
    pid_t server = pyfork_server_pid(f->pf);
    assert_int_equal(kill(server, SIGKILL), 0);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    pyfork_task t = {.dir = f->dir,
                     .main = "main.py",
                     .envp = task_env,
                     .stdin_fd = devnull,
                     .stdout_fd = devnull,
                     .stderr_fd = devnull};
    pid_t pid = 0;
    int rc;
    /* The kill takes effect at once or by the reply. */
    for (int i = 0; i < 100 && (rc = pyfork_run(f->pf, &t, &pid)) == 0; i++) {
        pyfork_result r;
        rc = pyfork_wait(f->pf, 1000, &r);
        if (rc < 0)
            break;
        usleep(10000);
    }
    assert_int_equal(rc, -EPIPE);
    assert_int_equal(pyfork_kill(f->pf, SIGTERM), -EPIPE);
    close(devnull);
}

/* A wrapper starts the server for us (as a sandbox cell will): fd 3 must
 * reach the server through it. */
static void test_wrapper(void **state)
{
    (void)state;
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pyfork-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    /* A wrapper gets the program's path, then its whole argv. */
    char *wrapper[] = {"/bin/sh", "-c", "p=$1; shift 2; exec env WRAPPED=1 \"$p\" \"$@\"", "sh",
                       NULL};
    pyfork_config c = {
        .python = "python3", .script = PYFORK_SCRIPT, .envp = task_env, .wrapper = wrapper};
    char why[256] = "";
    assert_int_equal(pyfork_start(&c, &f->pf, why, sizeof why), 0);
    pyfork_result r;
    buf out = BUF_INIT, err = BUF_INIT;
    run_src(f, "import os\nprint(os.environ.get('WRAPPED'))\n", NULL, &r, &out, &err);
    /* The task's environment is the request's, not the server's. */
    assert_string_equal(out.data, "None\n");
    buf_destroy(&out);
    buf_destroy(&err);
    void *st = f;
    teardown(&st);
}

/* A server started by someone else, handed over by its socket. */
static void test_adopt(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(sv[1], 3);
        execle("/bin/sh", "sh", "-c", "exec python3 \"$0\"", PYFORK_SCRIPT, (char *)NULL, task_env);
        _exit(127);
    }
    close(sv[1]);
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pyfork-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char why[256] = "";
    assert_int_equal(pyfork_adopt(sv[0], 10000, &f->pf, why, sizeof why), 0);
    assert_int_equal(pyfork_server_pid(f->pf), pid);
    pyfork_result r;
    buf out = BUF_INIT, err = BUF_INIT;
    run_src(f, "print('adopted')\n", NULL, &r, &out, &err);
    assert_string_equal(out.data, "adopted\n");
    buf_destroy(&out);
    buf_destroy(&err);
    void *st = f;
    teardown(&st); /* closes the socket: the server exits */
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_start_errors(void **state)
{
    (void)state;
    pyfork *pf = NULL;
    char why[256] = "";
    pyfork_config c = {.python = "/nonexistent/python3", .script = PYFORK_SCRIPT, .envp = task_env};
    assert_int_equal(pyfork_start(&c, &pf, why, sizeof why), -ENOENT);
    assert_non_null(strstr(why, "could not execute"));
    /* A script that exits at once is not a fork server. */
    pyfork_config c2 = {.python = "python3", .script = "/dev/null", .envp = task_env};
    assert_int_equal(pyfork_start(&c2, &pf, why, sizeof why), -ECHILD);
    assert_non_null(strstr(why, "exited before it was ready"));
    assert_null(pf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_setup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_kills, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_died, setup, teardown),
        cmocka_unit_test(test_wrapper),
        cmocka_unit_test(test_adopt),
        cmocka_unit_test(test_start_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
