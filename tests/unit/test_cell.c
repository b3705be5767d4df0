/* Unit tests of the cell: a real tasksolver-exec --cell (built next to the
 * server) driven through the runner, as the pool does. Needs root for the
 * namespaces; skipped otherwise. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cell.h"
#include "cgroup.h"
#include "runner.h"

/* The work directory holding the task directory, and the cgroup root. */
static char work[64] = "/tmp/ts-test-cell-XXXXXX";
static char dir[128];
static char hide[80];
static cgroup_root cg;

static int setup(void **state)
{
    if (geteuid() != 0)
        return 0;
    if (!mkdtemp(work))
        return -1;
    snprintf(dir, sizeof dir, "%s/task-1", work);
    snprintf(hide, sizeof hide, "--hide=%s", work);
    char why[256];
    if (mkdir(dir, 0700) < 0)
        return -1;
    cgroup_root_init(&cg, "ts-test-cell", why, sizeof why); /* none is fine */
    return 0;
}

static int teardown(void **state)
{
    if (geteuid() != 0)
        return 0;
    if (cg.version != CGROUP_NONE)
        cgroup_root_destroy(&cg);
    rmdir(dir);
    rmdir(work);
    return 0;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* The parent of /proc entry name, or -1. */
static int ppid_of(const char *name)
{
    char path[300], text[512];
    snprintf(path, sizeof path, "/proc/%s/stat", name);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char *rp = strrchr(text, ')');
    int ppid;
    char st;
    return rp && sscanf(rp + 2, "%c %d", &st, &ppid) == 2 ? ppid : -1;
}

/* Our children: the cells' helpers. */
static int count_children(void)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += ppid_of(e->d_name) == getpid();
    closedir(d);
    return n;
}

/* A cell for dir with small limits (procs: its task group's), hosting
 * warm Python with the script pyfork (NULL: none). */
static cell *make_with(long procs, const char *pyfork)
{
    if (geteuid() != 0)
        skip();
    char pyarg[300];
    snprintf(pyarg, sizeof pyarg, "--pyfork=%s", pyfork ? pyfork : "");
    char *argv[] = {TSEXEC_PATH, "--cell",          "--ns",        "--no-network",
                    "--seccomp", "--uid=65534",     "--gid=65534", "--disk=16777216",
                    "--cpu=5",   "--fsize=1048576", hide,          pyfork ? pyarg : NULL,
                    NULL};
    cell_config cc = {.argv = argv,
                      .dir = dir,
                      .cg = &cg,
                      .cg_name = "cell-test",
                      .memory = 64 << 20,
                      .pids = procs};
    cell *c = NULL;
    char why[512] = "";
    int rc = cell_new(&cc, &c, why, sizeof why);
    if (rc < 0)
        fail_msg("cell_new: %s (%s)", strerror(-rc), why);
    return c;
}

static cell *make(long procs)
{
    return make_with(procs, NULL);
}

/* Runs argv in c (ready) with limits l; the run itself must succeed. */
static void run_in(cell *c, char *const *argv, const runner_limits *l, runner_result *r)
{
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    runner_opts o = {.path = argv[0],
                     .argv = argv,
                     .envp = env,
                     .cwd = dir,
                     .stdin_fd = -1,
                     .capture_stdout = 1,
                     .capture_stderr = 1,
                     .sh_fallback = 1,
                     .cell = c};
    assert_int_equal(cell_wait_ready(c, 10000), 0);
    assert_int_equal(runner_run(&o, l, NULL, NULL, r), 0);
}

static void run_sh(cell *c, const char *script, runner_result *r)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    run_in(c, argv, NULL, r);
}

/* Runs the python program src as a python task (python3 main.py), which
 * a cell hosting warm Python starts from its fork server. */
static void run_py(cell *c, const char *src, const runner_limits *l, runner_result *r)
{
    char path[200];
    snprintf(path, sizeof path, "%s/main.py", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
    char *argv[] = {"python3", "main.py", NULL};
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    runner_opts o = {.path = argv[0],
                     .argv = argv,
                     .envp = env,
                     .cwd = dir,
                     .stdin_fd = -1,
                     .capture_stdout = 1,
                     .capture_stderr = 1,
                     .cell = c,
                     .warm_python = 1};
    assert_int_equal(cell_wait_ready(c, 10000), 0);
    assert_int_equal(runner_run(&o, l, NULL, NULL, r), 0);
    unlink(path);
}

static void test_runs_and_reports(void **state)
{
    int fds = count_fds();
    cell *c = make(0);
    runner_result r;
    run_sh(c, "echo out $$ $(id -u) $PWD; echo err >&2; exit 3", &r);
    char want[256];
    snprintf(want, sizeof want, "out 2 65534 %s\n", dir);
    assert_string_equal(r.out.data, want);
    assert_string_equal(r.err.data, "err\n");
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 3);
    assert_int_equal(r.spawn_errno, 0);
    assert_true(r.cpu_us >= 0);
    runner_result_destroy(&r);

    /* Killed by a signal, and the next task still runs. */
    run_sh(c, "kill -SEGV $$", &r);
    assert_false(r.exited);
    assert_int_equal(r.term_signal, SIGSEGV);
    runner_result_destroy(&r);
    run_sh(c, "exit 0", &r);
    assert_true(r.exited && r.exit_code == 0);
    runner_result_destroy(&r);
    assert_true(cell_usable(c));
    cell_free(c);
    assert_int_equal(count_fds(), fds);
    assert_int_equal(count_children(), 0);
}

static void test_exec_errors(void **state)
{
    cell *c = make(0);
    runner_result r;
    char *missing[] = {"/no/such/program", NULL};
    run_in(c, missing, NULL, &r);
    assert_int_equal(r.spawn_errno, ENOENT);
    runner_result_destroy(&r);
    /* A name without '/' is looked up in the task's PATH. */
    char *named[] = {"true", NULL};
    run_in(c, named, NULL, &r);
    assert_true(r.exited && r.exit_code == 0);
    runner_result_destroy(&r);
    /* A file without #! runs through /bin/sh, as execvp does. */
    char prog[200];
    snprintf(prog, sizeof prog, "%s/program", dir);
    FILE *f = fopen(prog, "w");
    assert_non_null(f);
    fputs("echo from sh \"$1\"\n", f);
    fclose(f);
    chmod(prog, 0700);
    char *script[] = {prog, "arg", NULL};
    run_in(c, script, NULL, &r);
    assert_string_equal(r.out.data, "from sh arg\n");
    runner_result_destroy(&r);
    unlink(prog);
    cell_free(c);
}

static void test_timeout_kills_everything(void **state)
{
    cell *c = make(0);
    runner_result r;
    runner_limits l = {.timeout_us = 300000, .cancel_fd = -1};
    char *argv[] = {"/bin/sh", "-c", "setsid sleep 100 & sleep 100", NULL};
    run_in(c, argv, &l, &r);
    assert_true(r.timed_out);
    assert_int_equal(r.term_signal, SIGKILL);
    assert_true(r.end_us - r.start_us < 5000000);
    runner_result_destroy(&r);
    /* Nothing is left for the next task, which starts as pid 2. */
    run_sh(c, "ls /proc | grep -c '^[0-9]'; echo $$", &r);
    assert_string_equal(r.out.data, "3\n2\n");
    runner_result_destroy(&r);
    assert_true(cell_usable(c));
    cell_free(c);
}

static void test_leftovers_are_removed(void **state)
{
    cell *c = make(0);
    runner_result r;
    run_sh(c,
           "echo x > f; mkdir -p d/e; chmod 0 d; echo y > /tmp/t; echo z > /dev/shm/s; "
           "echo w > /var/tmp/v; ipcmk -M 4096 >/dev/null; chmod 777 .",
           &r);
    assert_true(r.exited && r.exit_code == 0);
    runner_result_destroy(&r);
    run_sh(c,
           "stat -c %a .; ls -A . /dev/shm /var/tmp; ls -A /tmp | grep -v ts-test-cell; "
           "tail -n +2 /proc/sysvipc/shm",
           &r);
    assert_string_equal(r.out.data, "700\n.:\n\n/dev/shm:\n\n/var/tmp:\n");
    runner_result_destroy(&r);
    cell_free(c);
}

static void test_big_argv(void **state)
{
    cell *c = make(0);
    static char arg[1000];
    memset(arg, 'y', sizeof arg - 1);
    char *argv[304] = {"/bin/sh", "-c", "echo $#"};
    for (int i = 3; i < 303; i++)
        argv[i] = arg;
    runner_result r;
    run_in(c, argv, NULL, &r);
    assert_string_equal(r.out.data, "299\n"); /* argv[3] is $0 */
    runner_result_destroy(&r);
    cell_free(c);
}

static void test_events_are_per_task(void **state)
{
    if (geteuid() != 0 || !cg.pids_dir)
        skip();
    cell *c = make(8);
    runner_result r;
    cgroup_events ev;
    cell_events(c, &ev);
    assert_int_equal(ev.pids_max, 0);
    run_sh(c, "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1 & done; wait", &r);
    runner_result_destroy(&r);
    cell_events(c, &ev);
    assert_true(ev.pids_max > 0);
    run_sh(c, "exit 0", &r);
    runner_result_destroy(&r);
    cell_events(c, &ev);
    assert_int_equal(ev.pids_max, 0);
    cell_free(c);
}

static void test_limits_are_per_task(void **state)
{
    if (geteuid() != 0 || !cg.pids_dir || !cg.mem_dir)
        skip();
    cell *c = make(8);
    runner_result r;
    cgroup_events ev;
    cell_events(c, &ev);
    /* One task with limits of its own: 3 processes, 4 KiB files. */
    assert_int_equal(cell_wait_ready(c, 10000), 0);
    assert_int_equal(cell_set_limits(c, &(cell_limits){.pids = 3, .fsize = 4096}), 0);
    run_sh(c, "head -c 8192 /dev/zero > f; for i in 1 2 3 4 5; do sleep 1 & done; wait; exit 1",
           &r);
    assert_int_equal(r.limit, RUNNER_LIMIT_FSIZE);
    assert_int_equal(r.limit_value, 4096);
    runner_result_destroy(&r);
    cell_events(c, &ev);
    assert_true(ev.pids_max > 0);
    /* The next one has the cell's own again, and a peak of its own. */
    assert_int_equal(cell_wait_ready(c, 10000), 0);
    assert_int_equal(cell_set_limits(c, &(cell_limits){0}), 0);
    run_sh(c,
           "for i in 1 2 3 4 5; do sleep 0.1 & done; head -c 8192 /dev/zero > f; wait; "
           "head -c 30000000 /dev/zero | python3 -c 'import sys; a = sys.stdin.buffer.read()'",
           &r);
    assert_true(r.exited);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.limit, RUNNER_LIMIT_NONE);
    runner_result_destroy(&r);
    cell_events(c, &ev);
    assert_int_equal(ev.pids_max, 0);
    assert_true(ev.peak > 30000000);
    run_sh(c, "exit 0", &r);
    runner_result_destroy(&r);
    cell_events(c, &ev);
    assert_true(ev.peak > 0);
    assert_true(ev.peak < 20000000);
    cell_free(c);
}

/* The cell's init: the one child of the cell's helper, our child. */
static pid_t find_init(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t helper = 0, init = 0;
    while ((e = readdir(d)))
        if (ppid_of(e->d_name) == getpid())
            helper = atoi(e->d_name);
    rewinddir(d);
    while (helper && (e = readdir(d)))
        if (ppid_of(e->d_name) == helper)
            init = atoi(e->d_name);
    closedir(d);
    return init;
}

static void test_damage_is_seen(void **state)
{
    cell *c = make(0);
    runner_result r;
    run_sh(c, "exit 0", &r);
    runner_result_destroy(&r);
    pid_t init = find_init();
    assert_true(init > 0);
    kill(init, SIGKILL);
    for (int i = 0; i < 500 && kill(init, 0) == 0; i++)
        usleep(10000);
    assert_true(cell_wait_ready(c, 5000) < 0);
    assert_false(cell_usable(c));
    cell_free(c);
    assert_int_equal(count_children(), 0);
}

static void test_bad_helper(void **state)
{
    if (geteuid() != 0)
        skip();
    int fds = count_fds();
    char *missing[] = {"/no/such/tasksolver-exec", "--cell", NULL};
    cell_config cc = {.argv = missing, .dir = dir};
    cell *c = NULL;
    char why[512];
    assert_int_equal(cell_new(&cc, &c, why, sizeof why), -ENOENT);
    assert_null(c);
    /* A set-up step that fails: the helper's own sentence. */
    char *argv[] = {TSEXEC_PATH, "--cell", "--ns", NULL};
    cc = (cell_config){.argv = argv, .dir = "/no/such/dir"};
    assert_true(cell_new(&cc, &c, why, sizeof why) < 0);
    assert_null(c);
    assert_non_null(strstr(why, "/no/such/dir"));
    assert_int_equal(count_fds(), fds);
    assert_int_equal(count_children(), 0);
}

/* A python task of a cell with warm Python starts from the fork server
 * (its parent is not init), as the tasks' user, as pid 2; the fork server
 * outlives what the cleanup kills, a timeout, and the tasks that are not
 * python ones. */
static void test_warm_python(void **state)
{
    cell *c = make_with(16, PYFORK_SCRIPT);
    runner_result r;
    const char *who = "import os\nprint(os.getpid(), os.getuid(), os.getppid())\n";
    run_py(c, who, NULL, &r);
    assert_true(r.exited && r.exit_code == 0);
    assert_string_equal(r.note, "");
    int pid, uid, server;
    assert_int_equal(sscanf(r.out.data, "%d %d %d", &pid, &uid, &server), 3);
    assert_int_equal(pid, 2);
    assert_int_equal(uid, 65534);
    assert_true(server > 2);
    runner_result_destroy(&r);

    /* A background process is killed, the server is not. */
    run_py(c, "import subprocess\nsubprocess.Popen(['setsid', 'sleep', '100'])\n", NULL, &r);
    assert_true(r.exited && r.exit_code == 0);
    runner_result_destroy(&r);
    run_sh(c, "ls /proc | grep -c '^[0-9]'; echo $$", &r);
    assert_string_equal(r.out.data, "3\n2\n");
    runner_result_destroy(&r);

    /* A timeout: everything of the task dies, the server serves on. */
    runner_limits l = {.timeout_us = 500000, .cancel_fd = -1};
    run_py(c,
           "import subprocess, time\nsubprocess.Popen(['setsid', 'sleep', '100'])\n"
           "time.sleep(100)\n",
           &l, &r);
    assert_true(r.timed_out);
    assert_int_equal(r.term_signal, SIGKILL);
    runner_result_destroy(&r);
    run_py(c, who, NULL, &r);
    char want[64];
    snprintf(want, sizeof want, "2 65534 %d\n", server);
    assert_string_equal(r.out.data, want);
    runner_result_destroy(&r);

    /* The task's limits and group hold (16 processes: a fork bomb fails). */
    run_py(c,
           "import os, resource\nprint(resource.getrlimit(resource.RLIMIT_CPU))\n"
           "n = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
           "            import time; time.sleep(10); os._exit(0)\n        n += 1\n"
           "except OSError:\n    print(n < 16)\n",
           NULL, &r);
    assert_string_equal(r.out.data, "(5, 6)\nTrue\n");
    runner_result_destroy(&r);
    assert_true(cell_usable(c));
    cell_free(c);
    assert_int_equal(count_children(), 0);
}

/* Without a fork server (none asked for, or its script missing) a python
 * task starts cold, its parent init; a missing script is said once. */
static void test_warm_python_fallback(void **state)
{
    const char *who = "import os\nprint(os.getpid(), os.getppid())\n";
    runner_result r;
    cell *c = make(0);
    run_py(c, who, NULL, &r);
    assert_string_equal(r.out.data, "2 1\n");
    assert_string_equal(r.note, "");
    runner_result_destroy(&r);
    cell_free(c);

    c = make_with(0, "/no/such/pyfork.py");
    run_py(c, who, NULL, &r);
    assert_string_equal(r.out.data, "2 1\n");
    assert_non_null(strstr(r.note, "its script could not be opened"));
    runner_result_destroy(&r);
    run_py(c, who, NULL, &r);
    assert_string_equal(r.out.data, "2 1\n");
    assert_string_equal(r.note, "");
    runner_result_destroy(&r);
    cell_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_and_reports),
        cmocka_unit_test(test_exec_errors),
        cmocka_unit_test(test_timeout_kills_everything),
        cmocka_unit_test(test_leftovers_are_removed),
        cmocka_unit_test(test_big_argv),
        cmocka_unit_test(test_events_are_per_task),
        cmocka_unit_test(test_limits_are_per_task),
        cmocka_unit_test(test_damage_is_seen),
        cmocka_unit_test(test_bad_helper),
        cmocka_unit_test(test_warm_python),
        cmocka_unit_test(test_warm_python_fallback),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
